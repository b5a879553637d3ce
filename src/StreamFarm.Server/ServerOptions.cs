using System.Net;
using StreamFarm.Server.Auth;

namespace StreamFarm.Server;

/// <summary>
/// Everything a node is configured with. Bound from the config file, then <c>STREAMFARM_*</c>
/// environment variables, then command-line options (see docs/operations.md).
/// </summary>
public sealed class ServerOptions
{
    /// <summary>Stable unique id of this server in the farm.</summary>
    public string Id { get; set; } = Environment.MachineName.ToLowerInvariant();

    /// <summary>IP address every listener binds to (each server of a one-machine farm has its own).</summary>
    public string Listen { get; set; } = "127.0.0.1";

    public string Group { get; set; } = "default";

    /// <summary>
    /// Serve clients of this server's group only: a client whose HELLO names another group
    /// (<c>group=</c>) is refused with <c>ERR WRONG_GROUP</c>, which names this server's group.
    /// Clients that name no group are served.
    /// </summary>
    public bool GroupOnly { get; set; }

    /// <summary>Most users this server takes; also the connection limit.</summary>
    public int Capacity { get; set; } = 10_000;

    /// <summary>RTTP over TCP. 0 picks a free port (tests).</summary>
    public int TcpPort { get; set; } = 7400;

    /// <summary>HTTP: status page, /farm, /healthz, /metrics and WebSocket RTTP at /rttp. 0 picks a free port.</summary>
    public int HttpPort { get; set; } = 7480;

    /// <summary>Host name clients should use in the farm table (defaults to <see cref="Listen"/>).</summary>
    public string? AdvertiseHost { get; set; }

    /// <summary>RTTP address for clients outside the farm's network (<c>host:port</c>: NAT, load balancer), published in the farm table.</summary>
    public string? ExternalAddress { get; set; }

    /// <summary>The name on this server's TLS certificate: the host of the TLS addresses in the farm table (default: the advertised host).</summary>
    public string? TlsName { get; set; }

    /// <summary>TLS for clients: RTTP over TLS and HTTPS/WSS (off unless a certificate is given).</summary>
    public Tls.TlsOptions Tls { get; set; } = new();

    public LimitOptions Limits { get; set; } = new();

    /// <summary>Moving clients away when this server has far more than its share of the farm's users.</summary>
    public RebalanceOptions Rebalance { get; set; } = new();

    public FarmOptions Farm { get; set; } = new();

    /// <summary>When set (<c>IP:PORT</c>), this server also answers the farm's DNS zone there.</summary>
    public string? DnsListen { get; set; }

    public Dns.DnsOptions Dns { get; set; } = new();

    public AuthOptions Auth { get; set; } = new();

    /// <summary>Who may use the HTTP side: WebSocket origins, the administrative credential, restricted paths.</summary>
    public Http.HttpOptions Http { get; set; } = new();

    /// <summary>Longest time a graceful stop takes before remaining connections are cut.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Id.Length is 0 or > 64 || !Id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw new ArgumentException($"id '{Id}' must be 1 to 64 characters of A-Z a-z 0-9 _ - .");
        }

        if (!IPAddress.TryParse(Listen, out _))
        {
            throw new ArgumentException($"listen '{Listen}' is not an IP address");
        }

        if (TcpPort is < 0 or > 65535 || HttpPort is < 0 or > 65535)
        {
            throw new ArgumentException("ports must be between 0 and 65535");
        }

        if (Capacity < 1)
        {
            throw new ArgumentException("capacity must be at least 1");
        }

        Limits.Validate();
        Tls.Validate();
        Auth.Validate();
        Http.Validate();
        Rebalance.Validate();
        Farm.Validate();
        if (DnsListen is not null)
        {
            if (!IPEndPoint.TryParse(DnsListen, out var dns) || dns.Port == 0 && !DnsListen.EndsWith(":0", StringComparison.Ordinal))
            {
                throw new ArgumentException($"dns '{DnsListen}' is not IP:PORT");
            }

            Dns.Validate();
        }
    }
}

