using System.Net;
using System.Net.Sockets;
using StreamFarm.Membership;

namespace StreamFarm.Dns.Sync.Tests;

/// <summary>
/// A real (small) farm over UDP on loopback: two server members and dns-sync's observer member,
/// wired as <c>streamfarm dns-sync</c> wires them, against a real Knot.
/// </summary>
public sealed class FarmEndToEndTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly byte[] FarmKey = [.. Enumerable.Range(0, 32).Select(i => (byte)(i + 7))];

    [KnotFact]
    public async Task KnotFollowsAFarm_ThroughAnObserverMember()
    {
        await using var knot = await KnotServer.StartAsync();
        await using var t1 = Transport();
        await using var t2 = Transport();
        await using var tObserver = Transport();
        using var s1 = Node(new MemberInfo { Id = "s1", Gossip = "", State = "active", Capacity = 100, Tcp = "127.0.0.2:7400" }, t1, t2.LocalAddress);
        using var s2 = Node(new MemberInfo { Id = "s2", Gossip = "", State = "active", Capacity = 100, Tcp = "127.0.0.3:7400" }, t2, t1.LocalAddress);
        using var observer = Node(new MemberInfo { Id = "dns-sync-test", Gossip = "", Observer = true, State = "active" }, tObserver, t1.LocalAddress);
        using var sync = new DnsSync(Farm.Options(), knot.UpdateClient());
        using var stop = new CancellationTokenSource();
        observer.Changed += (_, next) => sync.Notify(next);
        s1.Start();
        s2.Start();
        observer.Start();
        await WaitFor(() => Task.FromResult(observer.Joined), "the observer to join");
        sync.Notify(observer.Snapshot);
        var loop = sync.RunAsync(stop.Token);

        await WaitFor(async () => (await knot.AddressesAsync("stream.farm.test")).SequenceEqual(["127.0.0.2", "127.0.0.3"]), "both servers in stream.farm.test");
        Assert.Equal(["s1", "s2"], await knot.TxtAsync("_streamfarm-sync.farm.test")); // not the observer

        s2.UpdateSelf(m => m with { State = "draining" });
        // A draining server leaves the service name but keeps its own. Both are waited for together:
        // under a loaded machine the zone can pass through a moment in which s2 is suspect.
        await WaitFor(
            async () => (await knot.AddressesAsync("stream.farm.test")).SequenceEqual(["127.0.0.2"]) && (await knot.AddressesAsync("s2.farm.test")).SequenceEqual(["127.0.0.3"]),
            "the draining server to leave stream.farm.test and keep s2.farm.test");

        s1.Leave();
        await WaitFor(async () => (await knot.AddressesAsync("stream.farm.test")).Length == 0 && (await knot.AddressesAsync("s1.farm.test")).Length == 0, "the leaving server to go");
        Assert.Equal(0, sync.Failures);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
    }

    private static UdpMembershipTransport Transport()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return new UdpMembershipTransport(new IPEndPoint(IPAddress.Loopback, 0));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 5)
            {
                // the OS-chosen UDP port is taken for TCP: try another
            }
        }
    }

    // The lan preset (suspicion of at least 4 s): with local's 1 s a suite running beside others on
    // 2 cores saw s2 declared dead for a moment, and its names left the zone; this test is about
    // following the table, not about failure detection.
    private static MembershipNode Node(MemberInfo self, UdpMembershipTransport transport, string seed) =>
        new(self with { Gossip = transport.LocalAddress }, MembershipOptions.Lan, transport, TimeProvider.System, new Random(self.Id.Length), new Keyring([FarmKey]), [seed]);

    private static async Task WaitFor(Func<Task<bool>> condition, string what)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (!await condition())
        {
            if (deadline.IsCancellationRequested)
            {
                Assert.Fail($"timed out after {Deadline.TotalSeconds} s waiting for {what}");
            }

            await Task.Delay(50);
        }
    }
}
