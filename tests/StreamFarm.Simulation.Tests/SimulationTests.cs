using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace StreamFarm.Simulation.Tests;

/// <summary>
/// Seeded fault schedules against whole farms in one process (see <see cref="Schedule"/> and
/// <see cref="ScheduleRunner"/>). <c>SIM_SCHEDULES=n</c> runs n schedules (seeds 1 to n; default
/// <see cref="DefaultSchedules"/>), <c>SIM_FIRST_SEED=m</c> starts at m, and <c>SIM_SEED=n</c>
/// replays one seed with the servers' logs, writing the whole story to a file.
/// </summary>
public sealed class SimulationTests(ITestOutputHelper output)
{
    public const int DefaultSchedules = 1000;

    /// <summary>
    /// One fault per schedule (a kill with or without a restart, a pause, a partition both ways, a
    /// one-way cut), healed at the end: every invariant, I1 to I4, and convergence.
    /// </summary>
    [Fact]
    public void SingleFaultSchedules_KeepEveryInvariant()
    {
        if (Environment.GetEnvironmentVariable("SIM_SEED") is { Length: > 0 } one)
        {
            Replay(int.Parse(one, CultureInfo.InvariantCulture));
            return;
        }

        var failed = RunMany(maxFaults: Environment.GetEnvironmentVariable("SIM_MAX_FAULTS") is { Length: > 0 } ? Schedule.MaxFaults : 1, DefaultSchedules);
        Assert.True(failed.Count == 0, Describe(failed) + " (replay with SIM_MAX_FAULTS=1 SIM_SEED=<seed>)");
    }

    /// <summary>
    /// Seeds beyond the default range that once broke an invariant, kept as regression cases.
    /// 1600, 1936, 2518: a ~2 s pause of a server that held a publisher and a subscriber; on
    /// resuming, its hand-over (with a write nobody else had) went round between it and a server
    /// whose table still named it the owner, and was dropped at the hop limit; the subscriber then
    /// moved and saw an older value (I3). Seeds that go round now wait until the tables agree.
    /// 4263 (failed in about 7 of 10 replays): s5's host vanished and s5 started again 0.8 s later;
    /// the others' routes to the old process looked up for seconds, and when they reconnected they
    /// sent the publications s5 had acknowledged lately into records the new s5 had started from
    /// nothing, before any replica's copy: a subscriber that moved saw an older value (I3). Routes
    /// now tell each process's life, a new one reopens the others' routes at once, and a route's
    /// copies go before the publications sent again.
    /// </summary>
    [Theory]
    [InlineData(1600)]
    [InlineData(1936)]
    [InlineData(2518)]
    [InlineData(4263)]
    public void FoundSeeds_KeepEveryInvariant(int seed)
    {
        var result = ScheduleRunner.Run(Schedule.FromSeed(seed, maxFaults: 1));
        Assert.True(result.Violations.Count == 0, Describe([result]) + $" (replay with SIM_MAX_FAULTS=1 SIM_SEED={seed})");
    }

    /// <summary>
    /// Up to four overlapping faults per schedule. What holds whatever the faults: no silent gap
    /// (I1), one history per (subject, epoch) (I4), convergence after the heal (I2), and the farm
    /// healing. What does not always hold (docs/architecture.md, "What is not promised"): a
    /// subscriber that takes the farm's lines as they come and moves to another server may see an
    /// older value (I3) when every server that held the newer one died before passing it on, or
    /// when it crosses a partition; counted and printed, not failed. A subscriber that asks for
    /// stamps and keeps its copy by them (every other one here) must never go back: I3 fails.
    /// </summary>
    [Fact]
    public void OverlappingFaultSchedules_KeepOrderOneHistoryAndConvergence()
    {
        if (Environment.GetEnvironmentVariable("SIM_SEED") is { Length: > 0 })
        {
            return; // the replay runs in the other test
        }

        var results = RunMany(maxFaults: 4, OverlappingSchedules, offset: 100_000);
        var broken = results.Where(r => r.Violations.Any(v => v.Invariant != "I3" || v.Who.StartsWith(ScheduleRunner.StampedPrefix, StringComparison.Ordinal))).ToList();

        Assert.True(broken.Count == 0, Describe(broken) + " (replay with SIM_MAX_FAULTS=4 SIM_SEED=<seed>)");
    }

