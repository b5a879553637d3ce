using System.Buffers;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Protocol;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Tests;

/// <summary>
/// The record's rules under faults (docs/architecture.md, "Correctness under faults"): per-field
/// last writer wins by stamp, seeds merged in any order, epochs that only grow across owners, and
/// a new epoch after a new ownership term. Records are driven directly, with a fake route side.
/// </summary>
public sealed class RecordMergeTests
{
    private static readonly RttpLimits Unlimited = new() { MaxLineBytes = int.MaxValue, MaxFields = int.MaxValue };

    private static RttpFrame Frame(string line)
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line)), frame, Unlimited, out var reason));
        Assert.Null(reason);
        return frame;
    }

    private static string Fields(SubjectRecord r) => string.Join(' ', r.Snapshot().Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));

    private static (FakeTimeProvider Time, RecordClock Clock) NewClock(int bits = 1)
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-05T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        return (time, new RecordClock(time, bits, TimeSpan.FromSeconds(4)));
    }

    [Fact]
    public void OlderPublication_ArrivingLate_IsSuperseded_AndNeverMovesAFieldBack()
    {
        var (_, clock) = NewClock();
        var r = new SubjectRecord("/p", clock.NextEpoch(), clock: clock);
        Assert.Equal(PublishOutcome.Applied, r.Publish(Frame("PUB /p c=154"), replace: false, stamp: 2000));
        Assert.Equal(PublishOutcome.Superseded, r.Publish(Frame("PUB /p c=135"), replace: false, stamp: 1000));
        Assert.Equal("c=154", Fields(r));
        Assert.Equal(1UL, r.Seq); // a superseded publication takes no seq

        // Partly older: only the fields it wrote last are applied.
        Assert.Equal(PublishOutcome.Applied, r.Publish(Frame("PUB /p c=140 d=1"), replace: false, stamp: 1500));
        Assert.Equal("c=154 d=1", Fields(r));
        Assert.Equal(2UL, r.Seq);

        // The same publication again (a resend after a broken route) changes nothing.
        Assert.Equal(PublishOutcome.Superseded, r.Publish(Frame("PUB /p c=154"), replace: false, stamp: 2000));
        Assert.Equal(2UL, r.Seq);
    }

    [Fact]
    public void Image_RemovesOnlyOlderFields_AndOlderPublicationsAfterItAreIgnored()
    {
        var (_, clock) = NewClock();
        var r = new SubjectRecord("/i", clock.NextEpoch(), clock: clock);
        r.Publish(Frame("PUB /i a=1 b=1"), replace: false, stamp: 100);
        r.Publish(Frame("PUB /i c=1"), replace: false, stamp: 300);
        Assert.Equal(PublishOutcome.Applied, r.Publish(Frame("PUBIMAGE /i a=2"), replace: true, stamp: 200));
        Assert.Equal("a=2 c=1", Fields(r)); // b was older than the image; c was written after it
        Assert.Equal(PublishOutcome.Superseded, r.Publish(Frame("PUB /i b=9"), replace: false, stamp: 150));
        Assert.Equal(PublishOutcome.Superseded, r.Publish(Frame("PUBIMAGE /i z=1"), replace: true, stamp: 180));
        Assert.Equal("a=2 c=1", Fields(r));
    }

    [Fact]
    public void SamePublication_WithAFieldTwice_TheLastValueWins()
    {
        var r = new SubjectRecord("/d", 1);
        r.Publish(Frame("PUB /d a=1 a=2"), replace: false, stamp: 10);
        Assert.Equal("a=2", Fields(r));
    }

    [Fact]
    public void Seeds_InAnyOrder_WithPublications_EndInTheSameState()
    {
        // Three copies of one subject (two servers' histories and a late publication), merged in
        // every order: the same fields every time.
        string[] lines =
        [
            "PUBIMAGE /s @seed=100.5 @clr=0 @fts=10,50 a=1 b=5",
            "PUBIMAGE /s @seed=200.9 @handover=1 @clr=0 @fts=10,90,70 a=1 b=9 c=7",
            "PUB /s @ts=60 b=6 d=6",
        ];
        var results = new HashSet<string>();
        foreach (var order in Permutations([0, 1, 2]))
        {
            var (_, clock) = NewClock();
            var r = new SubjectRecord("/s", clock.NextEpoch(), clock: clock);
            foreach (var i in order)
            {
                var f = Frame(lines[i]);
                if (f.TryGetMeta("seed"u8, out var seed))
                {
                    var epoch = ulong.Parse(Encoding.ASCII.GetString(seed).Split('.')[0], System.Globalization.CultureInfo.InvariantCulture);
                    r.Seed(f, epoch, f.TryGetMeta("handover"u8, out _) ? SeedKind.Handover : SeedKind.Orphan, null, 0);
                }
                else
                {
                    r.Publish(f, replace: false, stamp: 60);
                }
            }

            results.Add(Fields(r));
        }

        Assert.Equal(["a=1 b=9 c=7 d=6"], results);
    }

    [Fact]
    public void ReturningOldOwner_TakesTheNewerHistory_UnderAHigherEpoch()
    {
        // Issue 10, observation 1: the old owner (c=5) comes back; the interim owner's hand-over
        // (c=20, a later epoch) must win, and the epoch subscribers see must not go back.
        var (_, clockA) = NewClock(bits: 1);
        var old = new SubjectRecord("/r", clockA.NextEpoch(), clock: clockA);
        old.Publish(Frame("PUB /r c=5"), replace: false, stamp: 500);
        var interimEpoch = old.Epoch + 10_000;
        var handover = Frame("PUBIMAGE /r @seed=" + interimEpoch + ".16 @handover=1 @clr=0 @fts=2000 c=20");

        Assert.True(old.Seed(handover, interimEpoch, SeedKind.Handover, null, 0));
        Assert.Equal("c=20", Fields(old));
        Assert.True(old.Epoch > interimEpoch, "the returning owner continues above the interim owner's epoch");

        // A stale publication the old owner still held is older than the interim history: ignored.
        Assert.Equal(PublishOutcome.Superseded, old.Publish(Frame("PUB /r c=9"), replace: false, stamp: 900));
        Assert.Equal("c=20", Fields(old));
    }

    [Fact]
    public void NewTerm_MovesAnOwnedRecordToANewEpoch_BeforeItSequencesAnything()
    {
        var (time, clock) = NewClock();
        var r = new SubjectRecord("/t", clock.NextEpoch(), clock: clock);
        r.Publish(Frame("PUB /t a=1"), replace: false);
        var before = r.Epoch;

        // A pause longer than the limit (no housekeeping beat meanwhile): the next publication finds a new term.
        time.Advance(TimeSpan.FromSeconds(5));
        r.Publish(Frame("PUB /t a=2"), replace: false);
        Assert.True(r.Epoch > before);
        Assert.Equal(2UL, r.Seq); // the image of the new epoch (1), then the publication (2)
        Assert.Equal(1, clock.Renounced);

        // Regular beats: no new term.
        for (var i = 0; i < 10; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            clock.Beat();
        }

        var same = r.Epoch;
        r.Publish(Frame("PUB /t a=3"), replace: false);
        Assert.Equal(same, r.Epoch);

        // Told that the farm declared it dead: a new term as well.
        clock.Renounce();
        r.Publish(Frame("PUB /t a=4"), replace: false);
        Assert.True(r.Epoch > same);
    }

    [Fact]
    public void Replica_MovingToANewOwner_SendsItsCopyBeforeItSubscribes()
    {
        var (_, clock) = NewClock();
        var router = new RecordingUpstream();
        var r = new SubjectRecord("/m", clock.NextEpoch(), upstream: "s2", clock: clock);

        // A replica without data (nobody subscribed here) has no copy to send.
        r.Reassign("s3", _ => true, router);
        Assert.DoesNotContain(router.Calls, c => c.StartsWith("seed", StringComparison.Ordinal));

        var owned = new SubjectRecord("/m", clock.NextEpoch(), clock: clock);
        owned.Publish(Frame("PUB /m a=1"), replace: false, stamp: 42);
        owned.Reassign("s4", _ => true, router);
        Assert.Equal("seed s4 PUBIMAGE /m @seed=" + router.LastSeedEpoch + ".1 @handover=1 @clr=0 @fts=42 a=1", router.Calls[^1]);
        Assert.Equal("s4", owned.Upstream);
    }

    [Fact]
    public void Stamps_GrowWithinAServer_AndFollowWhatItSaw()
    {
        var (time, clock) = NewClock(bits: 5);
        var a = clock.NextStamp();
        var b = clock.NextStamp();
        Assert.True(b > a);
        Assert.Equal(5UL, a & 1023);

        // A stamp from a server whose clock is a minute ahead: later stamps here are above it.
        var ahead = ((ulong)time.GetUtcNow().AddMinutes(1).ToUnixTimeMilliseconds() << 22) | 7;
        clock.Observe(ahead);
        Assert.True(clock.NextStamp() > ahead);

        // Epochs never below a copy's.
        var high = clock.NextEpoch() + 1_000_000;
        Assert.True(clock.NextEpoch(high + 1) > high);
    }

    /// <summary>
    /// A standby copy (this server next in line, no client of its own subscribed) follows the owner
    /// like a replica with subscribers, and is what this server takes the subject over with when the
    /// owner dies: the owner's last writes, not nothing. Without it the owner's lines are ignored.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void StandbyCopy_FollowsTheOwner_AndIsWhatTheSuccessorTakesOverWith(bool standby)
    {
        var (_, clock) = NewClock(bits: 2);
        var routes = new RecordingUpstream();
        var r = new SubjectRecord("/fx", clock.NextEpoch(), upstream: "s1", clock: clock);
        if (standby)
        {
            Assert.True(r.KeepStandby(routes));
            Assert.True(r.KeepStandby(routes)); // again: nothing more asked
            Assert.Equal(["sub s1 /fx"], routes.Calls);
        }

        r.ApplyImage("s1", Frame("IMAGE /fx 77 1 @clr=5 @fts=10 bid=1.10"), 77, 1, routes);
        r.ApplyUpdate("s1", Frame("UPDATE /fx 77 2 @ts=20 bid=1.12"), 77, 2);
        Assert.Equal(standby ? "bid=1.12" : "", Fields(r));
        if (standby)
        {
            Assert.False(r.TryRetire()); // a standby copy is not dropped as unused
        }

        // The owner dies: this server (its successor) owns the subject now.
        r.Reassign(null, _ => false, routes);
        Assert.Null(r.Upstream);
        Assert.False(r.IsStandby);
        if (standby)
        {
            Assert.Equal("bid=1.12", Fields(r));
            Assert.True(r.Epoch > 77);
            Assert.True(r.IsHolding); // for what the survivors still hold of the dead owner's last writes
            r.ReleaseNow();
            Assert.Equal("bid=1.12", Fields(r));
            Assert.True(r.IsStale); // until a publisher publishes
        }
        else
        {
            Assert.Equal("", Fields(r));
        }
    }

    [Fact]
    public void StandbyCopy_Dropped_WhenNoLongerNextInLine_UnsubscribesAndIsUnused_UnlessAClientSubscribes()
    {
        var routes = new RecordingUpstream();
        var r = new SubjectRecord("/fx", 1, upstream: "s1");
        r.KeepStandby(routes);
        r.ApplyImage("s1", Frame("IMAGE /fx 77 1 bid=1.10"), 77, 1, routes);
        Assert.True(r.DropStandby(routes));
        Assert.Equal(["sub s1 /fx", "unsub s1 /fx"], routes.Calls);
        Assert.Equal("", Fields(r));
        Assert.False(r.IsStandby);

        // Owned here (the tables disagree for a moment): nothing to follow yet, but the ask is kept,
        // and once this server's table names the owner the record follows it. The owner asks once:
        // forgotten here, this server would hold no copy when the owner dies.
        var owned = new SubjectRecord("/own", 1);
        Assert.False(owned.KeepStandby(routes));
        Assert.DoesNotContain(routes.Calls, c => c.EndsWith(" /own", StringComparison.Ordinal));
        owned.Reassign("s1", _ => true, routes);
        Assert.Equal("sub s1 /own", routes.Calls[^1]);
        Assert.True(owned.IsStandby);
        Assert.False(owned.TryRetire());
    }

    [Fact]
    public void Owner_TellsItsSuccessor_OnceItHasData_OnceEach_AndAgainWhenTheRouteToItComesBack()
    {
        var routes = new RecordingUpstream();
        var r = new SubjectRecord("/fx", 1);
        r.SetSuccessor("s2");
        r.TellSuccessor(routes);
        Assert.Empty(routes.Calls); // nothing to keep yet

        r.Publish(Frame("PUB /fx bid=1"), replace: false, routes, stamp: 10);
        Assert.True(r.SuccessorUntold);
        r.TellSuccessor(routes);
        r.TellSuccessor(routes);
        Assert.Equal(["standby s2 /fx"], routes.Calls);
        Assert.False(r.SuccessorUntold);

        r.TellSuccessor(routes, again: "s3"); // a route to another server: not its successor
        r.TellSuccessor(routes, again: "s2");
        r.SetSuccessor("s3"); // the owners changed
        r.TellSuccessor(routes);
        Assert.Equal(["standby s2 /fx", "standby s2 /fx", "standby s3 /fx"], routes.Calls);

        // A replica has no successor to tell.
        var replica = new SubjectRecord("/r", 1, upstream: "s1");
        replica.SetSuccessor("s2");
        Assert.False(replica.SuccessorUntold);
    }

    private static IEnumerable<int[]> Permutations(int[] items) =>
        items.Length <= 1 ? [items] : items.SelectMany((x, i) => Permutations([.. items.Take(i), .. items.Skip(i + 1)]).Select(rest => (int[])[x, .. rest]));

    private sealed class RecordingUpstream : IUpstream
    {
        public List<string> Calls { get; } = [];

        public string LastSeedEpoch { get; private set; } = "";

        public bool Forward(string owner, RttpFrame frame, ulong stamp, int hop, PubOrigin origin)
        {
            Calls.Add($"forward {owner} {Encoding.UTF8.GetString(frame.Line.Span)}");
            return true;
        }

        public void Seed(string owner, byte[] line)
        {
            var text = Encoding.UTF8.GetString(line).TrimEnd('\n');
            LastSeedEpoch = text.Split(' ')[2]["@seed=".Length..].Split('.')[0];
            Calls.Add($"seed {owner} {text}");
        }

        public void Subscribe(string owner, byte[] subjectUtf8) => Calls.Add($"sub {owner} {Encoding.UTF8.GetString(subjectUtf8)}");

        public void Unsubscribe(string owner, byte[] subjectUtf8) => Calls.Add($"unsub {owner} {Encoding.UTF8.GetString(subjectUtf8)}");

        public void Standby(string successor, byte[] subjectUtf8) => Calls.Add($"standby {successor} {Encoding.UTF8.GetString(subjectUtf8)}");
    }
}
