using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using StreamFarm.Dns;
using StreamFarm.Membership;
using StreamFarm.Server.Farm;
using StreamFarm.Server.Http;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server;

/// <summary>
/// One running server: Kestrel with a raw-TCP RTTP listener and an HTTP listener (status, /farm,
/// /healthz, /metrics, WebSocket RTTP), around an <see cref="RttpServer"/>; and, when the farm has
/// a key, a <see cref="MembershipNode"/> on the gossip port that feeds the farm table.
/// </summary>
public sealed partial class StreamFarmNode : IAsyncDisposable
{
    private readonly KestrelHost _kestrel;
    private readonly ILoggerFactory _logging;
    private readonly UdpMembershipTransport? _gossip;
    private readonly FarmStatusPublisher? _publisher;
    private int _stopped;

    private readonly IPEndPoint? _tcp;
    private readonly IPEndPoint? _http;

    private StreamFarmNode(KestrelHost kestrel, ILoggerFactory logging, RttpServer server, IPEndPoint? tcp, IPEndPoint? http, MembershipNode? membership, UdpMembershipTransport? gossip, FarmStatusPublisher? publisher, DnsServer? dns)
    {
        Dns = dns;
        _kestrel = kestrel;
        _logging = logging;
        Server = server;
        _tcp = tcp;
        _http = http;
        Membership = membership;
        _gossip = gossip;
        _publisher = publisher;
    }

    public RttpServer Server { get; }

    /// <summary>RTTP over TCP (plain). There is none with <see cref="Tls.TlsOptions.Only"/>: asking is a mistake of the caller.</summary>
    public IPEndPoint TcpEndPoint => _tcp ?? throw new InvalidOperationException("this node has no plain RTTP port (tls.only): use TlsEndPoint");

    /// <summary>HTTP and WebSocket RTTP (plain). There is none with <see cref="Tls.TlsOptions.Only"/>.</summary>
    public IPEndPoint HttpEndPoint => _http ?? throw new InvalidOperationException("this node has no plain HTTP port (tls.only): use HttpsEndPoint");

    /// <summary>Whether the plain ports are open (not <see cref="Tls.TlsOptions.Only"/>).</summary>
    public bool HasPlainPorts => _tcp is not null;

    /// <summary>RTTP over TLS, when the node has a certificate.</summary>
    public IPEndPoint? TlsEndPoint { get; private init; }

    /// <summary>HTTPS (and WebSocket RTTP over TLS), when the node has a certificate.</summary>
    public IPEndPoint? HttpsEndPoint { get; private init; }

    /// <summary>The TLS certificate in use and its reloads, when the node has one.</summary>
    public Tls.CertificateStore? Certificates { get; private init; }

    /// <summary>The membership member, when the farm has a key.</summary>
    public MembershipNode? Membership { get; }

    /// <summary>The farm's DNS responder, when this node runs one (<c>--dns</c>).</summary>
    public DnsServer? Dns { get; }

    /// <summary>Where other members reach this one (<c>ip:port</c>), when membership runs.</summary>
    public string? GossipAddress => _gossip?.LocalAddress;