    /// <summary>Overlapping-fault schedules run by default.</summary>
    public const int OverlappingSchedules = 500;

    private List<ScheduleResult> RunMany(int maxFaults, int defaultCount, int offset = 0)
    {
        var count = int.TryParse(Environment.GetEnvironmentVariable("SIM_SCHEDULES"), CultureInfo.InvariantCulture, out var n) ? n : defaultCount;
        var first = (int.TryParse(Environment.GetEnvironmentVariable("SIM_FIRST_SEED"), CultureInfo.InvariantCulture, out var f) ? f : 1) + offset;
        var sw = Stopwatch.StartNew();
        var failed = new List<ScheduleResult>();
        var simulated = TimeSpan.Zero;
        var observations = 0L;
        var unsettled = 0;
        var kept = new List<int>();
        for (var seed = first; seed < first + count; seed++)
        {
            var result = ScheduleRunner.Run(Schedule.FromSeed(seed, maxFaults: maxFaults));
            if (result.KeptNewer > 0)
            {
                kept.Add(seed);
            }

            simulated += result.Simulated;
            observations += result.Observations;
            unsettled += result.UnsettledSteps;
            if (result.Failed)
            {
                failed.Add(result);
            }
        }

        output.WriteLine($"{count} schedules with up to {maxFaults} fault(s) (seeds {first} to {first + count - 1}): {simulated.TotalSeconds:0} s simulated in {sw.Elapsed.TotalSeconds:0.0} s; {observations} copies compared; {unsettled} steps did not settle; subscribers that ask for stamps kept values newer than the farm sent in {kept.Count} schedules{(kept.Count > 0 ? $" (e.g. seeds {string.Join(", ", kept.Take(10))})" : "")}");
        var byInvariant = failed.SelectMany(r => r.Violations.Select(v => (v.Invariant, r.Schedule.Seed))).GroupBy(x => x.Invariant).OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var g in byInvariant)
        {
            var seeds = g.Select(x => x.Seed).Distinct().ToList();
            output.WriteLine($"{g.Key}: {seeds.Count} schedules, e.g. seeds {string.Join(", ", seeds.Take(10))}");
        }

        foreach (var r in failed.Take(10))
        {
            output.WriteLine(ScheduleRunner.Report(r));
        }

        return failed;
    }

    private static string Describe(List<ScheduleResult> failed) =>
        $"{failed.Count} schedules broke an invariant; failing seeds: {string.Join(", ", failed.Select(r => r.Schedule.Seed).Take(50))}{(failed.Count > 50 ? ", ..." : "")}. Replay one with SIM_SEED=<seed>. First: {(failed.Count > 0 ? ScheduleRunner.Report(failed[0]) : "")}";

    private void Replay(int seed)
    {
        var schedule = Schedule.FromSeed(seed);
        var result = ScheduleRunner.Run(schedule, logging: true, keepFarm: true);
        using var farm = result.Farm!;
        var path = Path.Combine(Path.GetTempPath(), $"streamfarm-sim-{seed}.log");
        using (var w = new StreamWriter(path))
        {
            w.WriteLine(ScheduleRunner.Report(result, perInvariant: int.MaxValue));
            w.WriteLine();
            w.WriteLine("== server log ==");
            foreach (var line in farm.Log!.Lines)
            {
                w.WriteLine(line);
            }

            foreach (var c in farm.Clients)
            {
                w.WriteLine();
                w.WriteLine($"== {c.Name} ==");
                foreach (var e in c.Events.Where(e => !e.Line.StartsWith("SERVER ", StringComparison.Ordinal) && !e.Line.StartsWith("FARM", StringComparison.Ordinal) && e.Line is not ("PING" or "PONG")))
                {
                    w.WriteLine(e);
                }
            }
        }

        output.WriteLine(ScheduleRunner.Report(result, perInvariant: 20));
        output.WriteLine($"full story: {path}");
        Assert.False(result.Failed, $"seed {seed} broke an invariant: {ScheduleRunner.Report(result)}\nfull story: {path}");
    }
}
