using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

/// <summary>
/// The checker must be able to fail: each invariant is broken on purpose, in made-up histories and
/// in real ones recorded from a farm, and must be reported.
/// </summary>
public sealed class CheckerTests
{
    private static ClientEvent Rx(string line, int session = 1, string server = "s1") => new(0, session, server, ClientEventKind.Received, line);

    private static ClientEvent Connect(int session, string server) => new(0, session, server, ClientEventKind.Connected, "");

    private static Dictionary<string, IReadOnlyDictionary<string, long>> Expect(string subject, params (string Field, long Value)[] fields) =>
        new Dictionary<string, IReadOnlyDictionary<string, long>> { [subject] = fields.ToDictionary(f => f.Field, f => f.Value) };

    [Fact]
    public void ConsecutiveHistory_Passes_AndHoldsTheLastValues()
    {
        var c = new HistoryChecker();
        var copies = c.Check("a", [Connect(1, "s1"), Rx("STATUS /X NOT_FOUND"), Rx("IMAGE /X 7 1 p0=1"), Rx("UPDATE /X 7 2 p1=1"), Rx("UPDATE /X 7 5 @merged=3 p0=4"), Rx("STATUS /X STALE"), Rx("IMAGE /X 9 1 p0=4 p1=1"), Rx("STATUS /X OK"), Rx("UPDATE /X 9 2 p1=2")]);
        Assert.Equal(0, c.CheckHolds("a", copies, Expect("/X", ("p0", 4), ("p1", 2))));
        Assert.Empty(c.Violations);
        Assert.Equal(5, c.Observations);
    }

    [Fact]
    public void I1_AGap_AStepBack_AWrongMergedCount_AnUpdateBeforeAnImage_AreReported()
    {
        foreach (var bad in new[]
        {
            new[] { Rx("IMAGE /X 7 1 p0=1"), Rx("UPDATE /X 7 3 p0=3") },
            [Rx("IMAGE /X 7 5 p0=5"), Rx("UPDATE /X 7 5 p0=6")],
            [Rx("IMAGE /X 7 1 p0=1"), Rx("UPDATE /X 7 3 @merged=3 p0=3")],
            [Rx("IMAGE /X 7 1 p0=1"), Rx("UPDATE /X 8 2 p0=2")],
            [Rx("STATUS /X NOT_FOUND"), Rx("UPDATE /X 7 1 p0=1")],
            [Rx("IMAGE /X 7 1 p0=1"), Connect(2, "s2"), Rx("UPDATE /X 7 2 p0=2", 2, "s2")], // a new connection starts from its own image
            [Rx("IMAGE /X 7 4 p0=4"), Rx("STATUS /X STALE"), Rx("UPDATE /X 7 3 p0=5")], // STALE excuses a gap, not a step back
        })
        {
            var c = new HistoryChecker();
            c.Check("a", bad);
            Assert.Contains(c.Violations, v => v.Invariant == "I1");
        }
    }

    [Fact]
    public void I1_AGapAfterStale_IsAllowed_ButThatCopyIsNoLongerCompared()
    {
        var c = new HistoryChecker();
        c.Check("a", [Rx("IMAGE /X 7 1 p0=1"), Rx("STATUS /X STALE"), Rx("UPDATE /X 7 4 p0=4"), Rx("UPDATE /X 7 5 p0=5")]);
        Assert.Empty(c.Violations);
        Assert.Equal(1, c.Observations); // the image only
    }

    [Fact]
    public void I2_AMissingOrOlderFinalValue_IsReported()
    {
        var c = new HistoryChecker();
        var copies = c.Check("a", [Rx("IMAGE /X 7 1 p0=1 p1=5")]);
        Assert.Equal(1, c.CheckHolds("a", copies, Expect("/X", ("p0", 2), ("p1", 5))));
        Assert.Equal(1, c.CheckHolds("a", copies, Expect("/Y", ("p0", 1))));
        Assert.Equal(["I2", "I2"], c.Violations.Select(v => v.Invariant));
    }

    [Fact]
    public void I3_AValueGoingBack_IsReported_AcrossReconnections_Too()
    {
        var c = new HistoryChecker();
        c.Check("a", [Rx("IMAGE /X 7 1 p0=5"), Connect(2, "s2"), Rx("IMAGE /X 9 1 p0=4", 2, "s2")]);
        Assert.Equal("I3", Assert.Single(c.Violations).Invariant);
    }

