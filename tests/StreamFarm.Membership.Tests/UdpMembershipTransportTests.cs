using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Membership.Tests;

/// <summary>
/// Two members over real sockets on loopback. Only outcomes are asserted, polled with a generous
/// deadline: how long they take depends on the machine.
/// </summary>
public sealed class UdpMembershipTransportTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly byte[] FarmKey = [.. Enumerable.Range(0, 32).Select(i => (byte)(i + 100))];

    [Fact]
    public async Task TwoNodes_SeedEachOther_ConvergeToTwoAlive()
    {
        await using var ta = Transport();
        await using var tb = Transport();
        using var a = Node("a", ta, tb.LocalAddress);
        using var b = Node("b", tb, ta.LocalAddress);

        a.Start();
        b.Start();

        await WaitFor(() => BothAlive(a) && BothAlive(b), "both members to see two alive members");
        Assert.True(a.Joined);
        Assert.True(b.Joined);
        Assert.Equal(tb.LocalAddress, a.Members.Single(m => m.Id == "b").Gossip);
        Assert.Equal(ta.LocalAddress, b.Members.Single(m => m.Id == "a").Gossip);
        foreach (var node in new[] { a, b })
        {
            Assert.Equal(0, node.Dropped(DropReason.UnknownKey));
            Assert.Equal(0, node.Dropped(DropReason.AuthFailed));
            Assert.Equal(0, node.Dropped(DropReason.BadLength));
        }
    }

    [Fact]
    public async Task TwoNodes_PacketSealedWithAnotherKey_CountedAsDroppedAndNodeKeepsWorking()
    {
        await using var ta = Transport();
        await using var tb = Transport();
        using var a = Node("a", ta, tb.LocalAddress);
        using var b = Node("b", tb, ta.LocalAddress);
        a.Start();
        b.Start();
        await WaitFor(() => BothAlive(a) && BothAlive(b), "both members to see two alive members");

        // An outsider with another key, sending a well-formed message to a's gossip port.
        var outsider = new PacketSealer(new Keyring([new byte[32]]), MembershipOptions.Local.FarmName, TimeProvider.System);
        var forged = outsider.Seal(MessageCodec.Encode(new Dead("b", ulong.MaxValue, "mallory", Left: false)));
        using (var udp = new UdpClient(AddressFamily.InterNetwork))
        {
            var target = IPEndPoint.Parse(ta.LocalAddress);
            for (var i = 0; i < 3; i++)
            {
                await udp.SendAsync(forged, target);
            }
        }

        await WaitFor(() => a.Dropped(DropReason.UnknownKey) > 0, "a to count the forged packet as dropped");

        // Still working: a change of b's record reaches a, and nobody was declared dead.
        b.UpdateSelf(m => m with { Users = 42, State = "draining" });
        await WaitFor(() => a.Snapshot.Members.FirstOrDefault(m => m.Id == "b") is { Users: 42, State: "draining", Liveness: "alive" }, "b's update to reach a");
        Assert.True(BothAlive(a));
        Assert.Equal(0, a.Dropped(DropReason.AuthFailed));
        Assert.Equal(0, b.Dropped(DropReason.UnknownKey));
    }

    [Fact]
    public async Task Packet_SealedWithTheFarmKeyButNotAMessage_CountedAsMalformed()
    {
        // What a member of a build that encodes its records another way may send (docs/operations.md,
        // "Upgrading a farm"): it opens under the farm's key and does not decode. It must show in
        // streamfarm_gossip_dropped_total{reason="Malformed"}.
        await using var ta = Transport();
        await using var tb = Transport();
        using var a = Node("a", ta, tb.LocalAddress);
        a.Start();
        var alien = new PacketSealer(new Keyring([FarmKey]), MembershipOptions.Local.FarmName, TimeProvider.System);
        var member = MessageCodec.Encode(new Alive(new MemberInfo { Id = "x", Gossip = tb.LocalAddress, State = "active" }));
        var shorter = alien.Seal([.. member.Take(1), 0, (byte)(member.Length - 3 - 1), .. member.Skip(3).SkipLast(1)]); // the record cut short by a byte
        using (var udp = new UdpClient(AddressFamily.InterNetwork))
        {
            await udp.SendAsync(shorter, IPEndPoint.Parse(ta.LocalAddress));
        }

        await WaitFor(() => a.Dropped(DropReason.Malformed) > 0, "a to count the packet as malformed");
        Assert.DoesNotContain(a.Snapshot.Members, m => m.Id == "x");
    }

    [Fact]
    public async Task Node_GarbageDatagrams_DroppedAndNodeKeepsWorking()
    {
        await using var ta = Transport();
        await using var tb = Transport();
        using var a = Node("a", ta, tb.LocalAddress);
        using var b = Node("b", tb, ta.LocalAddress);
        a.Start();
        b.Start();
        await WaitFor(() => BothAlive(a) && BothAlive(b), "both members to see two alive members");

        var random = new Random(7401);
        using (var udp = new UdpClient(AddressFamily.InterNetwork))
        {
            var target = IPEndPoint.Parse(ta.LocalAddress);
            for (var i = 0; i < 200; i++)
            {
                var junk = new byte[random.Next(1, 1500)];
                random.NextBytes(junk);
                await udp.SendAsync(junk, target);
            }
        }

        await WaitFor(() => a.DroppedPackets > 0, "a to drop the garbage");
        b.UpdateSelf(m => m with { Users = 7 });
        await WaitFor(() => a.Snapshot.Members.FirstOrDefault(m => m.Id == "b") is { Users: 7, Liveness: "alive" }, "b's update to reach a");
    }

    [Fact]
    public async Task StreamMessage_ReplyReturnedByTheReceiver_ReachesTheSenderOnTheSameConnection()
    {
        await using var ta = Transport();
        await using var tb = Transport();
        var atA = new System.Collections.Concurrent.ConcurrentQueue<(string From, byte[] Data)>();
        var connections = 0;
        ta.Attach((_, _) => { }, (from, data) =>
        {
            atA.Enqueue((from, data));
            return null;
        });
        tb.Attach((_, _) => { }, (_, data) =>
        {
            Interlocked.Increment(ref connections);
            return [.. data.Reverse()];
        });

        ta.SendStream(tb.LocalAddress, [1, 2, 3]);
        await WaitFor(() => !atA.IsEmpty, "the reply to reach the sender");
        var (replyFrom, reply) = Assert.Single(atA);
        Assert.Equal(tb.LocalAddress, replyFrom);
        Assert.Equal([3, 2, 1], reply);
        Assert.Equal(1, connections);
    }

    [Fact]
    public async Task StreamMessage_ReceiverThatDoesNotReply_SenderCarriesOn()
    {
        // What a build before inline replies does: read, close. The sender sees the end of the
        // stream, delivers nothing, and goes on with the next messages.
        await using var ta = Transport();
        await using var tb = Transport();
        var received = 0;
        var atA = 0;
        ta.Attach((_, _) => { }, (_, _) =>
        {
            Interlocked.Increment(ref atA);
            return null;
        });
        tb.Attach((_, _) => { }, (_, _) =>
        {
            Interlocked.Increment(ref received);
            return null;
        });

        for (var i = 0; i < 10; i++)
        {
            ta.SendStream(tb.LocalAddress, [(byte)i]);
        }

        await WaitFor(() => Volatile.Read(ref received) == 10, "ten stream messages to arrive");
        Assert.Equal(0, Volatile.Read(ref atA));
    }

    [Fact]
    public async Task StateExchange_LeavesFromTheMembersOwnAddress()
    {
        // A member bound to one loopback address sends its state (TCP) to a listener on another.
        // Left to the kernel, the connection would leave from 127.0.0.1: a firewall rule (or a test's
        // partition) naming the member's address would stop its datagrams but not its streams.
        await using var t = new UdpMembershipTransport(new IPEndPoint(IPAddress.Parse("127.0.77.2"), 0));
        t.Attach((_, _) => { }, (_, _) => null);
        var listener = new TcpListener(IPAddress.Parse("127.0.77.3"), 0);
        listener.Start();
        try
        {
            t.SendStream(listener.LocalEndpoint.ToString()!, [1, 2, 3]);
            using var cancel = new CancellationTokenSource(Deadline);
            using var accepted = await listener.AcceptSocketAsync(cancel.Token);
            Assert.Equal(IPAddress.Parse("127.0.77.2"), ((IPEndPoint)accepted.RemoteEndPoint!).Address);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Seed_ByName_ResolvedAndJoined()
    {
        // b knows a only as localhost:<port> (as a pod knows its peers by a Service's name).
        await using var ta = Transport();
        await using var tb = Transport();
        using var a = new MembershipNode(new MemberInfo { Id = "a", Gossip = ta.LocalAddress, State = "active", Capacity = 100 },
            MembershipOptions.Local, ta, TimeProvider.System, new Random(1), new Keyring([FarmKey]));
        using var b = Node("b", tb, $"localhost:{IPEndPoint.Parse(ta.LocalAddress).Port}");
        a.Start();
        b.Start();

        await WaitFor(() => BothAlive(a) && BothAlive(b), "b to join a through its name");
        Assert.True(b.Joined);
    }

    [Theory]
    [InlineData("peers:7401", true, "peers", 7401)]
    [InlineData("streamfarm-0.streamfarm-peers.prod.svc.cluster.local:7501", true, "streamfarm-0.streamfarm-peers.prod.svc.cluster.local", 7501)]
    [InlineData("peers", false, "", 0)]
    [InlineData("peers:0", false, "peers", 0)]
    [InlineData("peers:65536", false, "peers", 65536)]
    [InlineData("peers:+80", false, "peers", 0)]
    [InlineData("bad/name:7401", false, "bad/name", 7401)]
    [InlineData(":7401", false, "", 0)]
    public void TrySplitHostPort_Table(string hostPort, bool ok, string host, int port)
    {
        Assert.Equal(ok, UdpMembershipTransport.TrySplitHostPort(hostPort, out var h, out var p));
        if (ok)
        {
            Assert.Equal((host, port), (h, p));
        }
    }

    [Fact]
    public void Targets_NameThatCoversThisMember_LeavesItOut()
    {
        // A headless Service's name resolves to every pod, this one included: a state exchange with
        // itself would make a lone member believe it had joined.
        var self = IPEndPoint.Parse("10.0.0.11:7401");
        var resolved = new[] { "10.0.0.12", "10.0.0.11", "::ffff:10.0.0.13", "fd00::14", "10.0.0.12" }.Select(IPAddress.Parse);
        Assert.Equal(["10.0.0.12:7401", "10.0.0.13:7401"], UdpMembershipTransport.Targets(resolved, 7401, self).Select(t => t.ToString()));

        // The same address on another port is another member (several on one host).
        Assert.Equal(["10.0.0.11:7501"], UdpMembershipTransport.Targets([IPAddress.Parse("10.0.0.11")], 7501, self).Select(t => t.ToString()));
    }

    private static UdpMembershipTransport Transport()
    {
        // The TCP listener takes the UDP socket's OS-chosen port; rarely that port is taken for TCP.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return new UdpMembershipTransport(new IPEndPoint(IPAddress.Loopback, 0));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 5)
            {
                // try another port
            }
        }
    }

    private static MembershipNode Node(string id, UdpMembershipTransport transport, string seed)
    {
        var self = new MemberInfo { Id = id, Gossip = transport.LocalAddress, State = "active", Capacity = 100 };
        return new MembershipNode(self, MembershipOptions.Local, transport, TimeProvider.System, new Random(id[0]), new Keyring([FarmKey]), [seed]);
    }

    private static bool BothAlive(MembershipNode node)
    {
        var members = node.Snapshot.Members;
        return members.Count == 2 && members.All(m => m.Liveness == "alive");
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!condition())
        {
            if (deadline.IsCancellationRequested)
            {
                Assert.Fail($"timed out after {Deadline.TotalSeconds} s waiting for {what}");
            }

            await Task.Delay(25);
        }
    }
}
