using System.IO.Pipelines;
using System.Text;
using StreamFarm.Server.Connections;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Tests;

/// <summary>The outbound queue alone: conflation, accounting of merged updates, limits. No sockets, no timing.</summary>
public sealed class OutboundQueueTests
{
    private static RecordMessage Update(SubjectRecord subject, ulong seq, string fields, bool image = false)
    {
        var line = Encoding.UTF8.GetBytes($"{(image ? "IMAGE" : "UPDATE")} {subject.Name} {subject.Epoch} {seq} {fields}\n");
        return new RecordMessage(subject, image, subject.Epoch, seq, 1, line, line.Length);
    }

    private static async Task<List<string>> DrainAsync(OutboundQueue queue)
    {
        var pipe = new Pipe();
        queue.Complete(null);
        await queue.RunWriterAsync(pipe.Writer, _ => { }, () => { }, CancellationToken.None);
        await pipe.Writer.CompleteAsync();
        var text = new List<string>();
        using var reader = new StreamReader(pipe.Reader.AsStream());
        while (await reader.ReadLineAsync() is { } l)
        {
            text.Add(l);
        }

        return text;
    }

    [Fact]
    public async Task UnderLimit_EveryUpdateKeptInOrder()
    {
        var queue = new OutboundQueue(1 << 20, TimeProvider.System);
        var a = new SubjectRecord("/a", 7);
        for (ulong i = 1; i <= 100; i++)
        {
            queue.EnqueueRecord(Update(a, i, $"v={i}"));
        }

        var lines = await DrainAsync(queue);
        Assert.Equal(100, lines.Count);
        Assert.Equal(0, queue.Conflations);
        Assert.Equal("UPDATE /a 7 100 v=100", lines[^1]);
    }

    [Fact]
    public async Task OverLimit_UpdatesMerged_LatestValuesAndMergedCountsAddUp()
    {
        var queue = new OutboundQueue(4096, TimeProvider.System);
        var a = new SubjectRecord("/a", 1);
        var b = new SubjectRecord("/b", 1);
        const int n = 500;
        for (ulong i = 1; i <= n; i++)
        {
            queue.EnqueueRecord(Update(a, i, i % 3 == 0 ? $"x={i} pad={new string('p', 40)}" : $"y={i} pad={new string('q', 40)}"));
            queue.EnqueueRecord(Update(b, i, $"z={i}"));
        }

        Assert.True(queue.Conflations > 0);
        Assert.True(queue.QueuedBytes < 4096 + 1024, $"queued {queue.QueuedBytes} bytes: conflation must keep the queue near its limit");
        var lines = await DrainAsync(queue);
        foreach (var (subject, lastFields) in new[] { ("/a", new[] { "x=498", "y=500" }), ("/b", new[] { "z=500" }) })
        {
            var mine = lines.Where(l => l.Split(' ')[1] == subject).Select(l => l.Split(' ')).ToList();
            var seqs = mine.Select(p => ulong.Parse(p[3], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(seqs.OrderBy(s => s).Distinct(), seqs); // strictly increasing
            Assert.Equal((ulong)n, seqs[^1]);
            var merged = mine.Sum(p => p.FirstOrDefault(t => t.StartsWith("@merged=", StringComparison.Ordinal)) is { } m ? int.Parse(m[8..], System.Globalization.CultureInfo.InvariantCulture) : 1);
            Assert.Equal(n, merged); // every update accounted for
            var last = mine[^1];
            foreach (var f in lastFields)
            {
                Assert.Contains(f, last);
            }
        }
    }

    [Fact]
    public async Task OverLimit_UpdateIntoWaitingImage_ImageWithUnionOfFields()
    {
        var queue = new OutboundQueue(4096, TimeProvider.System);
        var filler = new SubjectRecord("/fill", 1);
        queue.EnqueueControl(Encoding.ASCII.GetBytes(new string('#', 5000) + "\n"));
        var a = new SubjectRecord("/a", 1);
        queue.EnqueueRecord(Update(a, 1, "bid=1 ask=2", image: true)); // appended: nothing of /a waits yet
        queue.EnqueueRecord(Update(a, 2, "bid=3"));
        queue.EnqueueRecord(Update(a, 3, "last=9"));
        queue.EnqueueRecord(Update(filler, 1, "f=1"));
        var lines = await DrainAsync(queue);
        Assert.Equal(["IMAGE /a 1 3 bid=3 ask=2 last=9", "UPDATE /fill 1 1 f=1"], lines.Skip(1));
    }

    [Fact]
    public void HardLimit_FloodOfControlLines_OwnerTold()
    {
        var told = 0;
        var queue = new OutboundQueue(4096, TimeProvider.System) { HardLimitExceeded = () => told++ };
        for (var i = 0; i < 2000 && told == 0; i++)
        {
            queue.EnqueueControl("PONG flood\n"u8.ToArray());
        }

        Assert.True(told > 0);
    }

    [Fact]
    public async Task Complete_DiscardPending_OnlyFinalLineWritten()
    {
        var queue = new OutboundQueue(4096, TimeProvider.System);
        var a = new SubjectRecord("/a", 1);
        for (ulong i = 1; i <= 10; i++)
        {
            queue.EnqueueRecord(Update(a, i, "v=1"));
        }

        queue.Complete("ERR SLOW_CONSUMER too slow\n"u8.ToArray(), discardPending: true);
        queue.EnqueueRecord(Update(a, 11, "v=2")); // refused after completion
        Assert.Equal(["ERR SLOW_CONSUMER too slow"], await DrainAsync(queue));
    }
}
