using System.Globalization;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>Slow consumers over real sockets: conflation keeps them correct, a reader that never reads is cut, others never notice.</summary>
public sealed class SlowConsumerTests
{
    [Fact]
    public async Task PausedReader_Resumes_GetsLatestValuesWithMergedCountsAddingUp()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.MaxOutboundBytes = 16 * 1024;
            o.Limits.SlowConsumerTimeout = TimeSpan.FromMinutes(5);
            o.Limits.IdleTimeout = TimeSpan.FromMinutes(5);
        });
        await using var pub = await node.ConnectAsync();
        await using var slow = await LineClient.ConnectAsync(node.TcpEndPoint, receiveBuffer: 4096);
        await slow.SendAsync("HELLO 1");
        await slow.SendAsync("SUB /c/a /c/b");
        const int n = 4000;
        var pad = new string('p', 300);
        for (var i = 1; i <= n; i++)
        {
            await pub.SendAsync($"PUB /c/{(i % 2 == 0 ? 'a' : 'b')} v={i} pad={pad}");
        }

        await pub.SendAsync("PING done");
        await pub.ExpectAsync("PONG done"); // the publisher was never held up by the paused reader
        Assert.True(node.Server.Conflations > 0, "the paused reader's queue should have conflated");

        var seen = new Dictionary<string, (ulong Seq, int Merged, string Last)>();
        while (seen.Count < 2 || seen.Values.Any(s => s.Seq < n / 2))
        {
            var line = await slow.NextAsync() ?? throw new InvalidOperationException("closed early");
            var p = line.Split(' ');
            if (p[0] is not ("IMAGE" or "UPDATE"))
            {
                continue;
            }

            var seq = ulong.Parse(p[3], CultureInfo.InvariantCulture);
            var merged = p.FirstOrDefault(t => t.StartsWith("@merged=", StringComparison.Ordinal)) is { } m ? int.Parse(m[8..], CultureInfo.InvariantCulture) : 1;
            if (seen.TryGetValue(p[1], out var before))
            {
                Assert.True(seq > before.Seq, $"seq went from {before.Seq} to {seq} on {p[1]}");
                Assert.Equal(before.Seq + (ulong)merged, seq); // no silent gap: merged says how many
                seen[p[1]] = (seq, before.Merged + merged, p.First(t => t.StartsWith("v=", StringComparison.Ordinal)));
            }
            else
            {
                seen[p[1]] = (seq, (int)seq, p.First(t => t.StartsWith("v=", StringComparison.Ordinal)));
            }
        }

        Assert.Equal($"v={n}", seen["/c/a"].Last);
        Assert.Equal($"v={n - 1}", seen["/c/b"].Last);
        Assert.Equal(n / 2, seen["/c/a"].Merged);
    }

    [Fact]
    public async Task SlowReader_FloodOnOneSubjectThenStops_NotCut_ConvergesOnFinalValueMarkedMerged()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.MaxOutboundBytes = 64 * 1024;
            o.Limits.SlowConsumerTimeout = TimeSpan.FromMilliseconds(500);
            o.Limits.IdleTimeout = TimeSpan.FromMinutes(5);
        });
        await using var pub = await node.ConnectAsync();
        await using var slow = await LineClient.ConnectAsync(node.TcpEndPoint, receiveBuffer: 4096);
        await slow.SendAsync("HELLO 1 client=slow");
        await slow.SendAsync("SUB /flood");
        await Eventually.TrueAsync(() => node.Server.Subscriptions >= 1, "subscribed");

        // The reader takes a line every few milliseconds while the flood lasts (far slower than the
        // flood), then reads as fast as it can: it must reach the final value, and never be cut.
        var floodOver = 0;
        var reading = Task.Run(async () =>
        {
            var lines = new List<string>();
            while (true)
            {
                var line = await slow.NextAsync() ?? throw new InvalidOperationException("cut: " + string.Join(" | ", lines.TakeLast(3)));
                lines.Add(line);
                if (line.StartsWith("ERR ", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException("the slow reader got " + line);
                }

                if (line.Contains(" v=final", StringComparison.Ordinal))
                {
                    return lines;
                }

                if (Volatile.Read(ref floodOver) == 0)
                {
                    await Task.Delay(5);
                }
            }
        });

        // The flood goes on for a few seconds (several times the slow-consumer timeout, long after
        // the reader's socket buffers are full): before, the queue stayed over its limit and the
        // reader was cut.
        var pad = new string('p', 200);
        var n = 1;
        var flood = System.Diagnostics.Stopwatch.StartNew();
        for (; flood.Elapsed < TimeSpan.FromSeconds(4) || n < 20_000; n++)
        {
            await pub.SendAsync($"PUB /flood v={n} pad={pad}");
            if (n % 500 == 0)
            {
                await pub.SendAsync($"PING {n}");
                await pub.ExpectAsync($"PONG {n}");
                await Task.Delay(10);
            }
        }

        await pub.SendAsync($"PUB /flood v=final pad={pad}");
        await pub.SendAsync("PING done");
        await pub.ExpectAsync("PONG done");
        Assert.True(node.Server.Conflations > 0, "the slow reader's queue should have conflated");
        Volatile.Write(ref floodOver, 1);

        var seen = await reading;
        var records = seen.Where(l => l.StartsWith("IMAGE ", StringComparison.Ordinal) || l.StartsWith("UPDATE ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        ulong last = 0;
        var count = 0;
        foreach (var p in records)
        {
            var seq = ulong.Parse(p[3], CultureInfo.InvariantCulture);
            var merged = p.FirstOrDefault(t => t.StartsWith("@merged=", StringComparison.Ordinal)) is { } m ? int.Parse(m[8..], CultureInfo.InvariantCulture) : 1;
            Assert.True(p[0] == "IMAGE" || seq == last + (ulong)merged, $"seq {seq} after {last} with @merged={merged}: a silent gap");
            count = p[0] == "IMAGE" ? (int)seq : count + merged;
            last = seq;
        }

        Assert.Equal((ulong)n, last); // the final value (v=final) is publication n
        Assert.Equal(n, count); // every publication accounted for
        Assert.Contains(records, p => p.Any(t => t.StartsWith("@merged=", StringComparison.Ordinal))); // it was told what was merged
        Assert.Equal(0, node.Server.SlowConsumerCloses);
        await slow.SendAsync("PING still-here");
        Assert.Equal("PONG still-here", await slow.NextAsync());
    }

    [Fact]
    public async Task NeverReads_CutWithSlowConsumer_OthersGetEverything()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.MaxOutboundBytes = 64 * 1024;
            o.Limits.SlowConsumerTimeout = TimeSpan.FromMilliseconds(500);
        });
        await using var pub = await node.ConnectAsync();
        await using var reader = await node.ConnectAsync();
        await using var stuck = await LineClient.ConnectAsync(node.TcpEndPoint, receiveBuffer: 4096);
        await stuck.SendAsync("HELLO 1");
        await stuck.SendAsync("SUB /s " + string.Join(' ', Enumerable.Range(0, 63).Select(i => $"/f/{i}")));
        await reader.SendAsync("SUB /s");
        Assert.Equal("STATUS /s NOT_FOUND", await reader.NextAsync());

        // The stuck client also holds 63 more subjects, published to now and then: once its socket
        // buffers are full, the newest state of each (4 KB) is more than its limit, so merging
        // cannot bring its queue back under it (with one subject it would: a reader that reads,
        // however slowly, is conflated, not cut).
        var filler = new string('f', 4000);

        // The publisher stays at most a few messages ahead of the reader (flow control, not timing),
        // so the reader is never over its limit, while the stuck client's socket buffers fill, then its
        // queue, until it is cut. Publishing goes on until then (bounded), plus a few more.
        var pad = new string('x', 4000);
        long readerSeq = 1;
        long target = long.MaxValue;
        var readAll = Task.Run(async () =>
        {
            var merged = 0;
            ulong last = 0;
            while ((long)last < Volatile.Read(ref target))
            {
                var p = (await reader.NextAsync())!.Split(' ');
                var seq = ulong.Parse(p[3], CultureInfo.InvariantCulture);
                Assert.True(seq > last);
                merged += p.FirstOrDefault(t => t.StartsWith("@merged=", StringComparison.Ordinal)) is { } m ? int.Parse(m[8..], CultureInfo.InvariantCulture) : 1;
                last = seq;
                Volatile.Write(ref readerSeq, (long)seq);
            }

            return merged;
        });
        var published = 0;
        for (var extra = 0; published < 50_000 && extra < 10; published++)
        {
            while (published + 1 - Volatile.Read(ref readerSeq) > 4 && !readAll.IsCompleted)
            {
                await Task.Delay(1);
            }

            await pub.SendAsync($"PUB /s v={published + 1} pad={pad}");
            if (published % 100 == 0)
            {
                for (var i = 0; i < 63; i++)
                {
                    await pub.SendAsync($"PUB /f/{i} v={published} pad={filler}");
                }
            }

            extra += node.Server.SlowConsumerCloses > 0 ? 1 : 0;
        }

        Volatile.Write(ref target, published);
        Assert.Equal(published, await readAll);
        // The stuck client is cut: its stream ends. The ERR itself reaches it only if there was room
        // left in the socket buffers, which a client that never reads does not leave.
        var stuckLines = await stuck.ReadToEndAsync();
        Assert.All(stuckLines.Where(l => l.StartsWith("ERR ", StringComparison.Ordinal)), l => Assert.StartsWith("ERR SLOW_CONSUMER ", l, StringComparison.Ordinal));
        Assert.Equal(1, node.Server.SlowConsumerCloses);
        // The stuck client's stream can end (its socket closed) a moment before its session is
        // counted out: the count is waited for, not read once.
        await Eventually.TrueAsync(() => node.Server.Connections == 2, "only the publisher and the reader are left");
    }
}