/// <summary>
/// Rebalancing: a server whose users exceed its share of the farm's users (by capacity, among the
/// active and alive servers) by <see cref="Threshold"/> sends <c>MOVE REBALANCE</c> to half of its
/// excess, spread over a second, at most once per <see cref="Interval"/>. Clients choose another
/// server with their policy. After a restart the farm thus evens out again instead of keeping the
/// restarted server nearly empty.
/// </summary>
public sealed class RebalanceOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Users over fair share that start a rebalance: 1.1 = 10 % more than this server's share.</summary>
    public double Threshold { get; set; } = 1.1;

    /// <summary>Fewer excess users than this never move anyone (small farms stay quiet).</summary>
    public int MinExcess { get; set; } = 10;

    /// <summary>Time between two rebalances of this server (the table must show the effect of the last one).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(2);

    public void Validate()
    {
        if (!(Threshold >= 1) || MinExcess < 1 || Interval < TimeSpan.FromMilliseconds(100))
        {
            throw new ArgumentException("rebalance: threshold at least 1, minExcess at least 1, interval at least 100 ms");
        }
    }
}

/// <summary>Per-connection and per-server limits (defaults in docs/protocol.md, section 6).</summary>
public sealed class LimitOptions
{
    public int MaxLineBytes { get; set; } = 16 * 1024;

    public int MaxFieldsPerMessage { get; set; } = 256;

    public int MaxSubscriptionsPerConnection { get; set; } = 10_000;

    /// <summary>Outbound bytes queued per connection before conflation starts.</summary>
    public int MaxOutboundBytes { get; set; } = 1024 * 1024;

    /// <summary>How long a connection may stay over <see cref="MaxOutboundBytes"/> before it is cut.</summary>
    public TimeSpan SlowConsumerTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The kernel send buffer of each client connection (<c>SO_SNDBUF</c>, which Linux doubles for
    /// its bookkeeping); 0 leaves it to the operating system (Linux grows it up to
    /// <c>net.ipv4.tcp_wmem</c>'s maximum, 4 MiB by default). What the kernel holds is no longer
    /// conflated: for a slow reader it is the backlog between it and the newest values.
    /// </summary>
    public int SocketSendBufferBytes { get; set; }

    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Most connections open at once from one client address (0: no limit): RTTP sessions (TCP,
    /// TLS and WebSocket together), and, separately, HTTP connections. Clients behind one NAT or
    /// proxy share an address: raise it (or set 0) for them.
    /// </summary>
    public int MaxConnectionsPerAddress { get; set; } = 1000;

    /// <summary>HTTP requests per second one client address may make (a token bucket holding two seconds' worth; 0: no limit). Over it: 429.</summary>
    public int HttpRequestsPerSecondPerAddress { get; set; } = 100;

    /// <summary>The server sends PING after this long without sending anything.</summary>
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A connection that sent nothing this long is closed with ERR IDLE.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public void Validate()
    {
        if (MaxLineBytes is < 256 or > 1024 * 1024)
        {
            throw new ArgumentException("limits.maxLineBytes must be between 256 and 1048576");
        }

        if (MaxFieldsPerMessage < 1 || MaxSubscriptionsPerConnection < 1)
        {
            throw new ArgumentException("limits must be positive");
        }

        if (MaxConnectionsPerAddress < 0 || HttpRequestsPerSecondPerAddress < 0)
        {
            throw new ArgumentException("limits.maxConnectionsPerAddress and limits.httpRequestsPerSecondPerAddress must be 0 (no limit) or more");
        }

        if (MaxOutboundBytes < 4096)
        {
            throw new ArgumentException("limits.maxOutboundBytes must be at least 4096");
        }

        if (SocketSendBufferBytes != 0 && SocketSendBufferBytes is < 4096 or > 64 * 1024 * 1024)
        {
            throw new ArgumentException("limits.socketSendBufferBytes must be 0 (the operating system's choice) or between 4096 and 67108864");
        }

        if (HelloTimeout <= TimeSpan.Zero || PingInterval <= TimeSpan.Zero || IdleTimeout <= PingInterval || SlowConsumerTimeout < TimeSpan.Zero)
        {
            throw new ArgumentException("timeouts must be positive and idleTimeout longer than pingInterval");
        }
    }
}
