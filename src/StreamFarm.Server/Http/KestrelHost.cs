using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace StreamFarm.Server.Http;

/// <summary>
/// Kestrel on its own, without the generic host or WebApplication: the services Kestrel needs (its
/// own registrations, from <c>UseKestrelCore</c>) in a small container whose other services are
/// registered closed, and one request delegate for every HTTP request.
/// </summary>
/// <remarks>
/// The web host's container resolved a few hundred services at start-up, most of them through open
/// generic registrations (<c>ILogger&lt;T&gt;</c>, <c>IOptions&lt;T&gt;</c>, <c>IOptionsMonitor&lt;T&gt;</c>,
/// the option factories and their enumerables). In the native executable each such type is built at
/// run time by the type loader: building and starting the web host allocated 5.3 MB and took about
/// half of the start's CPU (docs/benchmarks.md, "Footprint"). Here the container holds Kestrel's
/// services plus the options and logger factory as ready instances, and routing is the node's own
/// table (<see cref="HttpEndpoints"/>).
/// </remarks>
internal sealed class KestrelHost : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly IServer _server;
    private int _disposed;

    public KestrelHost(ILoggerFactory logging, Action<KestrelServerOptions> configure)
    {
        var kestrel = new KestrelServerOptions();
        var services = new ServiceCollection();
        services.AddSingleton(logging);
        // Kestrel writes its diagnostic events (bad requests, connection events) to the listener the
        // web host registers under this name; nothing listens unless a tool subscribes.
        var diagnostics = new DiagnosticListener("Microsoft.AspNetCore");
        services.AddSingleton(diagnostics);
        services.AddSingleton<DiagnosticSource>(diagnostics);
        services.AddMetrics();
        services.AddSingleton<IOptions<KestrelServerOptions>>(Options.Create(kestrel));
        // Socket completions and the pipes' continuations go to the thread pool directly, not through
        // Kestrel's own I/O queues (IOQueueCount 0): one hand-off less per read and per send. On 2
        // cores, five alternating rounds of `fanout` next to nats-server: 1:1 16 B 0.70x -> 0.83x
        // nats-server's deliveries/s, 1:100 1.15x -> 1.21x (16 B) and 1.06x -> 1.18x (128 B), CPU per
        // delivery level or lower (docs/benchmarks.md, "Kestrel's I/O queues off"). Not measured on
        // machines with many cores.
        services.AddSingleton<IOptions<SocketTransportOptions>>(Options.Create(new SocketTransportOptions { IOQueueCount = 0 }));
        new ServicesOnly(services).UseKestrelCore();
        _services = services.BuildServiceProvider();

        // What KestrelServerOptionsSetup would do (it is not used: the options are an instance).
        kestrel.ApplicationServices = _services;
        configure(kestrel);
        _server = _services.GetRequiredService<IServer>();
    }

    public IServiceProvider Services => _services;

    public Task StartAsync(RequestDelegate app, CancellationToken cancel) =>
        _server.StartAsync(new Application(app, _services), cancel);

    public Task StopAsync(CancellationToken cancel) => _server.StopAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _services.DisposeAsync(); // the server (Kestrel stops what still runs) and the meters
        }
    }

    /// <summary>Each request gets a plain HttpContext over Kestrel's features; its services are the container's (the results' loggers).</summary>
    private sealed class Application(RequestDelegate app, IServiceProvider services) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures) =>
            new DefaultHttpContext(contextFeatures) { RequestServices = services };

        public Task ProcessRequestAsync(HttpContext context) => app(context);

        public void DisposeContext(HttpContext context, Exception? exception) =>
            ((DefaultHttpContext)context).Uninitialize();
    }

    /// <summary>
    /// Lets <c>UseKestrelCore</c> (whose registrations are Kestrel's to choose) add its services to a
    /// plain service collection: it only calls ConfigureServices; no web host is built.
    /// </summary>
    private sealed class ServicesOnly(IServiceCollection services) : IWebHostBuilder
    {
        private readonly Dictionary<string, string?> _settings = new(StringComparer.OrdinalIgnoreCase);

        public IWebHostBuilder ConfigureServices(Action<IServiceCollection> configureServices)
        {
            configureServices(services);
            return this;
        }

        public IWebHostBuilder ConfigureServices(Action<WebHostBuilderContext, IServiceCollection> configureServices) =>
            throw new NotSupportedException("Kestrel's registrations need no web host context here");

        public IWebHostBuilder ConfigureAppConfiguration(Action<WebHostBuilderContext, IConfigurationBuilder> configureDelegate) =>
            throw new NotSupportedException("a node's settings come from its options");

#pragma warning disable ASPDEPR008 // IWebHost: part of the interface, never built here
        public IWebHost Build() => throw new NotSupportedException("no web host is built");
#pragma warning restore ASPDEPR008

        public string? GetSetting(string key) => _settings.GetValueOrDefault(key);

        public IWebHostBuilder UseSetting(string key, string? value)
        {
            _settings[key] = value;
            return this;
        }
    }
}
