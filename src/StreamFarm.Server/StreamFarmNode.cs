using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StreamFarm.Server.Http;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server;

/// <summary>
/// One running server: Kestrel with a raw-TCP RTTP listener and an HTTP listener (status, /farm,
/// /healthz, /metrics, WebSocket RTTP), around an <see cref="RttpServer"/>.
/// </summary>
public sealed class StreamFarmNode : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _stopped;

    private StreamFarmNode(WebApplication app, RttpServer server, IPEndPoint tcp, IPEndPoint http)
    {
        _app = app;
        Server = server;
        TcpEndPoint = tcp;
        HttpEndPoint = http;
    }

    public RttpServer Server { get; }

    public IPEndPoint TcpEndPoint { get; }

    public IPEndPoint HttpEndPoint { get; }

    public static async Task<StreamFarmNode> StartAsync(ServerOptions options, Action<ILoggingBuilder>? logging = null, TimeProvider? time = null, CancellationToken cancel = default)
    {
        options.Validate();
        time ??= TimeProvider.System;
        var ip = IPAddress.Parse(options.Listen);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning); // Kestrel's start-up lines would call the RTTP port http://
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton<RttpServer>();
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = options.ShutdownTimeout + TimeSpan.FromSeconds(2));
        ListenOptions? tcpListen = null;
        ListenOptions? httpListen = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxConcurrentConnections = null; // RTTP counts its own connections (ERR FULL)
            k.Listen(ip, options.TcpPort, lo =>
            {
                tcpListen = lo;
                lo.UseConnectionHandler<RttpConnectionHandler>();
            });
            k.Listen(ip, options.HttpPort, lo => httpListen = lo);
        });
        var app = builder.Build();
        var server = app.Services.GetRequiredService<RttpServer>();
        HttpEndpoints.Map(app, server, new ServerMetrics(server).Registry);
        app.Lifetime.ApplicationStopping.Register(server.BeginShutdown);
        await app.StartAsync(cancel);

        var tcp = tcpListen!.IPEndPoint!;
        var http = httpListen!.IPEndPoint!;
        var host = options.AdvertiseHost ?? options.Listen;
        server.Addresses = ($"{host}:{tcp.Port}", $"ws://{host}:{http.Port}/rttp", $"http://{host}:{http.Port}");
        (server.Farm as Farm.LocalFarm)?.Refresh();
        return new StreamFarmNode(app, server, tcp, http);
    }

    /// <summary>
    /// Graceful stop: stop accepting, tell every client why (BYE SHUTDOWN or MOVE), wait for sessions
    /// up to the shutdown timeout, then close what is left.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        Server.BeginShutdown();
        await Server.WaitForSessionsAsync(Server.Options.ShutdownTimeout);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        Server.Dispose();
    }
}
