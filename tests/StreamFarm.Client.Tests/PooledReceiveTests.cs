using System.Net;
using StreamFarm.Client.Tests.Kit;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests;

/// <summary>
/// The pooled path (<see cref="FarmClient.SubscribePooledAsync"/>) yields what the typed path
/// yields: the same messages in the same order, the same continuity after a reconnect, the same
/// conflation, drops and waits with the same counters, and the last value kept correctly from its
/// bytes; a disposed message cannot be read; and the read loop's direct delivery never overtakes
/// lines still waiting on the connection. A scripted server sends exact lines; outcomes are
/// awaited, never timed.
/// </summary>
public sealed class PooledReceiveTests
{
    private static FarmClientOptions Options(int port, int buffer = 1000, OverflowPolicy overflow = OverflowPolicy.Conflate) => new()
    {
        ServiceName = "pooled.test",
        Port = port,
        Resolver = new FixedResolver(IPAddress.Loopback),
        Random = new Random(3),
        HeartbeatTimeout = TimeSpan.FromMinutes(1),
        MessageBuffer = buffer,
        Overflow = overflow,
    };

    /// <summary>A message as text: everything the application can see of it.</summary>
    private static string Text(SubjectMessage m) => m switch
    {
        SubjectImage i => $"IMAGE {i.Subject} {i.Server} {i.Epoch} {i.Seq} {i.Continuity} {Fields(i.Fields)}",
        SubjectUpdate u => $"UPDATE {u.Subject} {u.Server} {u.Epoch} {u.Seq} merged={u.Merged} {Fields(u.Fields)}",
        SubjectStatusChange s => $"STATUS {s.Subject} {s.Server} {s.Status}",
        _ => "?",
    };

    private static string Text(PooledSubjectMessage m)
    {
        // Read through the pooled API itself, then compared with its typed copy.
        var fields = string.Join(" ", Enumerable.Range(0, m.FieldCount).Select(i => $"{m.FieldName(i)}={System.Text.Encoding.UTF8.GetString(m.FieldValue(i))}"));
        var text = m.Kind switch
        {
            RttpMessageKind.Image => $"IMAGE {m.Subject} {m.Server} {m.Epoch} {m.Seq} {m.Continuity} {fields}",
            RttpMessageKind.Update => $"UPDATE {m.Subject} {m.Server} {m.Epoch} {m.Seq} merged={m.Merged} {fields}",
            _ => $"STATUS {m.Subject} {m.Server} {m.Status}",
        };
        Assert.Equal(text, Text(m.ToSubjectMessage()));
        return text;
    }

    private static string Fields(IReadOnlyList<KeyValuePair<string, string>> fields) => string.Join(" ", fields.Select(f => $"{f.Key}={f.Value}"));

    private static async Task<List<string>> TakeAsync(IAsyncEnumerator<SubjectMessage> e, int n)
    {
        var list = new List<string>();
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        while (list.Count < n && await e.MoveNextAsync().AsTask().WaitAsync(patience.Token))
        {
            list.Add(Text(e.Current));
        }

        return list;
    }

    private static async Task<List<string>> TakeAsync(IAsyncEnumerator<PooledSubjectMessage> e, int n)
    {
        var list = new List<string>();
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        while (list.Count < n && await e.MoveNextAsync().AsTask().WaitAsync(patience.Token))
        {
            using var m = e.Current;
            list.Add(Text(m));
        }

        return list;
    }

