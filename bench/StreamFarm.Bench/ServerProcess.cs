using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Bench;

/// <summary>
/// A server under test (<see cref="ChildProcess"/>) on its own loopback address and free ports:
/// started, probed until it accepts TCP connections (or a caller's probe answers), asked for its CPU
/// time and memory, and stopped with SIGTERM (then killed if it does not leave within 10 s).
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);
    private readonly ChildProcess _process;

    private ServerProcess(ServerKind kind, ChildProcess process, IPEndPoint endpoint, TimeSpan startedIn)
    {
        Kind = kind;
        _process = process;
        Endpoint = endpoint;
        StartedIn = startedIn;
    }

    public ServerKind Kind { get; }

    /// <summary>Where clients connect (RTTP over TCP, or the NATS client port).</summary>
    public IPEndPoint Endpoint { get; }

    public int Pid => _process.Pid;

    public string CommandLine => _process.CommandLine;

    public bool HasExited => _process.HasExited;

    /// <summary>From the start of the process to its first successful readiness probe.</summary>
    public TimeSpan StartedIn { get; }

    /// <summary>Utime + stime clock ticks the server has used so far (ticks per second: <see cref="NativeMethods.ClockTicksPerSecond"/>).</summary>
    public long CpuTicks() => _process.CpuTicks();

    /// <summary>Its resident set size in KiB.</summary>
    public long RssKiB() => _process.RssKiB();

    /// <summary>The last lines the server wrote on stdout and stderr (for error reports).</summary>
    public IReadOnlyList<string> RecentOutput() => _process.RecentOutput();

    /// <summary>Starts a StreamFarm node: <c>{launcher} node --id b1 --listen IP --tcp-port P --http-port Q --log-level Warning</c>.</summary>
    /// <remarks>With <paramref name="tls"/>, also its TLS port with that certificate, which is then the endpoint clients use.</remarks>
    public static Task<ServerProcess> StartStreamFarmAsync(ServerLauncher launcher, IPAddress ip, CancellationToken cancel, BenchTls? tls = null)
    {
        var tcp = FreePort(ip);
        var http = FreePort(ip);
        List<string> args = [.. launcher.Arguments, "node", "--id", "b1", "--listen", ip.ToString(), "--tcp-port", Num(tcp), "--http-port", Num(http), "--log-level", "Warning"];
        var endpoint = new IPEndPoint(ip, tcp);
        if (tls is not null)
        {
            endpoint = new IPEndPoint(ip, FreePort(ip));
            args.AddRange(["--tls-cert", tls.CertFile, "--tls-key", tls.KeyFile, "--tls-port", Num(endpoint.Port), "--https-port", Num(FreePort(ip))]);
        }

        return StartAsync(ServerKind.StreamFarm, launcher.FileName, args, endpoint, cancel);
    }

    /// <summary>Starts nats-server with its defaults on IP and a free client port (with <paramref name="tls"/>: TLS required there, that certificate).</summary>
    public static Task<ServerProcess> StartNatsAsync(string natsServer, IPAddress ip, CancellationToken cancel, BenchTls? tls = null)
    {
        var port = FreePort(ip);
        if (tls is null)
        {
            return StartAsync(ServerKind.Nats, natsServer, ["-a", ip.ToString(), "-p", Num(port)], new IPEndPoint(ip, port), cancel);
        }

        var conf = Path.Combine(Path.GetDirectoryName(tls.CertFile)!, $"nats-{ip}-{Num(port)}.conf");
        File.WriteAllText(conf, $"listen: \"{ip}:{Num(port)}\"\ntls {{\n  cert_file: \"{tls.CertFile}\"\n  key_file: \"{tls.KeyFile}\"\n  timeout: 5\n}}\n");
        return StartAsync(ServerKind.Nats, natsServer, ["-c", conf], new IPEndPoint(ip, port), cancel);
    }

    /// <summary>
    /// Starts <paramref name="fileName"/> with <paramref name="args"/> (a farm member, a clustered
    /// nats-server) and returns once <paramref name="endpoint"/> accepts TCP connections.
    /// </summary>
    /// <remarks>
    /// With <paramref name="ready"/>, readiness is that probe answering true (polled every 2 ms, for
    /// start-up timing), not the endpoint accepting TCP connections (polled every 20 ms).
    /// </remarks>
    public static async Task<ServerProcess> StartAsync(ServerKind kind, string fileName, IEnumerable<string> args, IPEndPoint endpoint, CancellationToken cancel,
        Func<CancellationToken, Task<bool>>? ready = null)
    {
        var process = ChildProcess.Start(kind.Name(), fileName, args, new ChildProcessOptions { StopGrace = StopGrace });
        try
        {
            var startedIn = ready is null
                ? await process.WaitUntilListeningAsync(endpoint, StartTimeout, cancel)
                : await process.WaitUntilReadyAsync(ready, "ready", StartTimeout, TimeSpan.FromMilliseconds(2), cancel);
            return new ServerProcess(kind, process, endpoint, startedIn);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>Asks the server to stop (SIGTERM) and waits; kills it if it is still there after 10 s.</summary>
    public Task StopAsync() => _process.StopAsync(StopGrace);

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    /// <summary>A port nobody listens on at the moment (the OS picks it; a tiny race is accepted).</summary>
    public static int FreePort(IPAddress ip)
    {
        var listener = new TcpListener(ip, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}

/// <summary>How to run the StreamFarm server: a program and the arguments before <c>node ...</c> (for example <c>dotnet streamfarm.dll</c>).</summary>
public sealed record ServerLauncher(string FileName, IReadOnlyList<string> Arguments);
