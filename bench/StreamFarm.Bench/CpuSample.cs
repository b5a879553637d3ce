using System.Diagnostics;
using System.Globalization;

namespace StreamFarm.Bench;

/// <summary>
/// What a benchmark's processes use of the machine at rest between kills: CPU of the bench process
/// (publisher, client, harness) and of each child over a short window, in cores (1.00 = one core
/// busy all the time), with the load average.
/// </summary>
internal static class CpuSample
{
    /// <summary>Samples for <paramref name="window"/>; children that end meanwhile are left out.</summary>
    public static async Task<string> TakeAsync(IReadOnlyList<(string Name, ChildProcess Process)> children, TimeSpan window, CancellationToken cancel)
    {
        var self = Process.GetCurrentProcess();
        var selfBefore = self.TotalProcessorTime;
        var before = children.Select(c => Ticks(c.Process)).ToList();
        var clock = Stopwatch.StartNew();
        await Task.Delay(window, cancel);
        self.Refresh();
        var seconds = clock.Elapsed.TotalSeconds;
        var perTick = 1.0 / NativeMethods.ClockTicksPerSecond();
        var parts = new List<string> { string.Create(CultureInfo.InvariantCulture, $"bench process {(self.TotalProcessorTime - selfBefore).TotalSeconds / seconds:0.00}") };
        var total = (self.TotalProcessorTime - selfBefore).TotalSeconds;
        for (var i = 0; i < children.Count; i++)
        {
            if (before[i] is { } b && Ticks(children[i].Process) is { } a)
            {
                parts.Add(string.Create(CultureInfo.InvariantCulture, $"{children[i].Name} {(a - b) * perTick / seconds:0.00}"));
                total += (a - b) * perTick;
            }
        }

        return string.Create(CultureInfo.InvariantCulture, $"CPU in cores over {seconds:0.0} s between kills: total {total / seconds:0.00} ({string.Join(", ", parts)}); load average {LoadAverage.Now()}");
    }

    private static long? Ticks(ChildProcess p)
    {
        try
        {
            return p.CpuTicks();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