    [Fact]
    public async Task Pooled_YieldsWhatTypedYields_InOrder_AcrossAReconnect_AndTheLastValueIsKeptFromTheBytes()
    {
        // Two clients of one server: one follows the subject pooled (its read loop delivers), the
        // other typed (through its loop); both are sent the same lines.
        await using var server = new ScriptedServer();
        await using var client = new FarmClient(Options(server.Port));
        await using var other = new FarmClient(Options(server.Port));
        await using var pooled = client.SubscribePooledAsync("/P/a").GetAsyncEnumerator();
        var pooledFirst = TakeAsync(pooled, 7);
        var onPooled = await server.NextAsync();
        await using var typed = other.SubscribeAsync("/P/a").GetAsyncEnumerator();
        var typedFirst = TakeAsync(typed, 7);
        var onTyped = await server.NextAsync();
        var peer = new Both(onPooled, onTyped);
        Assert.Equal("SUB /P/a", await onPooled.ExpectAsync("SUB"));
        Assert.Equal("SUB /P/a", await onTyped.ExpectAsync("SUB"));

        await peer.SendAsync(
            "IMAGE /P/a 7 1 bid=1.5 text=a\\sb\n" +
            "UPDATE /P/a 7 2 bid=1.6\n" +
            "UPDATE /P/a 7 4 @merged=2 text=a\\slonger\\tvalue new=1\n" +
            "STATUS /P/a STALE\n" +
            "UPDATE /P/a 7 5 bid=9 bid=10\n" +
            "STATUS /P/a OK\n" +
            "UPDATE /P/a 7 6 text=s\n");
        var expected = new List<string>
        {
            "IMAGE /P/a f1 7 1 Continuous bid=1.5 text=a b",
            "UPDATE /P/a f1 7 2 merged=1 bid=1.6",
            "UPDATE /P/a f1 7 4 merged=2 text=a longer\tvalue new=1",
            "STATUS /P/a f1 Stale",
            "UPDATE /P/a f1 7 5 merged=1 bid=9 bid=10",
            "STATUS /P/a f1 Ok",
            "UPDATE /P/a f1 7 6 merged=1 text=s",
        };
        var (pooledGot, typedGot) = (await pooledFirst, await typedFirst); // both ended before asserting: a failure shows as itself
        Assert.Equal(expected, pooledGot);
        Assert.Equal(expected, typedGot);

        // Lines that came before the client's loop was serving took the connection's buffer; once
        // it is drained, the read loop delivers itself. Both ways give the same messages.
        var seq = 6UL;
        while (client.CurrentConnection!.DirectDeliveries == 0 && seq < 100)
        {
            seq++;
            await peer.SendAsync($"UPDATE /P/a 7 {seq} bid=10\n");
            string[] one = [$"UPDATE /P/a f1 7 {seq} merged=1 bid=10"];
            Assert.Equal(one, await TakeAsync(pooled, 1));
            Assert.Equal(one, await TakeAsync(typed, 1));
        }

        Assert.True(client.CurrentConnection!.DirectDeliveries > 0);
        Assert.Equal(0, other.CurrentConnection!.DirectDeliveries); // a typed follower keeps the client's loop

        // The last value, kept from the bytes: shorter and longer values in place, the latest of a repeated field.
        Assert.True(client.TryGetRecord("/P/a", out var record));
        Assert.Equal((7UL, seq, SubjectStatus.Ok), (record.Epoch, record.Seq, record.Status));
        Assert.Equal("bid=10 text=s new=1", Fields(record.Fields));

        // A later pooled subscriber starts from that record, as an image.
        await using (var later = client.SubscribePooledAsync("/P/a").GetAsyncEnumerator())
        {
            Assert.Equal([$"IMAGE /P/a f1 7 {seq} Continuous bid=10 text=s new=1"], await TakeAsync(later, 1));
        }

        // The server goes away; the client comes back to it and resubscribes: the image says what was missed.
        onPooled.Dispose();
        var pooledAgain = await server.NextAsync();
        onTyped.Dispose();
        var typedAgain = await server.NextAsync();
        var again = new Both(pooledAgain, typedAgain);
        Assert.Equal("SUB /P/a", await pooledAgain.ExpectAsync("SUB"));
        Assert.Equal("SUB /P/a", await typedAgain.ExpectAsync("SUB"));
        var typedThen = TakeAsync(typed, 3);
        var pooledThen = TakeAsync(pooled, 3);
        await again.SendAsync(
            $"IMAGE /P/a 7 {seq + 3} bid=11 text=t\n" +
            $"UPDATE /P/a 7 {seq + 4} bid=12\n" +
            "IMAGE /P/a 8 1 bid=0\n");
        expected =
        [
            $"IMAGE /P/a f1 7 {seq + 3} Gap bid=11 text=t",
            $"UPDATE /P/a f1 7 {seq + 4} merged=1 bid=12",
            "IMAGE /P/a f1 8 1 Continuous bid=0",
        ];
        (pooledGot, typedGot) = (await pooledThen, await typedThen);
        Assert.Equal(expected, pooledGot);
        Assert.Equal(expected, typedGot);
        Assert.True(client.TryGetRecord("/P/a", out var fresh));
        Assert.Equal((8UL, 1UL, "bid=0"), (fresh.Epoch, fresh.Seq, Fields(fresh.Fields)));
    }

