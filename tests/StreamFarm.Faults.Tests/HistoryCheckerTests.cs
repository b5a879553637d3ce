using StreamFarm.Faults.Tests.Checking;

namespace StreamFarm.Faults.Tests;

/// <summary>The checker on hand-made histories: one that holds every invariant, and for each invariant histories that must break it.</summary>
public sealed class HistoryCheckerTests
{
    private static readonly DateTime T0 = new(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void GoodHistory_WithConflationStaleAndANewEpoch_HoldsEverything()
    {
        var b = new Builder();
        b.Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked).Pub("p1", "/a", 3, PubOutcome.Unknown)
            .Pub("p1", "/a", 3, PubOutcome.Acked).Pub("p1", "/a", 4, PubOutcome.Acked).Pub("p2", "/a", 1, PubOutcome.Acked);
        b.Line("x", 1, "s1", "STATUS /a NOT_FOUND")
            .Line("x", 1, "s1", "IMAGE /a 10 1 p1=1")
            .Line("x", 1, "s1", "UPDATE /a 10 4 @merged=3 p1=3")
            .Line("x", 1, "s1", "STATUS /a STALE")
            .Line("x", 1, "s1", "IMAGE /a 20 4 p1=3")
            .Line("x", 1, "s1", "STATUS /a OK")
            .Line("x", 1, "s1", "UPDATE /a 20 5 p1=4")
            .Line("x", 2, "s2", "IMAGE /a 20 5 p1=4")
            .Line("x", 2, "s2", "UPDATE /a 20 6 p2=1")
            .Line("y", 1, "s2", "IMAGE /a 10 2 p1=2")
            .Line("y", 1, "s2", "UPDATE /a 10 3 p1=3")
            .Line("y", 1, "s2", "STATUS /a STALE")
            .Line("y", 1, "s2", "UPDATE /a 20 6 p2=1")
            .Line("y", 1, "s2", "IMAGE /a 20 6 p1=4 p2=1");
        var v = HistoryChecker.Check(b.Build(), ["x", "y"]);
        Assert.True(v.Count == 0, HistoryChecker.Report(b.Build(), v));
    }

