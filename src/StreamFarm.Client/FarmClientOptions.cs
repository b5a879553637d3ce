using System.Net;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;

namespace StreamFarm.Client;

/// <summary>Options of a <see cref="FarmClient"/>.</summary>
public sealed record FarmClientOptions
{
    /// <summary>The common service name, for example <c>stream.farm.test</c>.</summary>
    public required string ServiceName { get; init; }

    /// <summary>RTTP port of the first server found through DNS (every server uses the same ports).</summary>
    public int Port { get; init; } = 7400;

    /// <summary>How the service name is resolved; the system resolver by default.</summary>
    public IServiceResolver Resolver { get; init; } = new SystemResolver();

    /// <summary>How the second server is chosen.</summary>
    public IServerSelector Selector { get; init; } = Selectors.Default();

    /// <summary>Seeded chance for selection and jitter (tests pass a fixed seed).</summary>
    public Random Random { get; init; } = new();

    /// <summary>Delay between rounds of rediscovery; never gives up by default.</summary>
    public IReconnectPolicy? ReconnectPolicy { get; init; }

    /// <summary>
    /// A server that sends nothing and answers none of the PINGs sent over this long is hung: the
    /// client leaves it. The client looks every <c>HeartbeatTimeout / MaxPingsOut</c>; when nothing
    /// arrived since its last look it sends a PING and counts those unanswered (as nats.net counts
    /// outstanding pongs); anything that arrives (a PONG, the server's own keep-alive PING, an
    /// update) resets the count, so a connection the server keeps alive costs no PINGs of the
    /// client's. What the application has not read yet plays no part: the socket is read on while
    /// the application pauses.
    /// </summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Unanswered PINGs in a row after which the server is hung (see <see cref="HeartbeatTimeout"/>).</summary>
    public int MaxPingsOut { get; init; } = 3;

    /// <summary>Messages buffered for the application (<see cref="FarmClient.Messages"/>); beyond that <see cref="Overflow"/> decides.</summary>
    public int MessageBuffer { get; init; } = 10_000;

    /// <summary>
    /// What a full buffer does when the application falls behind: conflate per subject (the default,
    /// as the server does), drop the oldest, or wait (the connection stops reading; the server
    /// conflates and in the end closes it with <c>SLOW_CONSUMER</c>). Each overflow is counted
    /// (<see cref="FarmClient.Conflated"/>, <see cref="FarmClient.Dropped"/>) and each episode raises
    /// <see cref="FarmClient.Overflowed"/>.
    /// </summary>
    public OverflowPolicy Overflow { get; init; } = OverflowPolicy.Conflate;

    /// <summary>
    /// Keeps a second connection open to another server the selector chose, so that failover skips
    /// the connects: after the same server was tried once more and DNS was asked again (claims 13
    /// and 14), the client moves to the standby at once. <see cref="StandbyMode.Warm"/>: a session
    /// with nothing subscribed; <see cref="StandbyMode.Hot"/>: subscribed too, so the application gets
    /// each subject's image from the standby's copy at once. Off by default.
    /// </summary>
    public StandbyMode Standby { get; init; }

    /// <summary>Longest pause before leaving a server that sent MOVE, so its clients do not all arrive elsewhere at once.</summary>
    public TimeSpan MoveSpread { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Which of a server's addresses this client can reach: the internal one (default), or the
    /// external one (outside the farm's network), falling back to internal where none is published.
    /// </summary>
    public bool UseExternalAddresses { get; init; }

    /// <summary>
    /// One hop for publishers: each subject's publications go straight to its owner (computed from
    /// the farm table, <see cref="StreamFarm.Protocol.Ownership"/>) over a publish-only connection
    /// opened when first needed, rather than through the serving server and a route; the serving
    /// connection carries them while the owner is unknown or unreachable. On by default.
    /// </summary>
    public bool OneHop { get; init; } = true;

    /// <summary>A publish-only connection to an owner with nothing sent for this long (and nothing unanswered) is closed.</summary>
    public TimeSpan OwnerConnectionIdle { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The window of publications sent and not yet acknowledged (acknowledged ones, and with
    /// <see cref="OneHop"/> every one): more wait, in call order, until answers free slots.
    /// </summary>
    public int MaxUnacknowledged { get; init; } = 1_000;

    /// <summary>Where the client logs its steps (Debug; losses and moves at Information, failures at Warning); none by default.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The clock of every timer and timestamp (heartbeats, backoff, steps); <see cref="RttpConnectionOptions.Time"/> when null.</summary>
    public TimeProvider? Time { get; init; }

    /// <summary>A seed for <see cref="Random"/> (selection, jitter): the same seed, the same choices.</summary>
    public int? Seed { get; init; }

    /// <summary>How sessions are opened (RTTP over TCP by default); tests put a fake here.</summary>
    public IRttpConnectionFactory? ConnectionFactory { get; init; }

    /// <summary>HELLO options: client name, credentials, timeouts.</summary>
    public RttpConnectionOptions Connection { get; init; } = new();

    /// <summary>Uses a given DNS server (<c>IP:PORT</c>) instead of the system resolver.</summary>
    public static IServiceResolver DnsServer(IPEndPoint server) => new DnsServerResolver(server);
}
