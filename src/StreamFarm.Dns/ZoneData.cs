using System.Net;
using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Dns;

/// <summary>
/// The zone as computed from one farm snapshot: names in lower-case wire form and the healthy
/// servers in a stable order. Immutable; rebuilt when the snapshot's version changes.
/// </summary>
internal sealed class ZoneData
{
    private readonly Dictionary<string, NameKind> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Server> _byLabel = new(StringComparer.Ordinal);

    public ZoneData(DnsOptions options, FarmSnapshot snapshot, uint serial)
    {
        Version = snapshot.Version;
        Serial = serial;
        Apex = DnsNames.ToWire(options.Zone)!;
        Service = DnsNames.ToWire($"{options.Service}.{options.Zone}")!;
        SrvTcp = DnsNames.ToWire($"_rttp._tcp.{options.Service}.{options.Zone}")!;
        SrvWs = DnsNames.ToWire($"_rttp-ws._tcp.{options.Service}.{options.Zone}")!;
        Ns = DnsNames.ToWire($"ns1.{options.Zone}")!;
        NameServer = options.NameServerAddress is { } ns ? IPAddress.Parse(ns).GetAddressBytes() : null;
        Add(Apex, NameKind.Apex);
        Add(Service, NameKind.Service);
        Add(SrvTcp, NameKind.SrvTcp);
        Add(SrvWs, NameKind.SrvWs);
        Add(Ns, NameKind.NameServer);
        Add(DnsNames.ToWire($"_tcp.{options.Service}.{options.Zone}")!, NameKind.EmptyNonTerminal);

        var all = new List<Server>();
        foreach (var m in snapshot.Members.OrderBy(m => m.Id, StringComparer.Ordinal))
        {
            // A server with TLS only has no plain address: its IP comes from its TLS or route address, and
            // it has no plain port to put in an SRV record (port 0: left out of them).
            if (!(TryAddress(m.Tcp, out var ip, out var tcpPort) || TryHost(m.Tls, out ip) || TryHost(m.Route, out ip)) || DnsNames.ToWire($"{m.Id}.{options.Zone}") is not { } wire)
            {
                continue; // an id that is not a DNS label, or no address yet: not served by DNS
            }

            _ = TryAddress(HostPort(m.Ws), out _, out var wsPort);
            var labels = wire[..^Apex.Length];
            var server = new Server(m.Id, labels, ip, (ushort)tcpPort, (ushort)wsPort, m.Users, Math.Max(1, m.Capacity), m.Group,
                Healthy: m.Liveness == "alive" && m.State == "active", Alive: m.Liveness == "alive");
            all.Add(server);
            _byLabel[Key(wire)] = server;
            Add(wire, NameKind.Server);

            // An id with dots ("eu.s1") makes the names between it and the apex exist, without data.
            for (var p = wire[0] + 1; p < labels.Length; p += wire[p] + 1)
            {
                _names.TryAdd(Key(wire.AsSpan(p)), NameKind.EmptyNonTerminal);
            }
        }

        Healthy = [.. all.Where(s => s.Healthy)];
        SrvTcpServers = [.. Healthy.Where(s => s.TcpPort != 0)];
        SrvWsServers = [.. Healthy.Where(s => s.WsPort != 0)];
        HealthyIpv4 = [.. Healthy.Where(s => s.Ip.Length == 4)];
        HealthyIpv6 = [.. Healthy.Where(s => s.Ip.Length == 16)];
    }

    /// <summary>The healthy servers with a plain RTTP port (the targets of the SRV records for TCP).</summary>
    public Server[] SrvTcpServers { get; }

    /// <summary>The healthy servers with a plain WebSocket port (the targets of the SRV records for WebSocket).</summary>
    public Server[] SrvWsServers { get; }

    public long Version { get; }

    public uint Serial { get; }

    public byte[] Apex { get; }

    public byte[] Service { get; }

    public byte[] SrvTcp { get; }

    public byte[] SrvWs { get; }

    public byte[] Ns { get; }

    public byte[]? NameServer { get; }

    /// <summary>Active and alive servers, sorted by id: the only ones the service name hands out.</summary>
    public Server[] Healthy { get; }

    /// <summary>The healthy servers with an IPv4 address: what an A query chooses from.</summary>
    public Server[] HealthyIpv4 { get; }

    /// <summary>The healthy servers with an IPv6 address: what an AAAA query chooses from.</summary>
    public Server[] HealthyIpv6 { get; }

    public NameKind Find(ReadOnlySpan<byte> lowerWire, out Server? server)
    {
        // The same Latin-1 key as Add's, made on the stack and looked up as a span: no string per query.
        Span<char> key = lowerWire.Length <= 512 ? stackalloc char[lowerWire.Length] : new char[lowerWire.Length];
        Encoding.Latin1.GetChars(lowerWire, key);
        server = null;
        if (!_names.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(key, out var kind))
        {
            return NameKind.None;
        }

        if (kind == NameKind.Server)
        {
            server = _byLabel.GetAlternateLookup<ReadOnlySpan<char>>()[key];
        }

        return kind;
    }

    // Latin-1 keeps one char per byte: an exact, allocation-light key for wire names.
    private static string Key(ReadOnlySpan<byte> wire) => Encoding.Latin1.GetString(wire);

    private void Add(byte[] wire, NameKind kind) => _names[Key(wire)] = kind;

    private static string HostPort(string wsUrl) =>
        Uri.TryCreate(wsUrl, UriKind.Absolute, out var u) ? $"{u.Host}:{u.Port}" : "";

    private static bool TryHost(string hostPort, out byte[] ip) => TryAddress(hostPort, out ip, out _);

    private static bool TryAddress(string hostPort, out byte[] ip, out int port)
    {
        ip = [];
        port = 0;
        if (!IPEndPoint.TryParse(hostPort, out var ep))
        {
            return false;
        }

        ip = ep.Address.GetAddressBytes();
        port = ep.Port;
        return true;
    }

    /// <summary>A server of the zone; Labels: its name's labels above the apex, in lower-case wire form.</summary>
    internal sealed record Server(string Id, byte[] Labels, byte[] Ip, ushort TcpPort, ushort WsPort, int Users, int Capacity, string Group, bool Healthy, bool Alive);
}

internal enum NameKind
{
    None,
    Apex,
    Service,
    SrvTcp,
    SrvWs,
    NameServer,
    Server,
    EmptyNonTerminal,
}