    [Theory]
    [InlineData(OverflowPolicy.Conflate)]
    [InlineData(OverflowPolicy.DropOldest)]
    [InlineData(OverflowPolicy.Wait)]
    public async Task ApplicationBehind_PooledAndTypedOverflowAlike_WithTheSameCounters(OverflowPolicy policy)
    {
        const int Updates = 60;
        await using var server = new ScriptedServer();
        await using var client = new FarmClient(Options(server.Port, buffer: 4, policy));

        // One client per path, so each path's counters are its own.
        await using var other = new FarmClient(Options(server.Port, buffer: 4, policy));
        await using var pooled = client.SubscribePooledAsync("/P/o").GetAsyncEnumerator();
        await using var typed = other.SubscribeAsync("/P/o").GetAsyncEnumerator();
        var p = pooled.MoveNextAsync();
        var t = typed.MoveNextAsync();
        var peers = new[] { await server.NextAsync(), await server.NextAsync() };
        foreach (var peer in peers)
        {
            Assert.Equal("SUB /P/o", await peer.ExpectAsync("SUB"));
            await peer.SendAsync("IMAGE /P/o 7 0 x=0\n");
        }

        // Each has its image in hand (the enumerator holds it: no read is under way); then the updates.
        Assert.True(await p);
        Assert.True(await t);
        var lines = string.Concat(Enumerable.Range(1, Updates).Select(i => $"UPDATE /P/o 7 {i} x={i}{(i % 3 == 0 ? $" y{i % 4}={i}" : "")}\n"));
        foreach (var peer in peers)
        {
            await peer.SendAsync(lines);
        }

        // The application reads nothing until every line was taken in (Wait: until the buffer is full and the client waits).
        if (policy == OverflowPolicy.Wait)
        {
            await Eventually.TrueAsync(() => client.OverflowWaits > 0 && other.OverflowWaits > 0, () => $"waits {client.OverflowWaits}, {other.OverflowWaits}");
        }
        else
        {
            await Eventually.TrueAsync(
                () => client.TryGetRecord("/P/o", out var a) && a.Seq == Updates && other.TryGetRecord("/P/o", out var b) && b.Seq == Updates,
                () => "not every update taken in");
        }

        var pooledSeen = new List<string>();
        var typedSeen = new List<string>();
        using (var first = pooled.Current)
        {
            pooledSeen.Add(Text(first));
        }

        typedSeen.Add(Text(typed.Current));
        pooledSeen.AddRange(await TakeUntilSeqAsync(pooled, Updates));
        typedSeen.AddRange(await TakeUntilSeqAsync(typed, Updates));
        Assert.Equal(typedSeen.Select(s => s.Replace(" f1 ", " ", StringComparison.Ordinal)), pooledSeen.Select(s => s.Replace(" f1 ", " ", StringComparison.Ordinal)));
        Assert.Equal((other.Conflated, other.Dropped), (client.Conflated, client.Dropped));
        Assert.Equal(other.OverflowWaits > 0, client.OverflowWaits > 0);
        switch (policy)
        {
            case OverflowPolicy.Conflate:
                Assert.True(client.Conflated > 0);
                Assert.True(pooledSeen.Count < Updates);
                break;
            case OverflowPolicy.DropOldest:
                Assert.True(client.Dropped > 0);
                break;
            case OverflowPolicy.Wait:
                Assert.Equal(Updates + 1, pooledSeen.Count); // nothing lost, nothing merged
                break;
        }

        // The last value is the latest in every case.
        Assert.True(client.TryGetRecord("/P/o", out var record));
        Assert.Equal((ulong)Updates, record.Seq);
        Assert.Equal($"{Updates}", record["x"]);
    }