    private static readonly byte[] TooManyHttpConnections = System.Text.Encoding.ASCII.GetBytes(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 52\r\n\r\ntoo many connections from your address: close some\r\n");

    /// <summary>HTTP connections per client address (limits.maxConnectionsPerAddress): one over it gets a 503 and is closed.</summary>
    private static async Task LimitPerAddressAsync(Microsoft.AspNetCore.Connections.ConnectionContext context, Microsoft.AspNetCore.Connections.ConnectionDelegate next, AddressLimiter limiter)
    {
        var address = (context.RemoteEndPoint as IPEndPoint)?.Address is { } a ? AddressLimiter.Normalize(a) : null;
        if (!limiter.TryAcquire(address))
        {
            try
            {
                await context.Transport.Output.WriteAsync(TooManyHttpConnections);
                await context.Transport.Output.CompleteAsync();
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or Microsoft.AspNetCore.Connections.ConnectionResetException)
            {
                // gone already
            }

            return;
        }

        try
        {
            await next(context);
        }
        finally
        {
            limiter.Release(address);
        }
    }

    /// <summary>
    /// Starts a node whose log is configured by <paramref name="logging"/> (providers, levels), with
    /// <c>Microsoft.*</c> categories at Warning and up; the node owns that logger factory.
    /// </summary>
    public static Task<StreamFarmNode> StartAsync(ServerOptions options, Action<ILoggingBuilder>? logging = null, TimeProvider? time = null, CancellationToken cancel = default) =>
        StartAsync(options, LoggerFactory.Create(l =>
        {
            logging?.Invoke(l);
            l.AddFilter("Microsoft", LogLevel.Warning); // Kestrel's start-up lines would call the RTTP port http://
        }), ownsLogging: true, time, cancel);

    /// <summary>
    /// Starts a node that logs to <paramref name="logging"/> as it is (its filters are the caller's).
    /// With <paramref name="ownsLogging"/>, the node disposes it last when it is disposed (flushing
    /// what is queued); otherwise the caller does, after the node.
    /// </summary>
    public static async Task<StreamFarmNode> StartAsync(ServerOptions options, ILoggerFactory logging, bool ownsLogging, TimeProvider? time = null, CancellationToken cancel = default)
    {
        var loggerFactory = ownsLogging ? logging : new BorrowedLoggerFactory(logging);
        try
        {
            return await StartCoreAsync(options, loggerFactory, time, cancel);
        }
        catch
        {
            loggerFactory.Dispose(); // the node that would have owned it did not start
            throw;
        }
    }

    private static async Task<StreamFarmNode> StartCoreAsync(ServerOptions options, ILoggerFactory loggerFactory, TimeProvider? time, CancellationToken cancel)
    {
        options.Validate();
        time ??= TimeProvider.System;
        var ip = IPAddress.Parse(options.Listen);
        UdpMembershipTransport? gossip = null;
        MembershipNode? membership = null;
        if (options.Farm.Enabled)
        {
            try
            {
                gossip = new UdpMembershipTransport(new IPEndPoint(ip, options.Farm.GossipPort));
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new IOException($"cannot bind the gossip port {options.Listen}:{options.Farm.GossipPort}: {e.Message}", e);
            }

            var self = RttpServer.SelfRecord(options, gossip.LocalAddress, time);
            membership = new MembershipNode(self, options.Farm.MembershipOptions, gossip, TickThread.For(time), new Random(), options.Farm.Keyring(), options.Farm.SeedAddresses);
        }

        // Kestrel without the web host (KestrelHost): no configuration files, no environment
        // variables, no content root, and none of the generic host's services. (The web host's
        // slim builder once read appsettings.json from the working directory and watched that tree:
        // a node started in a large /tmp walked all of it.) A node's settings come from its options.
        ListenOptions? tcpListen = null;
        ListenOptions? httpListen = null;
        ListenOptions? routeListen = null;
        ListenOptions? tlsListen = null;
        ListenOptions? httpsListen = null;
        Tls.CertificateStore? certificates = null;
        System.Security.Cryptography.X509Certificates.X509Certificate2Collection? farmCa = null;
        if (options.Tls.Enabled)
        {
            try
            {
                farmCa = string.IsNullOrEmpty(options.Tls.CaFile) ? null : Tls.CertificateStore.LoadAuthority(options.Tls.CaFile);
                certificates = new Tls.CertificateStore(options.Tls, time, loggerFactory.CreateLogger("StreamFarm.Tls"));
            }
            catch (InvalidDataException)
            {
                if (gossip is not null)
                {
                    await gossip.DisposeAsync();
                }

                throw;
            }
        }

        var server = new RttpServer(options, time, loggerFactory.CreateLogger<RttpServer>(), membership is null ? null : _ => new MembershipFarmView(membership));
        // Requests per client address (a token bucket: a page load's burst passes, a flood gets 429).
        var rateLimit = options.Limits.HttpRequestsPerSecondPerAddress > 0 ? new HttpRateLimiter(options.Limits.HttpRequestsPerSecondPerAddress, time) : null;
        var kestrel = new KestrelHost(loggerFactory, k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxConcurrentConnections = null; // RTTP counts its own connections (ERR FULL)
            if (!options.Tls.Only)
            {
                k.Listen(ip, options.TcpPort, lo =>
                {
                    tcpListen = lo;
                    lo.Run(new RttpConnectionHandler(server, plainSocket: true).OnConnectedAsync);
                });
                k.Listen(ip, options.HttpPort, lo =>
                {
                    httpListen = lo;
                    lo.Use(next => context => LimitPerAddressAsync(context, next, server.HttpPerAddress));
                });
            }
            if (certificates is not null)
            {
                // The handshake takes the certificate in use at that moment (reloaded when the files
                // change); TLS 1.2+ with forward-secret AEAD suites only: a connection on any other
                // suite is closed right after the handshake, before RTTP or HTTP sees it
                // (CertificateStore.ServerOptions says why this is not a CipherSuitesPolicy).
                var tls = new Microsoft.AspNetCore.Server.Kestrel.Https.TlsHandshakeCallbackOptions
                {
                    OnConnection = _ => ValueTask.FromResult(certificates.ServerOptions()),
                    HandshakeTimeout = options.Limits.HelloTimeout,
                };
                k.Listen(ip, options.Tls.Port, lo =>
                {
                    tlsListen = lo;
                    lo.UseHttps(tls);
                    lo.Use(certificates.RequireModernSuite);
                    lo.Run(new RttpConnectionHandler(server).OnConnectedAsync);
                });
                k.Listen(ip, options.Tls.HttpsPort, lo =>
                {
                    httpsListen = lo;
                    lo.UseHttps(tls);
                    lo.Use(certificates.RequireModernSuite);
                    lo.Use(next => context => LimitPerAddressAsync(context, next, server.HttpPerAddress)); // after the handshake: the refusal is an HTTP answer
                });
            }

            if (membership is not null && options.Farm.Routes)
            {
                k.Listen(ip, options.Farm.RoutePort, lo =>
                {
                    routeListen = lo;
                    if (certificates is not null && farmCa is not null)
                    {
                        // Mutual TLS between the farm's servers (on top of the route HELLO's HMAC).
                        lo.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.TlsHandshakeCallbackOptions
                        {
                            OnConnection = _ => ValueTask.FromResult(certificates.RouteServerOptions(farmCa)),
                            HandshakeTimeout = options.Limits.HelloTimeout,
                        });
                        lo.Use(certificates.RequireModernSuite);
                    }

                    lo.Run(new RouteConnectionHandler(server, plainSocket: certificates is null || farmCa is null).OnConnectedAsync);
                });
            }
        });
        var app = HttpEndpoints.Build(server, new ServerMetrics(server, membership, certificates).Registry, loggerFactory, rateLimit);
        try
        {
            await kestrel.StartAsync(app, cancel);
        }
        catch (IOException e)
        {
            var log = loggerFactory.CreateLogger("StreamFarm.Node");
            Log.StartFailed(log, e);
            await kestrel.DisposeAsync();
            server.Dispose();
            if (gossip is not null)
            {
                await gossip.DisposeAsync();
            }

            throw;
        }

