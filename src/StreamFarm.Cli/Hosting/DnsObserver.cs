using System.Net;
using StreamFarm.Dns;
using StreamFarm.Membership;

namespace StreamFarm.Cli.Hosting;

/// <summary>
/// The farm's DNS system as its own member: an observer in the membership (sees the table, is not
/// in it) that answers the zone from the live table. Used by <c>streamfarm dns</c> and the demo.
/// </summary>
internal sealed class DnsObserver : IAsyncDisposable
{
    private readonly UdpMembershipTransport _transport;
    private readonly MembershipNode _node;
    private readonly DnsServer _dns;
    private readonly TimeSpan _gossipInterval;

    private DnsObserver(UdpMembershipTransport transport, MembershipNode node, DnsServer dns, TimeSpan gossipInterval)
    {
        _transport = transport;
        _node = node;
        _dns = dns;
        _gossipInterval = gossipInterval;
    }

    public string Id => _node.Id;

    public IPEndPoint EndPoint => _dns.EndPoint;

    public static async Task<DnsObserver> StartAsync(IPEndPoint dnsEndPoint, int gossipPort, DnsOptions options, MembershipOptions membership, Keyring keyring, IReadOnlyList<string> seeds, string? id)
    {
        options.NameServerAddress ??= dnsEndPoint.Address.ToString();
        UdpMembershipTransport transport;
        try
        {
            transport = new UdpMembershipTransport(new IPEndPoint(dnsEndPoint.Address, gossipPort));
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new CliError($"cannot bind the gossip port {dnsEndPoint.Address}:{gossipPort}: {e.Message}");
        }

        var self = new MemberInfo
        {
            Id = id ?? $"dns-{dnsEndPoint.Address.ToString().Replace(':', '-')}",
            Gossip = transport.LocalAddress,
            Observer = true,
            State = "active",
            Incarnation = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        var node = new MembershipNode(self, membership, transport, TimeProvider.System, new Random(), keyring, seeds);
        DnsServer dns;
        try
        {
            dns = new DnsServer(new DnsResponder(options, () => node.Snapshot), options, dnsEndPoint, TimeProvider.System);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            node.Dispose();
            await transport.DisposeAsync();
            throw new CliError($"cannot listen for DNS on {dnsEndPoint}: {e.Message}");
        }

        node.Start();
        dns.Start();
        return new DnsObserver(transport, node, dns, membership.GossipInterval);
    }

    public async ValueTask DisposeAsync()
    {
        _node.Leave();
        await Task.Delay(_gossipInterval * 3);
        await _dns.DisposeAsync();
        _node.Dispose();
        await _transport.DisposeAsync();
    }
}