    private static async Task<List<string>> TakeUntilSeqAsync(IAsyncEnumerator<PooledSubjectMessage> e, int seq)
    {
        var list = new List<string>();
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        while (await e.MoveNextAsync().AsTask().WaitAsync(patience.Token))
        {
            using var m = e.Current;
            list.Add(Text(m));
            if (m.Seq == (ulong)seq)
            {
                break;
            }
        }

        return list;
    }

    private static async Task<List<string>> TakeUntilSeqAsync(IAsyncEnumerator<SubjectMessage> e, int seq)
    {
        var list = new List<string>();
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        while (await e.MoveNextAsync().AsTask().WaitAsync(patience.Token))
        {
            list.Add(Text(e.Current));
            if (e.Current is SubjectUpdate { Seq: var s } && s == (ulong)seq)
            {
                break;
            }
        }

        return list;
    }

    [Fact]
    public void PooledQueue_ConflatesAndDropsAsTheTypedOne_AndGivesWhatItLetsGoBackToThePool()
    {
        (RttpMessageKind Kind, string Server, ulong Epoch, ulong Seq, int Merged, Continuity Continuity, (string, string)[] Fields)[] input =
        [
            (RttpMessageKind.Update, "s1", 7, 1, 1, default, [("x", "1"), ("y", "1")]),
            (RttpMessageKind.Update, "s1", 7, 2, 2, default, [("x", "22222222222222222222")]),
            (RttpMessageKind.Update, "s1", 7, 2, 1, default, [("x", "stale")]),
            (RttpMessageKind.Image, "s2", 7, 5, 1, Continuity.Gap, [("x", "5")]),
            (RttpMessageKind.Update, "s2", 7, 6, 1, default, [("y", "6"), ("x", "6")]),
            (RttpMessageKind.Image, "s2", 8, 1, 1, Continuity.Continuous, [("z", "1")]),
            (RttpMessageKind.Status, "s2", 0, 0, 1, default, []),
            (RttpMessageKind.Update, "s2", 8, 2, 1, default, [("z", "2")]),
            (RttpMessageKind.Update, "s3", 8, 3, 1, default, [("z", "3")]),
        ];
        foreach (var policy in new[] { OverflowPolicy.Conflate, OverflowPolicy.DropOldest })
        {
            var pool = new SubjectDataPool(16);
            var pooled = new DeliveryQueue<SubjectData>(1, policy, Conflation.Instance);
            var typed = new DeliveryQueue<SubjectMessage>(1, policy, Conflation.Instance);
            var made = new HashSet<SubjectData>();
            foreach (var (kind, server, epoch, seq, merged, continuity, fields) in input)
            {
                var data = pool.Rent();
                made.Add(data);
                data.Load(new RttpMessage { Kind = kind, Subject = "/a", Epoch = epoch, Seq = seq, Merged = merged, Status = SubjectStatus.Stale, Fields = [.. fields.Select(f => KeyValuePair.Create(f.Item1, f.Item2))] }, server, continuity);
                typed.TryWrite(data.ToSubjectMessage());
                pooled.TryWrite(data);
            }

            var fromTyped = new List<string>();
            while (typed.Reader.TryRead(out var m))
            {
                fromTyped.Add(Text(m));
            }

            var fromPooled = new List<string>();
            var handedOut = new List<SubjectData>();
            while (pooled.Reader.TryRead(out var d))
            {
                handedOut.Add(d);
                fromPooled.Add(Text(d.ToSubjectMessage()));
            }

            Assert.Equal(fromTyped, fromPooled);
            Assert.Equal((typed.Conflated, typed.Dropped), (pooled.Conflated, pooled.Dropped));
            Assert.True(pooled.Conflated + pooled.Dropped > 0);

            // What the queue let go came back to the pool: the next ones rented are those, not new ones.
            var letGo = made.Count - handedOut.Count;
            for (var i = 0; i < letGo; i++)
            {
                var reused = pool.Rent();
                Assert.Contains(reused, made);
                Assert.DoesNotContain(reused, handedOut);
            }
        }
    }