        var tcp = tcpListen?.IPEndPoint;
        var http = httpListen?.IPEndPoint;
        var host = options.AdvertiseHost ?? options.Listen;
        server.Addresses = tcp is null || http is null ? ("", "", "") : ($"{host}:{tcp.Port}", $"ws://{host}:{http.Port}/rttp", $"http://{host}:{http.Port}");
        server.RouteAddress = routeListen?.IPEndPoint is { } route ? $"{host}:{route.Port}" : "";
        if (tlsListen?.IPEndPoint is { } tlsEndPoint && httpsListen?.IPEndPoint is { } httpsEndPoint)
        {
            // Clients check the certificate against the name they connect to: the TLS addresses
            // carry the certificate's name (tlsName), else the advertised host.
            var tlsHost = options.TlsName ?? host;
            server.TlsAddresses = ($"{tlsHost}:{tlsEndPoint.Port}", $"wss://{tlsHost}:{httpsEndPoint.Port}/rttp");
        }

        (server.Farm as LocalFarm)?.Refresh();
        FarmStatusPublisher? publisher = null;
        if (membership is not null && options.Farm.Routes)
        {
            server.Routes = new Routes.RouteManager(server, options.Farm.Keyring(), loggerFactory.CreateLogger("StreamFarm.Routes"));
            if (certificates is not null && farmCa is not null)
            {
                var store = certificates;
                var ca = farmCa;
                server.Routes.ConnectionFactory = new SocketConnectionFactory { Tls = address => store.RouteClientOptions(ca, address) };
            }

            server.Routes.Start();
            server.UseOwnershipTerms(membership!);
        }

