using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>Settings of <c>./bench.sh tls</c>.</summary>
public sealed record TlsBenchSettings
{
    /// <summary>Concurrent clients making handshakes, each connect → TLS → greeting → close in a loop.</summary>
    public int Workers { get; init; } = 8;

    /// <summary>Seconds of handshakes measured per run.</summary>
    public double Seconds { get; init; } = 5;

    /// <summary>Idle TLS connections opened (greeted) to measure the server's memory per connection.</summary>
    public int IdleConnections { get; init; } = 2000;

    public int Runs { get; init; } = 3;

    /// <summary>Seconds of unmeasured handshakes first: a fresh .NET process still compiles its hot paths (tiered JIT) for several seconds.</summary>
    public double WarmupSeconds { get; init; } = 10;

    /// <summary>The loopback /24: StreamFarm on .1, nats-server on .2.</summary>
    public string Prefix { get; init; } = "127.0.57";
}

/// <summary>One run of one server.</summary>
public sealed record TlsBenchRun(ServerKind Kind, int Run, long Handshakes, double Seconds, double ServerCpuSeconds, double ClientCpuSeconds, long RssBeforeKiB, long RssAfterKiB, int Idle)
{
    public double PerSecond => Handshakes / Seconds;

    public double ServerCpuMicrosPerHandshake => ServerCpuSeconds * 1e6 / Math.Max(1, Handshakes);

    public double KiBPerIdleConnection => (RssAfterKiB - RssBeforeKiB) / (double)Math.Max(1, Idle);
}

/// <summary>
/// TLS next to nats-server, the same certificate (ECDSA P-256, from <c>streamfarm cert</c>) for both:
/// full handshakes per second (connect, TLS 1.3 handshake, the protocol's greeting: HELLO/WELCOME,
/// or INFO/CONNECT/PING/PONG, close) with the server's CPU per handshake, and the server's memory per
/// idle TLS connection (RSS after opening them, less before). StreamFarm speaks TLS from the first
/// byte on its TLS port; nats-server 2.9 sends INFO in clear and then upgrades, as its clients do.
/// </summary>
public static class TlsBenchmark
{
    public static async Task<List<TlsBenchRun>> RunAsync(TlsBenchSettings s, ServerLauncher launcher, string natsServer, TextWriter progress, CancellationToken cancel)
    {
        var sfIp = IPAddress.Parse(s.Prefix + ".1");
        var natsIp = IPAddress.Parse(s.Prefix + ".2");
        var tls = await BenchTls.CreateAsync(launcher, [sfIp, natsIp], cancel);
        var cert = tls.CertFile;
        var key = tls.KeyFile;
        var dir = Path.GetDirectoryName(cert)!;
        var natsConf = Path.Combine(dir, "nats.conf");
        var natsPort = ServerProcess.FreePort(natsIp);
        File.WriteAllText(natsConf, $"listen: \"{natsIp}:{natsPort}\"\ntls {{\n  cert_file: \"{cert}\"\n  key_file: \"{key}\"\n  timeout: 5\n}}\n");

        var runs = new List<TlsBenchRun>();
        for (var run = 1; run <= s.Runs; run++)
        {
            foreach (var kind in new[] { ServerKind.Nats, ServerKind.StreamFarm })
            {
                ServerProcess server;
                if (kind == ServerKind.StreamFarm)
                {
                    var tlsPort = ServerProcess.FreePort(sfIp);
                    server = await ServerProcess.StartAsync(kind, launcher.FileName,
                    [
                        .. launcher.Arguments, "node", "--id", "t1", "--listen", sfIp.ToString(), "--tcp-port", Num(ServerProcess.FreePort(sfIp)), "--http-port", Num(ServerProcess.FreePort(sfIp)),
                        "--tls-cert", cert, "--tls-key", key, "--tls-port", Num(tlsPort), "--https-port", Num(ServerProcess.FreePort(sfIp)), "--log-level", "Warning",
                    ], new IPEndPoint(sfIp, tlsPort), cancel);
                }
                else
                {
                    server = await ServerProcess.StartAsync(kind, natsServer, ["-c", natsConf], new IPEndPoint(natsIp, natsPort), cancel);
                }

                await using (server)
                {
                    var result = await MeasureAsync(kind, run, server, tls, s, cancel);
                    runs.Add(result);
                    progress.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{kind.Name()} run {run}: {result.PerSecond:N0} handshakes/s, {result.ServerCpuMicrosPerHandshake:0} µs server CPU each, {result.KiBPerIdleConnection:0.0} KiB per idle connection"));
                    await server.StopAsync();
                }
            }
        }

        return runs;
    }