    [Fact]
    public void PooledMessage_OwnedUntilDisposed_ThenEveryReadThrows_AndItsBufferServesTheNext()
    {
        var pool = new SubjectDataPool(4);
        var data = pool.Rent();
        data.Load(new RttpMessage { Kind = RttpMessageKind.Update, Subject = "/a", Epoch = 1, Seq = 2, Fields = [KeyValuePair.Create("bid", "1.5")] }, "s1", Continuity.Continuous);
        var message = new PooledSubjectMessage(data);
        var copy = message;
        Assert.Equal("1.5", message.GetString("bid"));
        Assert.True(copy.TryGetValue("bid", out var bid));
        Assert.Equal("1.5"u8.ToArray(), bid.ToArray());
        Assert.Null(message.GetString("ask"));
        var kept = message.ToSubjectMessage();

        message.Dispose();
        Assert.Throws<ObjectDisposedException>(() => message.Seq);
        Assert.Throws<ObjectDisposedException>(() => copy.GetString("bid")); // a copy of the struct too
        Assert.Throws<ObjectDisposedException>(() => copy.FieldValue(0).Length);
        Assert.Throws<ObjectDisposedException>(() => default(PooledSubjectMessage).Subject);
        copy.Dispose(); // a second dispose does nothing: the buffer is not given back twice

        var next = pool.Rent();
        Assert.Same(data, next); // the buffer serves the next message
        Assert.NotSame(next, pool.Rent()); // and only once
        next.Load(new RttpMessage { Kind = RttpMessageKind.Update, Subject = "/a", Epoch = 1, Seq = 3, Fields = [KeyValuePair.Create("bid", "1.6")] }, "s1", Continuity.Continuous);
        Assert.Throws<ObjectDisposedException>(() => message.GetString("bid")); // still refused, though the buffer is in use again
        Assert.Equal("1.6", new PooledSubjectMessage(next).GetString("bid"));
        Assert.Equal("1.5", ((SubjectUpdate)kept)["bid"]); // a copy taken before the dispose keeps its values
    }

    [Fact]
    public async Task ReadLoop_DeliversDirectly_OnlyOnceNothingQueuedBeforeWaits()
    {
        await using var server = new ScriptedServer();
        var connecting = RttpConnection.ConnectAsync("127.0.0.1", server.Port, new RttpConnectionOptions { Overflow = OverflowPolicy.Wait, MessageBuffer = 100 });
        var peer = await server.NextAsync();
        await using var connection = await connecting;
        await connection.SubscribeAsync(["/P/q"]);
        Assert.Equal("SUB /P/q", await peer.ExpectAsync("SUB"));
        await peer.SendAsync("IMAGE /P/q 7 1 x=1\nUPDATE /P/q 7 2 x=2\n");
        await Eventually.TrueAsync(() => connection.Messages.Count == 3, () => $"{connection.Messages.Count} waiting (the table and two lines)");

        // A sink now: lines still go behind those waiting, until the client has handed each on.
        var sink = new RecordingSink();
        connection.SetSink(sink);
        await peer.SendAsync("UPDATE /P/q 7 3 x=3\n");
        await Eventually.TrueAsync(() => connection.Messages.Count == 4, () => $"{connection.Messages.Count} waiting");
        Assert.Empty(sink.Seqs);

        var read = new List<ulong>();
        while (connection.Messages.TryRead(out var m))
        {
            read.Add(m.Seq);
            connection.HandedOn();
        }

        Assert.Equal([0UL, 1, 2, 3], read); // the table (no seq), then the lines in order
        await peer.SendAsync("UPDATE /P/q 7 4 x=4\nUPDATE /P/q 7 5 x=5\n");
        await Eventually.TrueAsync(() => sink.Seqs.Count == 2, () => $"{sink.Seqs.Count} delivered directly");
        Assert.Equal([4UL, 5], sink.Seqs);
        Assert.Equal(0, connection.Messages.Count);
    }

