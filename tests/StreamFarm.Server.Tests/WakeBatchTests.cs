using System.IO.Pipelines;
using System.Text;
using StreamFarm.Server.Connections;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Tests;

/// <summary>
/// Read loops wake the writers they queued to once per buffer (<see cref="WakeBatch"/>). What must
/// hold: every message queued inside a batch is written once the batch ends (no wake-up lost, also
/// when several read loops hold wake-ups for the same queues), and a writer woken for a batch finds
/// the whole batch (one write, one flush).
/// </summary>
public sealed class WakeBatchTests
{
    private static RecordMessage Update(SubjectRecord subject, ulong seq)
    {
        var line = Encoding.ASCII.GetBytes($"UPDATE {subject.Name} {subject.Epoch} {seq} v={seq}\n");
        return new RecordMessage(subject, false, subject.Epoch, seq, 1, line, line.Length);
    }

    [Fact]
    public async Task MessagesQueuedInABatch_WrittenInOneFlushOnceItEnds()
    {
        var queue = new OutboundQueue(1 << 20, TimeProvider.System);
        var pipe = new Pipe();
        var flushes = 0;
        var written = 0;
        var writer = queue.RunWriterAsync(pipe.Writer, n => Interlocked.Add(ref written, n), () => Interlocked.Increment(ref flushes), CancellationToken.None);
        var a = new SubjectRecord("/a", 1);
        var batch = WakeBatch.Begin();
        try
        {
            for (ulong i = 1; i <= 100; i++)
            {
                queue.EnqueueRecord(Update(a, i));
            }
        }
        finally
        {
            batch.End();
        }

        using var reader = new StreamReader(pipe.Reader.AsStream());
        for (var i = 1; i <= 100; i++)
        {
            Assert.Equal($"UPDATE /a 1 {i} v={i}", await reader.ReadLineAsync());
        }

        Assert.Equal(1, Volatile.Read(ref flushes));
        queue.Complete(null);
        await writer;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task ReadLoopsOnSeveralThreadsBatchingToTheSameQueues_NothingLeftUnwritten(int seed)
    {
        // Four "read loops", each applying buffers of 1..50 messages to random queues of 20, on
        // threads of their own; every queue's writer must end up with every message, in each
        // loop's order.
        const int Queues = 20;
        const int Loops = 4;
        const int PerLoop = 20_000;
        var queues = Enumerable.Range(0, Queues).Select(_ => new OutboundQueue(64 << 20, TimeProvider.System)).ToArray();
        var pipes = queues.Select(_ => new Pipe(new PipeOptions(pauseWriterThreshold: 0))).ToArray();
        var writers = queues.Select((q, i) => q.RunWriterAsync(pipes[i].Writer, _ => { }, () => { }, CancellationToken.None)).ToArray();
        var expected = new int[Queues];
        var subjects = Enumerable.Range(0, Loops).Select(l => new SubjectRecord($"/l{l}", 1)).ToArray();
        var threads = Enumerable.Range(0, Loops).Select(l =>
        {
            var random = new Random(seed * 100 + l);
            var targets = Enumerable.Range(0, PerLoop).Select(_ => random.Next(Queues)).ToArray();
            var sizes = Enumerable.Range(0, PerLoop).Select(_ => random.Next(1, 51)).ToArray();
            foreach (var t in targets)
            {
                Interlocked.Increment(ref expected[t]);
            }

            return new Thread(() =>
            {
                var sent = 0;
                var b = 0;
                while (sent < PerLoop)
                {
                    var batch = WakeBatch.Begin();
                    try
                    {
                        for (var i = 0; i < sizes[b] && sent < PerLoop; i++, sent++)
                        {
                            queues[targets[sent]].EnqueueRecord(Update(subjects[l], (ulong)sent + 1));
                        }
                    }
                    finally
                    {
                        batch.End();
                    }

                    b++;
                }
            });
        }).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        var readers = pipes.Select(async (p, q) =>
        {
            var lines = 0;
            var last = new ulong[Loops];
            using var reader = new StreamReader(p.Reader.AsStream());
            while (lines < expected[q])
            {
                // A lost wake-up leaves the queue's tail unwritten: this read never completes and the
                // test fails on the timeout below instead of hanging.
                var line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
                var parts = line!.Split(' ');
                var loop = int.Parse(parts[1][2..], System.Globalization.CultureInfo.InvariantCulture);
                var seq = ulong.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(seq > last[loop], $"queue {q}: {line} after seq {last[loop]} of loop {loop}");
                last[loop] = seq;
                lines++;
            }

            return lines;
        }).ToArray();
        Assert.Equal(expected, await Task.WhenAll(readers));
        foreach (var q in queues)
        {
            q.Complete(null);
        }

        await Task.WhenAll(writers);
    }
}