    [Fact]
    public void I1_AnUpdateThatSkipsSeqsWithoutASignal_Fails()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Unknown).Pub("p1", "/a", 3, PubOutcome.Unknown);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 3 p1=3");
        AssertFails(b, HistoryChecker.I1, "UPDATE 10/3");
    }

    [Fact]
    public void I1_AnUpdateOfAnotherEpochWithoutAnImage_Fails()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 11 2 p1=2");
        AssertFails(b, HistoryChecker.I1, "after epoch 10 seq 1");
    }

    [Fact]
    public void I1_AnUpdateFirstInASession_Fails_ButAfterStaleAJumpIsSignalled()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 2, "s2", "UPDATE /a 10 2 p1=2");
        AssertFails(b, HistoryChecker.I1, "no image in this session");

        var signalled = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Unknown).Pub("p1", "/a", 3, PubOutcome.Unknown);
        signalled.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "STATUS /a STALE").Line("x", 1, "s1", "UPDATE /a 10 3 p1=3");
        Assert.Empty(HistoryChecker.Check(signalled.Build()));
    }

    [Fact]
    public void I1_ContiguousSeqsThatSkipAnAckedValue_Fail_AnUnacknowledgedOrMergedSkipDoesNot()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked).Pub("p1", "/a", 3, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 2 p1=3");
        AssertFails(b, HistoryChecker.I1, "skipping ACKed value(s) 2");

        var lost = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Unknown).Pub("p1", "/a", 3, PubOutcome.Acked);
        lost.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 2 p1=3");
        Assert.Empty(HistoryChecker.Check(lost.Build()));

        var merged = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked).Pub("p1", "/a", 3, PubOutcome.Acked);
        merged.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 3 @merged=2 p1=3");
        Assert.Empty(HistoryChecker.Check(merged.Build()));
    }

    [Fact]
    public void I1_AnAckedValueLostWithItsOwner_KilledRightAfter_IsAllowed_OtherwiseNot()
    {
        // s1 owned /a, applied p1=2 and acknowledged it, and was killed 100 ms later, before any
        // other server had it: the next owner's history may skip it (an ACK is not a replication).
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked);
        var ackedAt = b.Now;
        b.Pub("p1", "/a", 3, PubOutcome.Acked);
        b.Line("x", 1, "s2", "IMAGE /a 10 1 p1=1").Line("x", 1, "s2", "UPDATE /a 10 2 p1=3");
        Assert.Empty(HistoryChecker.Check(b.Build() with { Kills = [("s1", ackedAt.AddMilliseconds(100))], OwnerOf = _ => "s1" }));

        // Not when the server that acknowledged it did not own the subject (the owner had it), nor
        // when it was killed long after.
        Assert.Contains(HistoryChecker.Check(b.Build() with { Kills = [("s1", ackedAt.AddMilliseconds(100))], OwnerOf = _ => "s2" }), v => v.Invariant == HistoryChecker.I1);
        Assert.Contains(HistoryChecker.Check(b.Build() with { Kills = [("s1", ackedAt.AddSeconds(3))], OwnerOf = _ => "s1" }), v => v.Invariant == HistoryChecker.I1);

        // Acknowledged while the network was cut (or just after the heal): one side's value, which
        // the other side's history may never show. Not outside such a window.
        Assert.Empty(HistoryChecker.Check(b.Build() with { Partitions = [(ackedAt.AddSeconds(-5), ackedAt.AddSeconds(-1))] }));
        Assert.Contains(HistoryChecker.Check(b.Build() with { Partitions = [(ackedAt.AddSeconds(-20), ackedAt.AddSeconds(-10))] }), v => v.Invariant == HistoryChecker.I1);
    }

    [Fact]
    public void I2_AValueBelowTheLastAcked_Fails()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked).Pub("p1", "/a", 3, PubOutcome.Unknown);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1");
        AssertFails(b, HistoryChecker.I2, "p1 is 1, expected between 2 (last ACKed) and 3", "x");
    }

    [Fact]
    public void I2_WhenTheLastPublicationWasAcked_AnythingButItFails()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Nacked).Pub("p1", "/a", 3, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 2 p1=2");
        AssertFails(b, HistoryChecker.I2, "expected exactly 3", "x");
    }

    [Fact]
    public void I2_AValueNeverSentOrAMissingRecordOrDisagreement_Fails()
    {
        var beyond = new Builder().Pub("p1", "/a", 1, PubOutcome.Unknown);
        beyond.Line("x", 1, "s1", "IMAGE /a 10 1 p1=7");
        AssertFails(beyond, HistoryChecker.I2, "p1 is 7, expected between nothing (none ACKed) and 1", "x");

        var missing = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked);
        missing.Line("x", 1, "s1", "STATUS /a NOT_FOUND");
        AssertFails(missing, HistoryChecker.I2, "p1 is no image", "x");

        var disagree = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Unknown);
        disagree.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("y", 1, "s2", "IMAGE /a 10 2 p1=2");
        AssertFails(disagree, HistoryChecker.I2, "observers disagree on p1", "x", "y");
    }

    [Fact]
    public void I2_OnlyTheLastSessionCounts()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 2, "s2", "STATUS /a NOT_FOUND");
        AssertFails(b, HistoryChecker.I2, "no image", "x");
    }

    [Fact]
    public void I3_AValueGoingBackAcrossSessions_Fails()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 2 p1=2").Line("x", 2, "s2", "IMAGE /a 30 1 p1=1");
        AssertFails(b, HistoryChecker.I3, "p1 went back from 2 to 1");
    }

    [Fact]
    public void I3_AnOlderImageOfTheSameEpoch_AVanishedFieldOrNotFound_Fail()
    {
        var older = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p2", "/a", 1, PubOutcome.Acked);
        older.Line("x", 1, "s1", "IMAGE /a 10 2 p1=1 p2=1").Line("x", 2, "s2", "IMAGE /a 10 1 p1=1 p2=1");
        AssertFails(older, HistoryChecker.I3, "image of epoch 10 at seq 1, after seq 2");

        var vanished = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p2", "/a", 1, PubOutcome.Acked);
        vanished.Line("x", 1, "s1", "IMAGE /a 10 2 p1=1 p2=1").Line("x", 1, "s1", "IMAGE /a 20 1 p2=1");
        AssertFails(vanished, HistoryChecker.I3, "p1 vanished");

        var notFound = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked);
        notFound.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 2, "s3", "STATUS /a NOT_FOUND");
        AssertFails(notFound, HistoryChecker.I3, "NOT_FOUND after p1=1");
    }

    [Fact]
    public void I4_TwoContentsForOneEpochAndSeq_Fail()
    {
        var images = new Builder().Pub("p1", "/a", 1, PubOutcome.Unknown).Pub("p1", "/a", 2, PubOutcome.Unknown);
        images.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("y", 1, "s2", "IMAGE /a 10 1 p1=2");
        AssertFails(images, HistoryChecker.I4, "image/record at epoch 10 seq 1 is 'p1=2' here but 'p1=1' elsewhere");

        var updates = new Builder().Pub("p1", "/a", 1, PubOutcome.Unknown).Pub("p1", "/a", 2, PubOutcome.Unknown).Pub("p2", "/a", 1, PubOutcome.Unknown);
        updates.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 2 p1=2")
            .Line("y", 1, "s2", "IMAGE /a 10 1 p1=1").Line("y", 1, "s2", "UPDATE /a 10 2 p2=1");
        AssertFails(updates, HistoryChecker.I4, "update at epoch 10 seq 2 is 'p2=1' here but 'p1=2' elsewhere");

        // The record a session follows (image then updates) must equal another's image at that seq.
        var record = new Builder().Pub("p1", "/a", 1, PubOutcome.Unknown).Pub("p1", "/a", 2, PubOutcome.Unknown).Pub("p2", "/a", 1, PubOutcome.Unknown);
        record.Line("x", 1, "s1", "IMAGE /a 10 1 p1=1").Line("x", 1, "s1", "UPDATE /a 10 2 p2=1")
            .Line("y", 1, "s2", "IMAGE /a 10 2 p1=2 p2=1");
        AssertFails(record, HistoryChecker.I4, "is 'p1=2 p2=1' here but 'p1=1 p2=1' elsewhere");
    }

    [Fact]
    public void I5_AnUnansweredPublicationOnAnOpenConnection_OrAnAnswerToNothing_Fails()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Pending);
        AssertFails(b, HistoryChecker.I5, "no ACK or NACK for @ack=");

        var anomaly = new Builder();
        anomaly.Anomalies.Add(new Anomaly(T0, "p1", "ACK 99 answers no publication"));
        AssertFails(anomaly, HistoryChecker.I5, "ACK 99 answers no publication");
    }

    [Fact]
    public void Report_NamesTheInvariantTheSubjectTheSubscriberTheLinesAndTheSeed()
    {
        var b = new Builder().Pub("p1", "/a", 1, PubOutcome.Acked).Pub("p1", "/a", 2, PubOutcome.Acked);
        b.Line("x", 1, "s1", "IMAGE /a 10 2 p1=2").Line("x", 2, "s2", "IMAGE /a 30 1 p1=1");
        var h = b.Build() with { Seed = 4242, Scenario = "demo" };
        var report = HistoryChecker.Report(h, HistoryChecker.Check(h, ["x"]));
        Assert.Contains("FAULTS_SEED=4242", report, StringComparison.Ordinal);
        Assert.Contains("FAILED I3 no going back", report, StringComparison.Ordinal);
        Assert.Contains("FAILED I2 convergence", report, StringComparison.Ordinal);
        Assert.Contains("x#2@s2 IMAGE /a 30 1 p1=1", report, StringComparison.Ordinal);
    }

    [Fact]
    public void WireLine_ParsesPositionalsFieldsMetaAndEscapes()
    {
        var u = WireLine.Parse("UPDATE /a/b 17 9 @merged=3 p1=5 note=a\\sb\\\\c\\x41 @x=y");
        Assert.Equal(("/a/b", 17UL, 9UL, 3UL), (u.Subject, u.Epoch, u.Seq, u.Merged));
        Assert.Equal(["p1=5", "note=a b\\cA"], u.Fields.Select(f => $"{f.Key}={f.Value}"));
        var n = WireLine.Parse("NACK 12 UNAVAILABLE @after=250 owner unreachable: a=b");
        Assert.Equal(["12", "UNAVAILABLE"], n.Args);
        Assert.Equal("250", n.Meta["after"]);
        Assert.Equal("owner unreachable: a=b", n.Rest);
        Assert.Equal("STALE", WireLine.Parse("STATUS /a STALE").Status);
    }

    private static void AssertFails(Builder b, string invariant, string text, params string[] observers)
    {
        var h = b.Build();
        var v = HistoryChecker.Check(h, observers.Length > 0 ? observers : null);
        Assert.True(v.Any(x => x.Invariant == invariant && x.What.Contains(text, StringComparison.Ordinal)),
            $"expected {invariant} with '{text}', got:\n{HistoryChecker.Report(h, v)}");
    }

    private sealed class Builder
    {
        private readonly List<PubRecord> _pubs = [];
        private readonly List<SubLine> _lines = [];
        private DateTime _at = T0;

        public List<Anomaly> Anomalies { get; } = [];

        public Builder Pub(string publisher, string subject, long value, PubOutcome outcome)
        {
            _at = _at.AddMilliseconds(10);
            _pubs.Add(new PubRecord(publisher, publisher, subject, value, $"{_pubs.Count + 1}", "s1", 1, _at, outcome, outcome == PubOutcome.Acked ? _at.AddMilliseconds(1) : null));
            return this;
        }

        public DateTime Now => _at;

        public Builder Line(string subscriber, int session, string server, string text)
        {
            _at = _at.AddMilliseconds(10);
            _lines.Add(new SubLine(subscriber, session, server, _at, text));
            return this;
        }

        public History Build() =>
            new("hand-made", 0, T0, [.. _pubs.Select(p => p.Subject).Concat(_lines.Select(l => WireLine.Parse(l.Text).Subject)).Distinct()], _pubs, _lines, Anomalies, []);
    }
}
