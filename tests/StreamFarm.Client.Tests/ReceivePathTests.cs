using StreamFarm.Client.Tests.Kit;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests;

/// <summary>
/// The receive path's allocation savings keep its semantics: the last value changed in place (and
/// the records handed out never change), a subscription's typed messages conflated as the channel's
/// are, reused queue nodes keep the order, and names read from the wire are shared strings.
/// </summary>
public sealed class ReceivePathTests
{
    private static string[] Text(IReadOnlyList<KeyValuePair<string, string>> fields) => [.. fields.Select(f => $"{f.Key}={f.Value}")];

    [Fact]
    public void RecordState_NoRecordBeforeAnImage_ThenUpdatesSetFieldsInPlace_OlderOrOtherHistoriesChangeNothing()
    {
        var state = new RecordState("/a");
        state.Apply(Lines.Update("/a", 1, ("x", "1")), "s1");
        state.Apply(new RttpMessage { Kind = RttpMessageKind.Status, Subject = "/a", Status = SubjectStatus.Stale }, "s1");
        Assert.Null(state.Snapshot());

        state.Apply(Lines.Image("/a", 5, ("x", "1"), ("y", "1")), "s1");
        state.Apply(Lines.Update("/a", 6, ("y", "2"), ("z", "1"), ("y", "3")), "s2");
        state.Apply(Lines.Update("/a", 6, ("x", "old")), "s1");                   // not newer
        state.Apply(Lines.Update("/a", 9, ("x", "other")) with { Epoch = 8 }, "s1"); // another history
        var record = state.Snapshot()!;
        Assert.Equal(("/a", "s2", 7UL, 6UL, SubjectStatus.Ok), (record.Subject, record.Server, record.Epoch, record.Seq, record.Status));
        Assert.Equal(["x=1", "y=3", "z=1"], Text(record.Fields));
        Assert.Same(record, state.Snapshot()); // unchanged: the same record

        state.Apply(new RttpMessage { Kind = RttpMessageKind.Status, Subject = "/a", Status = SubjectStatus.Stale }, "s3");
        state.Apply(Lines.Update("/a", 7, ("x", "2")), "s3");
        var later = state.Snapshot()!;
        Assert.Equal((SubjectStatus.Stale, 7UL, "s3"), (later.Status, later.Seq, later.Server));
        Assert.Equal(["x=2", "y=3", "z=1"], Text(later.Fields));

        // A record handed out never changes behind the application's back.
        Assert.Equal(6UL, record.Seq);
        Assert.Equal(["x=1", "y=3", "z=1"], Text(record.Fields));

        // A new image replaces every field and keeps the status, as before.
        state.Apply(Lines.Image("/a", 1, ("w", "0")) with { Epoch = 9 }, "s3");
        var fresh = state.Snapshot()!;
        Assert.Equal((9UL, 1UL, SubjectStatus.Stale), (fresh.Epoch, fresh.Seq, fresh.Status));
        Assert.Equal(["w=0"], Text(fresh.Fields));
        Assert.Equal(["x=2", "y=3", "z=1"], Text(later.Fields));
    }

    [Fact]
    public void SubjectMessages_ConflateAsTheChannelDoes_LatestFieldsAndSeq_MergedCounts_ImagesKeepTheirContinuity()
    {
        var q = new DeliveryQueue<SubjectMessage>(1, OverflowPolicy.Conflate, Conflation.Instance);
        q.TryWrite(new SubjectUpdate("/a", "s1", 7, 1, 1, [KeyValuePair.Create("x", "1"), KeyValuePair.Create("y", "1")]));
        q.TryWrite(new SubjectUpdate("/a", "s1", 7, 2, 2, [KeyValuePair.Create("x", "2")]));
        q.TryWrite(new SubjectUpdate("/a", "s1", 7, 2, 1, [KeyValuePair.Create("x", "stale")])); // not newer: kept apart
        Assert.True(q.Reader.TryRead(out var merged));
        var u = Assert.IsType<SubjectUpdate>(merged);
        Assert.Equal((2UL, 3), (u.Seq, u.Merged));
        Assert.Equal(["x=2", "y=1"], Text(u.Fields));
        Assert.True(q.Reader.TryRead(out var apart));
        Assert.Equal("stale", ((SubjectUpdate)apart)["x"]);

        // An image after a move absorbs updates and keeps its continuity; a later image replaces it
        // and still says what the move missed.
        q.TryWrite(new SubjectImage("/a", "s2", 7, 5, [KeyValuePair.Create("x", "5")], Continuity.Gap));
        q.TryWrite(new SubjectUpdate("/a", "s2", 7, 6, 1, [KeyValuePair.Create("y", "6")]));
        Assert.True(q.Reader.TryRead(out var absorbed));
        var image = Assert.IsType<SubjectImage>(absorbed);
        Assert.Equal((6UL, Continuity.Gap), (image.Seq, image.Continuity));
        Assert.Equal(["x=5", "y=6"], Text(image.Fields));

        q.TryWrite(new SubjectImage("/a", "s2", 7, 7, [], Continuity.Fresh));
        q.TryWrite(new SubjectImage("/a", "s2", 8, 1, [], Continuity.Continuous));
        Assert.True(q.Reader.TryRead(out var replaced));
        Assert.Equal((8UL, Continuity.Fresh), (((SubjectImage)replaced).Epoch, ((SubjectImage)replaced).Continuity));

        // Never across servers, nor across a status.
        q.TryWrite(new SubjectUpdate("/a", "s2", 8, 2, 1, []));
        q.TryWrite(new SubjectUpdate("/a", "s3", 8, 3, 1, []));
        q.TryWrite(new SubjectStatusChange("/a", "s3", SubjectStatus.Stale));
        q.TryWrite(new SubjectUpdate("/a", "s3", 8, 4, 1, []));
        var rest = new List<SubjectMessage>();
        while (q.Reader.TryRead(out var m))
        {
            rest.Add(m);
        }

        Assert.Equal(["s2 2", "s3 3", "s3 Stale", "s3 4"], rest.Select(m => m switch
        {
            SubjectUpdate x => $"{x.Server} {x.Seq}",
            SubjectStatusChange s => $"{s.Server} {s.Status}",
            _ => "?",
        }));
    }

