using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// The wait after a run until every subscriber has every message it was sent: as long as any of
/// them still makes progress (a server that is the bottleneck may still be applying the last
/// batches of a flow window long after publishing stopped), giving up when none has moved for
/// <c>stall</c> or after <c>limit</c> in all.
/// </summary>
public static class Drain
{
    /// <summary>Waits; returns how long it took and, when some subscriber fell short, what to report.</summary>
    public static async Task<(TimeSpan Took, string? Problem)> WaitAsync(IReadOnlyList<LoadClient> subscribers, long expected, TimeSpan stall, TimeSpan limit, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        long Total() => subscribers.Sum(s => s.Progress);
        var seen = Total();
        var moved = clock.Elapsed;
        while (subscribers.Any(s => s.Progress < expected && s.Failure is null) && clock.Elapsed - moved < stall && clock.Elapsed < limit)
        {
            await Task.Delay(10, cancel);
            var now = Total();
            if (now != seen)
            {
                seen = now;
                moved = clock.Elapsed;
            }
        }

        var took = clock.Elapsed;
        var behind = subscribers.Where(s => s.Progress != expected).ToList();
        if (behind.Count == 0)
        {
            return (took, null);
        }

        var worst = behind.MinBy(s => s.Progress)!;
        var why = took >= limit ? $"within {limit.TotalSeconds:0} s" : $"(no progress for {stall.TotalSeconds:0} s, {took.TotalSeconds:0.0} s after publishing stopped)";
        return (took, $"{behind.Count} of {subscribers.Count} subscriber(s) did not get all {expected} messages {why} (worst: {worst.Name} at {worst.Progress})");
    }
}