    [Fact]
    public void I4_TwoContentsForOneEpochAndSeq_AreReported_AcrossClients()
    {
        var c = new HistoryChecker();
        c.Check("a", [Rx("IMAGE /X 7 1 p0=1"), Rx("UPDATE /X 7 2 p0=2")]);
        c.Check("b", [Rx("IMAGE /X 7 1 p0=1", server: "s2"), Rx("UPDATE /X 7 2 p0=3", server: "s2")]);
        Assert.Equal("I4", Assert.Single(c.Violations).Invariant);
    }

    /// <summary>A real, fault-free run passes; then each corruption of its recorded histories is caught.</summary>
    [Fact]
    public void RecordedHistories_Corrupted_AreCaughtForEachInvariant()
    {
        var schedule = Schedule.FromSeed(3, faults: false);
        var result = ScheduleRunner.Run(schedule, keepFarm: true);
        using var farm = result.Farm!;
        Assert.True(result.Violations.Count == 0, ScheduleRunner.Report(result));
        var subs = farm.Clients.Where(c => c.Name.StartsWith("sub", StringComparison.Ordinal)).ToList();
        var histories = subs.ToDictionary(s => s.Name, s => s.Events.ToList());

        // The final values, as the subscribers hold them (they passed I2 above).
        var truth = new HistoryChecker();
        var held = truth.Check("sub0", histories["sub0"]);
        var expected = held.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, long>)kv.Value.Fields.ToDictionary(f => f.Key, f => long.Parse(f.Value, System.Globalization.CultureInfo.InvariantCulture)));

        List<Violation> CheckWith(string name, List<ClientEvent> corrupted)
        {
            var c = new HistoryChecker();
            foreach (var (other, events) in histories)
            {
                var copies = c.Check(other, other == name ? corrupted : events);
                c.CheckHolds(other, copies, expected);
            }

            return [.. c.Violations];
        }

        Assert.Empty(CheckWith("sub0", histories["sub0"]));
        var h = histories["sub0"];
        int Nth(int n) => h.Select((e, i) => (e, i)).Where(x => x.e.Kind == ClientEventKind.Received && x.e.Line.StartsWith("UPDATE ", StringComparison.Ordinal)).Skip(n).First().i;

        // I1: one update lost in the middle.
        var dropped = h.ToList();
        dropped.RemoveAt(Nth(3));
        Assert.Contains(CheckWith("sub0", dropped), v => v.Invariant == "I1");

        // I4: one update's value changed (the other subscribers saw the real one at the same epoch and seq).
        var changed = h.ToList();
        var i4 = Nth(3);
        changed[i4] = changed[i4] with { Line = changed[i4].Line[..(changed[i4].Line.LastIndexOf('=') + 1)] + "999999" };
        Assert.Contains(CheckWith("sub0", changed), v => v.Invariant == "I4");

        // I3: a later value replaced by an earlier one of the same field.
        var older = h.ToList();
        var first = older.First(e => e.Kind == ClientEventKind.Received && e.Line.StartsWith("UPDATE ", StringComparison.Ordinal) && e.Line.Contains(" p0=", StringComparison.Ordinal));
        var i3 = older.FindLastIndex(e => e.Kind == ClientEventKind.Received && e.Line.StartsWith("UPDATE " + first.Line.Split(' ')[1] + " ", StringComparison.Ordinal) && e.Line.Contains(" p0=", StringComparison.Ordinal));
        older[i3] = older[i3] with { Line = older[i3].Line[..older[i3].Line.IndexOf(" p0=", StringComparison.Ordinal)] + " p0=0" };
        Assert.Contains(CheckWith("sub0", older), v => v.Invariant == "I3");

        // I2: the last messages lost (the final round never arrived).
        var cut = h.Take(Nth(0) + 1).ToList();
        Assert.Contains(CheckWith("sub0", cut), v => v.Invariant == "I2");
    }

    [Fact]
    public void FaultFreeSchedules_BreakNoInvariant()
    {
        var failed = Enumerable.Range(1, 10).Select(seed => ScheduleRunner.Run(Schedule.FromSeed(seed, faults: false))).Where(r => r.Failed).ToList();
        Assert.True(failed.Count == 0, string.Join("\n", failed.Select(r => ScheduleRunner.Report(r))));
    }
}