    [Fact]
    public async Task DeliveryQueue_ReusesItsNodes_AndKeepsTheOrder_AcrossManyFillsAndDrains()
    {
        var q = new DeliveryQueue<RttpMessage>(8, OverflowPolicy.Conflate, Conflation.Instance);
        var seq = 0UL;
        var expected = 0UL;
        for (var round = 0; round < 200; round++)
        {
            var n = 1 + (round % 8);
            for (var i = 0; i < n; i++)
            {
                Assert.True(q.TryWrite(Lines.Update($"/s{i}", ++seq, ("x", seq.ToString(System.Globalization.CultureInfo.InvariantCulture)))));
            }

            for (var i = 0; i < n; i++)
            {
                Assert.True(q.Reader.TryRead(out var m));
                Assert.Equal(++expected, m.Seq);
                Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Fields[0].Value);
            }

            Assert.False(q.Reader.TryRead(out _));
        }

        // And the reader still wakes up for the next one.
        var waiting = q.Reader.WaitToReadAsync().AsTask();
        Assert.False(waiting.IsCompleted);
        q.TryWrite(Lines.Update("/a", ++seq));
        Assert.True(await waiting);
        Assert.Equal(0, q.Conflated + q.Dropped);
    }

    [Fact]
    public async Task DeliveryQueue_AWaitingReader_IsWokenByAWrite_CancelledByItsToken_AndEndedByCompletion()
    {
        var q = new DeliveryQueue<RttpMessage>(4, OverflowPolicy.Conflate, Conflation.Instance);
        using (var cts = new CancellationTokenSource())
        {
            var cancelled = q.Reader.WaitToReadAsync(cts.Token).AsTask();
            Assert.False(cancelled.IsCompleted);
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        }

        // The wait is reused: again and again, each woken by the next write.
        for (var i = 1UL; i <= 3; i++)
        {
            using var cts = new CancellationTokenSource();
            var wait = q.Reader.WaitToReadAsync(cts.Token);
            Assert.False(wait.IsCompleted);
            q.TryWrite(Lines.Update("/a", i));
            Assert.True(await wait);
            Assert.True(q.Reader.TryRead(out var m));
            Assert.Equal(i, m.Seq);
        }

        // Two waiters at once: both woken.
        var first = q.Reader.WaitToReadAsync().AsTask();
        var second = q.Reader.WaitToReadAsync().AsTask();
        q.TryWrite(Lines.Update("/a", 9));
        Assert.True(await first);
        Assert.True(await second);
        Assert.True(q.Reader.TryRead(out _));

        var end = q.Reader.WaitToReadAsync().AsTask();
        q.Complete(new RttpConnectionException("gone"));
        await Assert.ThrowsAsync<RttpConnectionException>(() => end);
    }

    [Fact]
    public void NameCache_GivesTheSameStringForTheSameBytes()
    {
        var names = new NameCache();
        var a = names.Get("/FX/GBPUSD"u8);
        var b = names.Get("/FX/GBPUSD"u8);
        Assert.Equal("/FX/GBPUSD", a);
        Assert.Same(a, b);
        Assert.Equal("bid", names.Get("bid"u8));
        Assert.NotSame(a, names.Get("/FX/EURUSD"u8));
        var longName = new string('x', 300);
        Assert.Equal(longName, names.Get(System.Text.Encoding.UTF8.GetBytes(longName)));
        Assert.Equal("é", names.Get("é"u8));
    }
}