    // The read loop's gate is a count of lines queued for the client's loop and not yet handed on.
    // Lines the buffer dropped (or merged) are never handed on: uncounted, the gate never came back
    // to 0 and the direct path stayed off for the connection's life.
    [Fact]
    public async Task ReadLoop_DeliversDirectlyAgain_AfterTheBufferDroppedLines()
    {
        await using var server = new ScriptedServer();
        var connecting = RttpConnection.ConnectAsync("127.0.0.1", server.Port, new RttpConnectionOptions { Overflow = OverflowPolicy.DropOldest, MessageBuffer = 1 });
        var peer = await server.NextAsync();
        await using var connection = await connecting;
        await connection.SubscribeAsync(["/P/q"]);
        Assert.Equal("SUB /P/q", await peer.ExpectAsync("SUB"));
        await peer.SendAsync("IMAGE /P/q 7 1 x=1\nUPDATE /P/q 7 2 x=2\nUPDATE /P/q 7 3 x=3\n");
        await Eventually.TrueAsync(() => connection.Dropped == 2, () => $"{connection.Dropped} dropped");

        var sink = new RecordingSink();
        connection.SetSink(sink);
        var read = new List<ulong>();
        while (connection.Messages.TryRead(out var m))
        {
            read.Add(m.Seq);
            connection.HandedOn();
        }

        Assert.Equal([0UL, 3], read); // the table (kept: not data), the last line
        await peer.SendAsync("UPDATE /P/q 7 4 x=4\n");
        await Eventually.TrueAsync(() => sink.Seqs.Count == 1, () => $"{sink.Seqs.Count} delivered directly, {connection.Messages.Count} waiting");
        Assert.Equal([4UL], sink.Seqs);
    }

