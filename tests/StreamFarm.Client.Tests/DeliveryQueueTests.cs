using StreamFarm.Client.Tests.Kit;
namespace StreamFarm.Client.Tests;

/// <summary>The buffer between a connection and the application: each overflow policy, on its own, in memory.</summary>
public sealed class DeliveryQueueTests
{
    private static List<RttpMessage> ReadAll(DeliveryQueue<RttpMessage> q)
    {
        var all = new List<RttpMessage>();
        while (q.Reader.TryRead(out var m))
        {
            all.Add(m);
        }

        return all;
    }

    [Fact]
    public void Conflate_WhenFull_MergesIntoTheWaitingMessageOfTheSubject_LatestFieldsAndSeq_MergedCounts()
    {
        var events = new List<OverflowEventArgs>();
        var q = new DeliveryQueue<RttpMessage>(2, OverflowPolicy.Conflate, Conflation.Instance, e => { lock (events) { events.Add(e); } });
        Assert.True(q.TryWrite(Lines.Update("/a", 1, ("x", "1"), ("y", "1"))));
        Assert.True(q.TryWrite(Lines.Update("/b", 1, ("x", "1"))));
        Assert.True(q.TryWrite(Lines.Update("/a", 2, ("x", "2"))));
        Assert.True(q.TryWrite(Lines.Update("/a", 3, ("z", "3"))));

        var all = ReadAll(q);
        Assert.Equal(2, all.Count);
        Assert.Equal("/a", all[0].Subject);
        Assert.Equal(3UL, all[0].Seq);
        Assert.Equal(3, all[0].Merged);
        Assert.Equal(["x=2", "y=1", "z=3"], all[0].Fields.Select(f => $"{f.Key}={f.Value}"));
        Assert.Equal(2, q.Conflated);
        Assert.Equal(0, q.Dropped);
    }

    [Fact]
    public void Conflate_AnImageAbsorbsUpdates_AndANewImageReplacesWhatWaits()
    {
        var q = new DeliveryQueue<RttpMessage>(1, OverflowPolicy.Conflate, Conflation.Instance);
        q.TryWrite(Lines.Image("/a", 5, ("x", "1"), ("y", "1")));
        q.TryWrite(Lines.Update("/a", 6, ("y", "2")));
        var absorbed = Assert.Single(ReadAll(q));
        Assert.Equal(RttpMessageKind.Image, absorbed.Kind);
        Assert.Equal(6UL, absorbed.Seq);
        Assert.Equal(["x=1", "y=2"], absorbed.Fields.Select(f => $"{f.Key}={f.Value}"));

        q.TryWrite(Lines.Update("/a", 7, ("y", "3")));
        q.TryWrite(Lines.Image("/a", 1, ("w", "0")) with { Epoch = 8 });
        var replaced = Assert.Single(ReadAll(q));
        Assert.Equal((8UL, 1UL), (replaced.Epoch, replaced.Seq));
    }

    [Fact]
    public void Conflate_NeverMergesAcrossAStatusOfTheSubject_NorDropsControlMessages()
    {
        var q = new DeliveryQueue<RttpMessage>(1, OverflowPolicy.Conflate, Conflation.Instance);
        q.TryWrite(Lines.Update("/a", 1, ("x", "1")));
        q.TryWrite(new RttpMessage { Kind = RttpMessageKind.Status, Subject = "/a", Status = Protocol.SubjectStatus.Stale });
        q.TryWrite(Lines.Update("/a", 2, ("x", "2")));
        q.TryWrite(Lines.Update("/a", 3, ("x", "3")));
        Assert.Equal([RttpMessageKind.Update, RttpMessageKind.Status, RttpMessageKind.Update], ReadAll(q).Select(m => m.Kind));
    }

    [Fact]
    public void DropOldest_WhenFull_DropsTheOldestData_KeepsControlMessages_AndCounts()
    {
        var q = new DeliveryQueue<RttpMessage>(2, OverflowPolicy.DropOldest, Conflation.Instance);
        q.TryWrite(new RttpMessage { Kind = RttpMessageKind.Move, Code = "DRAINING" });
        q.TryWrite(Lines.Update("/a", 1, ("x", "1")));
        q.TryWrite(Lines.Update("/a", 2, ("x", "2")));
        q.TryWrite(Lines.Update("/b", 1, ("x", "1")));
        Assert.Equal(["Move:", "Update:/b"], ReadAll(q).Select(m => $"{m.Kind}:{m.Subject}"));
        Assert.Equal(2, q.Dropped);
    }

    [Fact]
    public async Task Wait_WhenFull_TheWriterWaitsUntilTheApplicationReads()
    {
        var q = new DeliveryQueue<RttpMessage>(1, OverflowPolicy.Wait, Conflation.Instance);
        Assert.True(q.TryWrite(Lines.Update("/a", 1)));
        Assert.False(q.TryWrite(Lines.Update("/a", 2)));
        var write = q.WriteAsync(Lines.Update("/a", 2), CancellationToken.None).AsTask();
        await Eventually(() => q.IsWriterWaiting);
        Assert.False(write.IsCompleted);

        Assert.True(q.Reader.TryRead(out var first));
        Assert.Equal(1UL, first.Seq);
        Assert.True(await write);
        Assert.False(q.IsWriterWaiting);
        Assert.Equal(1, q.Waits);
        Assert.Equal(0, q.Conflated + q.Dropped);
    }

    [Fact]
    public async Task Complete_ReadersGetWhatWaited_ThenTheError()
    {
        var q = new DeliveryQueue<RttpMessage>(4, OverflowPolicy.Conflate, Conflation.Instance);
        q.TryWrite(Lines.Update("/a", 1));
        q.Complete(new RttpConnectionException("gone"));
        Assert.False(q.TryWrite(Lines.Update("/a", 2)));
        var read = new List<RttpMessage>();
        await Assert.ThrowsAsync<RttpConnectionException>(async () =>
        {
            await foreach (var m in q.Reader.ReadAllAsync())
            {
                read.Add(m);
            }
        });
        Assert.Single(read);
        await Assert.ThrowsAsync<RttpConnectionException>(() => q.Reader.Completion);
    }

    private static async Task Eventually(Func<bool> condition)
    {
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(5, patience.Token);
        }
    }
}