        if (membership is not null)
        {
            publisher = new FarmStatusPublisher(server, membership, options.Farm.MembershipOptions.GossipInterval);
            var statusPublisher = publisher;
            server.RejoiningChanged += () => ThreadPool.QueueUserWorkItem(_ => statusPublisher.Publish()); // joining / active at once, not at the next tick
            publisher.Publish();
            membership.Start();
        }

        server.StartSystemSubjects();
        DnsServer? dns = null;
        if (options.DnsListen is not null)
        {
            var dnsEndPoint = IPEndPoint.Parse(options.DnsListen);
            options.Dns.NameServerAddress ??= dnsEndPoint.Address.ToString();
            var responder = new DnsResponder(options.Dns, () => server.Farm.Current);
            try
            {
                dns = new DnsServer(responder, options.Dns, dnsEndPoint, time);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new IOException($"cannot listen for DNS on {options.DnsListen}: {e.Message}", e);
            }

            dns.Start();
        }

        return new StreamFarmNode(kestrel, loggerFactory, server, tcp, http, membership, gossip, publisher, dns)
        {
            Certificates = certificates,
            TlsEndPoint = tlsListen?.IPEndPoint,
            HttpsEndPoint = httpsListen?.IPEndPoint,
        };
    }

    /// <summary>
    /// Graceful stop: stop accepting, tell every client why (BYE SHUTDOWN, or MOVE when the farm has
    /// another server), tell the farm this server is leaving, wait for sessions up to the shutdown
    /// timeout, then close what is left.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        Server.BeginShutdown();

        // The table shows this server leaving at once: the subjects it owns get new owners, and its
        // routes carry its records to them (a handover) before they close.
        _publisher?.Publish();
        Membership?.Leave();
        await Server.WaitForSessionsAsync(Server.Options.ShutdownTimeout);
        if (Server.Routes is not null)
        {
            await Server.Routes.StopAsync(TimeSpan.FromSeconds(1));
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _kestrel.StopAsync(cts.Token);
        if (Membership is not null)
        {
            // Let the departure reach a few more members before the gossip socket closes.
            await Task.Delay(Server.Options.Farm.MembershipOptions.GossipInterval * 3);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (Dns is not null)
        {
            await Dns.DisposeAsync();
        }

        _publisher?.Dispose();
        Membership?.Dispose();
        if (_gossip is not null)
        {
            await _gossip.DisposeAsync();
        }

        await _kestrel.DisposeAsync();
        Certificates?.Dispose();
        Server.Dispose();
        _logging.Dispose(); // last: the console logger writes what is still queued
    }

    /// <summary>A logger factory the node uses but does not own: disposing it does nothing.</summary>
    private sealed class BorrowedLoggerFactory(ILoggerFactory inner) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => inner.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public void Dispose()
        {
        }
    }
}