    private static async Task<TlsBenchRun> MeasureAsync(ServerKind kind, int run, ServerProcess server, BenchTls tls, TlsBenchSettings s, CancellationToken cancel)
    {
        // Warm-up (the same for both): a fresh .NET server is still JIT-compiling its hot paths for
        // several seconds (measured: 13.6 % of its CPU in the first seconds of a handshake storm,
        // 1.1 % once warm); the measured run is the steady state.
        await HandshakeLoopAsync(kind, server.Endpoint, tls, s.Workers, TimeSpan.FromSeconds(s.WarmupSeconds), cancel);
        var cpu0 = server.CpuTicks();
        var client0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var count = await HandshakeLoopAsync(kind, server.Endpoint, tls, s.Workers, TimeSpan.FromSeconds(s.Seconds), cancel);
        var elapsed = sw.Elapsed.TotalSeconds;
        var serverCpu = (server.CpuTicks() - cpu0) / (double)NativeMethods.ClockTicksPerSecond();
        var clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - client0).TotalSeconds;

        await Task.Delay(1000, cancel);
        var before = server.RssKiB();
        var idle = new List<Stream>();
        try
        {
            for (var i = 0; i < s.IdleConnections; i++)
            {
                idle.Add(await OpenAsync(kind, server.Endpoint, tls, cancel));
            }

            await Task.Delay(2000, cancel); // let the server settle (buffers, its own timers)
            var after = server.RssKiB();
            return new TlsBenchRun(kind, run, count, elapsed, serverCpu, clientCpu, before, after, idle.Count);
        }
        finally
        {
            foreach (var c in idle)
            {
                await c.DisposeAsync();
            }
        }
    }

    private static async Task<long> HandshakeLoopAsync(ServerKind kind, IPEndPoint endpoint, BenchTls tls, int workers, TimeSpan duration, CancellationToken cancel)
    {
        long count = 0;
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
        {
            while (Stopwatch.GetTimestamp() < end)
            {
                await using var stream = await OpenAsync(kind, endpoint, tls, cancel);
                Interlocked.Increment(ref count);
            }
        }));
        return count;
    }

    /// <summary>Connects, completes the TLS handshake (the certificate checked against the bench CA) and the protocol's greeting.</summary>
    private static async Task<Stream> OpenAsync(ServerKind kind, IPEndPoint endpoint, BenchTls tls, CancellationToken cancel)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint, cancel);
        var stream = await tls.AuthenticateAsync(socket, endpoint, natsInfoFirst: kind == ServerKind.Nats, cancel);
        if (kind == ServerKind.Nats)
        {
            await stream.WriteAsync("CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":true}\r\nPING\r\n"u8.ToArray(), cancel);
            await BenchTls.ReadLineAsync(stream, "PONG", cancel);
        }
        else
        {
            await stream.WriteAsync("HELLO 1 client=bench-tls\n"u8.ToArray(), cancel);
            await BenchTls.ReadLineAsync(stream, "WELCOME", cancel);
        }

        return stream;
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>The Markdown report: every run, then the medians' ratios StreamFarm / NATS.</summary>
    public static string Report(IReadOnlyList<TlsBenchRun> runs, TlsBenchSettings s)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"TLS benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores. {s.Workers} clients making handshakes for {s.Seconds} s per run after {s.WarmupSeconds} s of warm-up, then {s.IdleConnections} idle TLS connections; {s.Runs} run(s) per server, alternating.");
        sb.AppendLine();
        sb.AppendLine("| server | run | handshakes/s | server CPU µs per handshake | load generator CPU s | RSS before (KiB) | RSS with idle connections (KiB) | KiB per idle TLS connection |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in runs)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Kind.Name()} | {r.Run} | {r.PerSecond:N0} | {r.ServerCpuMicrosPerHandshake:0} | {r.ClientCpuSeconds:0.0} | {r.RssBeforeKiB:N0} | {r.RssAfterKiB:N0} | {r.KiBPerIdleConnection:0.0} |");
        }

        static double Median(IEnumerable<double> xs) => LatencySummary.Percentile([.. xs.Order()], 50);

        var sf = runs.Where(r => r.Kind == ServerKind.StreamFarm).ToList();
        var nats = runs.Where(r => r.Kind == ServerKind.Nats).ToList();
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"StreamFarm / NATS (medians): handshakes/s **{Median(sf.Select(r => r.PerSecond)) / Median(nats.Select(r => r.PerSecond)):0.00}×**, server CPU per handshake **{Median(sf.Select(r => r.ServerCpuMicrosPerHandshake)) / Median(nats.Select(r => r.ServerCpuMicrosPerHandshake)):0.00}×**, memory per idle TLS connection **{Median(sf.Select(r => r.KiBPerIdleConnection)) / Median(nats.Select(r => r.KiBPerIdleConnection)):0.00}×**.");
        return sb.ToString();
    }
}