    // The read loop stages lines on the pooled buffers and writes them once per socket read. A
    // connection can be left with lines staged and not written (its read loop waiting for the
    // application under OverflowPolicy.Wait, or ended between the two): after the switch to the
    // next connection, those older lines must reach the buffer before anything newer, never after
    // it. Here the old connection's read loop is held from writing what it staged; the next
    // connection's image goes through the client's loop (a typed follower is there for it), then
    // its updates through its own read loop, which writes whatever is staged.
    [Fact]
    public async Task LinesAConnectionLeftStaged_ComeBeforeTheNextConnectionsLines_NeverAfter()
    {
        await using var server = new ScriptedServer();
        await using var client = new FarmClient(Options(server.Port));
        using var stop = new CancellationTokenSource();
        var seen = new List<(ulong Seq, string Value)>();
        var pooled = client.SubscribePooledAsync("/P/o", stop.Token).GetAsyncEnumerator();
        var collecting = Task.Run(async () =>
        {
            try
            {
                while (await pooled.MoveNextAsync())
                {
                    using var m = pooled.Current;
                    lock (seen)
                    {
                        seen.Add((m.Seq, m.GetString("v")!));
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // the test is over
            }
        });
        bool Seen(string value)
        {
            lock (seen)
            {
                return seen.Any(x => x.Value == value);
            }
        }

        string Shown()
        {
            lock (seen)
            {
                return string.Join(", ", seen.Select(x => $"{x.Seq}:{x.Value}"));
            }
        }

        var peer = await server.NextAsync();
        Assert.Equal("SUB /P/o", await peer.ExpectAsync("SUB"));
        await peer.SendAsync("IMAGE /P/o 7 1 v=a1\n");
        await Eventually.TrueAsync(() => Seen("a1"), Shown);

        // Until the read loop delivers directly (the lines before the client's loop served took the connection's buffer).
        var old = client.CurrentConnection!;
        var seq = 1UL;
        while (old.DirectDeliveries == 0 && seq < 100)
        {
            seq++;
            await peer.SendAsync($"UPDATE /P/o 7 {seq} v=a{seq}\n");
            await Eventually.TrueAsync(() => Seen($"a{seq}"), Shown);
        }

        Assert.True(old.DirectDeliveries > 0);

        // Two lines staged by the old connection's read loop, not written.
        old.HoldStagedForTest = true;
        var direct = old.DirectDeliveries;
        await peer.SendAsync($"UPDATE /P/o 7 {seq + 1} v=old1\nUPDATE /P/o 7 {seq + 2} v=old2\n");
        await Eventually.TrueAsync(() => old.DirectDeliveries == direct + 2, () => $"{old.DirectDeliveries - direct} staged");
        Assert.False(Seen("old1"));

        // A typed follower for a moment: the next connection's image then goes through the client's loop.
        await using (var typed = client.SubscribeAsync("/P/o").GetAsyncEnumerator())
        {
            Assert.True(await typed.MoveNextAsync()); // the record, as an image

            // The switch: the old connection ends, the client connects again and resubscribes.
            peer.Dispose();
            var next = await server.NextAsync();
            Assert.Equal("SUB /P/o", await next.ExpectAsync("SUB"));
            await next.SendAsync($"IMAGE /P/o 7 {seq + 5} v=new5\n");
            Assert.True(await typed.MoveNextAsync());
            Assert.Equal(seq + 5, ((SubjectImage)typed.Current).Seq);
            peer = next;
        }

        // Newer lines on the next connection, until its read loop has delivered one directly.
        var current = client.CurrentConnection!;
        Assert.NotSame(old, current);
        var last = seq + 5;
        while (current.DirectDeliveries == 0 && last < seq + 100)
        {
            last++;
            await peer.SendAsync($"UPDATE /P/o 7 {last} v=new{last}\n");
            var value = $"new{last}";
            await Eventually.TrueAsync(() => Seen(value), Shown);
        }

        Assert.True(current.DirectDeliveries > 0);
        await stop.CancelAsync();
        await collecting;
        peer.Dispose();

        // Never an older value after a newer one; the old connection's lines are not lost either.
        var seqs = seen.Select(x => x.Seq).ToList();
        Assert.True(seqs.SequenceEqual(seqs.Order()), $"out of order: {Shown()}");
        Assert.Equal(1, seen.Count(x => x.Value == "old1"));
        Assert.Equal(1, seen.Count(x => x.Value == "old2"));
    }

    /// <summary>Sends to both clients' connections.</summary>
    private sealed class Both(ScriptedServer.Peer a, ScriptedServer.Peer b)
    {
        public async Task SendAsync(string lines)
        {
            await a.SendAsync(lines);
            await b.SendAsync(lines);
        }
    }

    private sealed class RecordingSink : IDataSink
    {
        private readonly List<ulong> _seqs = [];

        public bool Accepts => true;

        public List<ulong> Seqs
        {
            get
            {
                lock (_seqs)
                {
                    return [.. _seqs];
                }
            }
        }

        public bool TryStage(RttpConnection connection, SubjectData data)
        {
            lock (_seqs)
            {
                _seqs.Add(data.Seq);
            }

            return true;
        }

        public bool TryWriteStaged() => true;

        public ValueTask WriteStagedAsync(CancellationToken cancel) => ValueTask.CompletedTask;
    }
}
