using System.IO.Pipelines;
using System.Text;
using StreamFarm.Server.Connections;
using StreamFarm.Server.Subjects;
using StreamFarm.Protocol;

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
    public async Task BurstsWithTheWriterRunning_GrownRingDrainedAndShrunk_EveryUpdateInOrder()
    {
        // Bursts far larger than the ring an idle connection starts with (it grows, and once
        // drained goes back to its kept size); then a burst over the limit, merged by subject.
        var queue = new OutboundQueue(64 * 1024, TimeProvider.System);
        var pipe = new Pipe();
        var written = 0;
        var writer = queue.RunWriterAsync(pipe.Writer, n => Interlocked.Add(ref written, n), () => { }, CancellationToken.None);
        var a = new SubjectRecord("/a", 3);
        ulong seq = 0;
        var lines = new List<string>();
        using var reader = new StreamReader(pipe.Reader.AsStream());
        foreach (var burst in new[] { 1000, 5, 700, 1 })
        {
            for (var i = 0; i < burst; i++)
            {
                seq++;
                queue.EnqueueRecord(Update(a, seq, $"v={seq}"));
            }

            for (var i = 0; i < burst; i++)
            {
                lines.Add((await reader.ReadLineAsync())!);
            }
        }

        Assert.Equal(Enumerable.Range(1, (int)seq).Select(i => $"UPDATE /a 3 {i} v={i}"), lines);
        Assert.Equal(0, queue.Conflations);

        var pad = new string('p', 200);
        for (var i = 0; i < 2000; i++)
        {
            seq++;
            queue.EnqueueRecord(Update(a, seq, $"v={seq} pad={pad}"));
        }

        // Nobody read the pipe during that burst, so the writer stopped once the pipe held its 64 KiB
        // and the queue had to merge (deterministic, whatever the threads' timing). Read it now, while
        // the writer finishes: a writer blocked on a full pipe cannot complete before someone reads.
        var reading = Task.Run(async () =>
        {
            var read = new List<string>();
            while (await reader.ReadLineAsync() is { } l)
            {
                read.Add(l);
            }

            return read;
        });
        queue.Complete(null);
        await writer;
        await pipe.Writer.CompleteAsync();
        var rest = await reading;

        Assert.True(queue.Conflations > 0, "the last burst went over the limit");
        Assert.StartsWith($"UPDATE /a 3 {seq} ", rest[^1]); // the newest value last
        Assert.Contains($"v={seq} ", rest[^1]);
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

    [Fact]
    public async Task OverLimit_FloodOnOneSubject_QueueShrinksToItsNewestState_NotOverLimit()
    {
        var queue = new OutboundQueue(4096, TimeProvider.System);
        var a = new SubjectRecord("/a", 1);
        const int n = 1000;
        for (ulong i = 1; i <= n; i++)
        {
            queue.EnqueueRecord(Update(a, i, $"v={i} pad={new string('p', 60)}"));
        }

        // Every waiting update of /a was merged into one: the queue is not over its limit, so a
        // reader that reads, however slowly, is not cut for it.
        Assert.True(queue.QueuedBytes < 4096 / 2, $"queued {queue.QueuedBytes} bytes");
        Assert.Equal(TimeSpan.Zero, queue.OverLimitFor);
        var lines = await DrainAsync(queue);
        var merged = lines.Sum(l => l.Split(' ').FirstOrDefault(t => t.StartsWith("@merged=", StringComparison.Ordinal)) is { } m ? int.Parse(m[8..], System.Globalization.CultureInfo.InvariantCulture) : 1);
        Assert.Equal(n, merged);
        Assert.StartsWith($"UPDATE /a 1 {n} @merged=", lines[^1], StringComparison.Ordinal);
        Assert.Contains($"v={n} ", lines[^1] + " ");
        Assert.True(lines.Count < 40, $"{lines.Count} lines: the flood should have been merged");
    }

    [Fact]
    public async Task OverLimit_StatusOfSubject_NothingMergedAcrossIt()
    {
        var queue = new OutboundQueue(4096, TimeProvider.System);
        var a = new SubjectRecord("/a", 1);
        queue.EnqueueRecord(Update(a, 1, "v=1"));
        queue.EnqueueStatus("/a"u8, SubjectStatus.Stale);
        queue.EnqueueRecord(Update(a, 2, "v=2"));
        queue.EnqueueControl(Encoding.ASCII.GetBytes(new string('#', 5000) + "\n")); // over the limit from here
        queue.EnqueueRecord(Update(a, 3, "v=3"));
        queue.EnqueueStatus("/a"u8, SubjectStatus.Ok);
        queue.EnqueueRecord(Update(a, 4, "v=4"));
        queue.EnqueueRecord(Update(a, 5, "v=5"));
        var lines = (await DrainAsync(queue)).Where(l => !l.StartsWith('#')).ToList();
        Assert.Equal(["UPDATE /a 1 1 v=1", "STATUS /a STALE", "UPDATE /a 1 3 @merged=2 v=3", "STATUS /a OK", "UPDATE /a 1 5 @merged=2 v=5"], lines);
    }

    [Fact]
    public async Task Cut_WriterWaitingOnFullTransport_ErrWrittenAtOnce()
    {
        var queue = new OutboundQueue(1 << 20, TimeProvider.System);
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512, useSynchronizationContext: false));
        using var cancel = new CancellationTokenSource();
        var writer = queue.RunWriterAsync(pipe.Writer, _ => { }, () => { }, cancel.Token);
        var a = new SubjectRecord("/a", 1);
        for (ulong i = 1; i <= 10; i++)
        {
            queue.EnqueueRecord(Update(a, i, $"v={i} pad={new string('p', 500)}"));
        }

        // Nobody reads the pipe: the writer waits on its flush. The cut's ERR must not wait behind
        // it (for a client that does not read, until the grace period ends and nothing was sent).
        await Kit.Eventually.TrueAsync(() => pipe.Reader.TryRead(out var r) && Peek(pipe.Reader, r).Length >= 1024, "the writer filled the pipe");
        queue.Complete("ERR SLOW_CONSUMER too slow\n"u8.ToArray(), discardPending: true);
        await Kit.Eventually.TrueAsync(() => pipe.Reader.TryRead(out var r) && Peek(pipe.Reader, r).EndsWith("ERR SLOW_CONSUMER too slow\n", StringComparison.Ordinal), "the ERR is in the transport");
        await cancel.CancelAsync();
        await pipe.Reader.CompleteAsync();
        await writer.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    /// <summary>What a read holds, left unconsumed (the writer's flush stays blocked).</summary>
    private static string Peek(PipeReader reader, ReadResult result)
    {
        var text = Encoding.ASCII.GetString(System.Buffers.BuffersExtensions.ToArray(result.Buffer));
        reader.AdvanceTo(result.Buffer.Start); // neither consumed nor examined: the next TryRead sees it all again
        return text;
    }
}
