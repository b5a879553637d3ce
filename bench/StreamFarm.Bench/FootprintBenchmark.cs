using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>Settings of <c>./bench.sh footprint</c>.</summary>
public sealed record FootprintSettings
{
    /// <summary>Idle subscribed connections opened to measure memory per connection.</summary>
    public int IdleConnections { get; init; } = 2000;

    /// <summary>Seconds a freshly started server is left alone before its RSS at rest is read.</summary>
    public double RestSeconds { get; init; } = 5;

    public int Runs { get; init; } = 5;

    /// <summary>The loopback /24: each server of a round on its own address (.1, .2, ...).</summary>
    public string Prefix { get; init; } = "127.0.58";
}

/// <summary>A server of the footprint benchmark: how to start it and what it can be asked.</summary>
/// <param name="Name">As shown in the report: "StreamFarm (native)", "nats-server", ...</param>
/// <param name="FileName">The program.</param>
/// <param name="Arguments">Its arguments before the ones the benchmark adds.</param>
/// <param name="Kind">StreamFarm, NATS or serf: what the benchmark adds and how it probes.</param>
public sealed record FootprintServer(string Name, string FileName, IReadOnlyList<string> Arguments, FootprintKind Kind);

public enum FootprintKind
{
    StreamFarm,
    Nats,
    Serf,
}

/// <summary>One start of one server.</summary>
public sealed record FootprintRun(string Server, int Run, double StartMillis, long RestKiB, long? IdleKiB, int Idle)
{
    /// <summary>RSS added per idle subscribed connection, or null for servers without client connections (serf).</summary>
    public double? KiBPerConnection => IdleKiB is { } idle ? (idle - RestKiB) / (double)Math.Max(1, Idle) : null;
}

/// <summary>
/// What a server costs before it does any work, next to nats-server and serf: the time from exec to
/// ready (StreamFarm: <c>/healthz</c> answers 200; nats-server: its monitoring <c>/healthz</c> answers
/// 200; serf: its RPC port accepts a connection), the RSS at rest a few seconds later, and the RSS
/// added by idle subscribed connections (StreamFarm: HELLO and a SUB answered with the subject's
/// image; NATS: CONNECT, SUB and PING answered with PONG). Servers alternate within each run, and
/// each start is a fresh process on a fresh address, so page cache is warm for all alike.
/// </summary>
public static class FootprintBenchmark
{
    private const string Subject = "/footprint/idle";

    public static async Task<List<FootprintRun>> RunAsync(FootprintSettings s, IReadOnlyList<FootprintServer> servers, TextWriter progress, CancellationToken cancel)
    {
        var runs = new List<FootprintRun>();
        for (var run = 1; run <= s.Runs; run++)
        {
            for (var i = 0; i < servers.Count; i++)
            {
                var index = (i + run) % servers.Count; // a different one goes first each run
                var server = servers[index];
                var ip = IPAddress.Parse($"{s.Prefix}.{(index + 1).ToString(CultureInfo.InvariantCulture)}");
                var result = await MeasureAsync(server, run, ip, s, cancel);
                runs.Add(result);
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{server.Name} run {run}: ready after {result.StartMillis:0.0} ms, {result.RestKiB / 1024.0:0.0} MiB at rest{(result.KiBPerConnection is { } k ? $", {k:0.0} KiB per idle subscribed connection" : "")}"));
            }
        }

        return runs;
    }

    private static async Task<FootprintRun> MeasureAsync(FootprintServer server, int run, IPAddress ip, FootprintSettings s, CancellationToken cancel)
    {
        var port = ServerProcess.FreePort(ip);
        var probePort = ServerProcess.FreePort(ip);
        var endpoint = new IPEndPoint(ip, port);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        var (args, kind, ready) = server.Kind switch
        {
            FootprintKind.StreamFarm => (
                server.Arguments.Concat(["node", "--id", "f1", "--listen", ip.ToString(), "--tcp-port", Num(port), "--http-port", Num(probePort), "--log-level", "Warning"]),
                ServerKind.StreamFarm,
                HealthzProbe(http, $"http://{ip}:{Num(probePort)}/healthz")),
            FootprintKind.Nats => (
                server.Arguments.Concat(["-a", ip.ToString(), "-p", Num(port), "-m", Num(probePort)]),
                ServerKind.Nats,
                HealthzProbe(http, $"http://{ip}:{Num(probePort)}/healthz")),
            _ => (
                server.Arguments.Concat(["agent", "-node=f1", $"-bind={ip}:{Num(port)}", $"-rpc-addr={ip}:{Num(probePort)}", "-log-level=warn"]),
                ServerKind.Nats, // serf: only its process is used (start and RSS)
                ChildProcess.AcceptsConnections(new IPEndPoint(ip, probePort))),
        };

        await using var process = await ServerProcess.StartAsync(kind, server.FileName, args, endpoint, cancel, ready);
        var startMillis = process.StartedIn.TotalMilliseconds;
        var memory = new ConnectionMemory(process);
        await memory.AtRestAsync(TimeSpan.FromSeconds(s.RestSeconds), cancel);
        if (server.Kind != FootprintKind.Serf)
        {
            var sockets = new List<Socket>(s.IdleConnections);
            try
            {
                if (server.Kind == FootprintKind.StreamFarm)
                {
                    // The subject has a value, so every SUB is answered with its image.
                    using var publisher = await ConnectAsync(endpoint, "HELLO 1 client=footprint-pub\nPUB " + Subject + " v=1\nPING\n", "PONG", cancel);
                }

                for (var i = 0; i < s.IdleConnections; i++)
                {
                    sockets.Add(server.Kind == FootprintKind.StreamFarm
                        ? await ConnectAsync(endpoint, $"HELLO 1 client=idle{Num(i)}\nSUB {Subject}\n", "IMAGE", cancel)
                        : await ConnectAsync(endpoint, "CONNECT {\"verbose\":false}\r\nSUB footprint.idle 1\r\nPING\r\n", "PONG", cancel));
                }

                await memory.SubscribedAsync(s.IdleConnections, cancel);
            }
            finally
            {
                foreach (var socket in sockets)
                {
                    socket.Dispose();
                }
            }
        }

        await process.StopAsync();
        return new FootprintRun(server.Name, run, startMillis, memory.RestKiB, memory.SubscribedKiB, s.IdleConnections);
    }

    private static Func<CancellationToken, Task<bool>> HealthzProbe(HttpClient http, string url) => async cancel =>
    {
        try
        {
            using var response = await http.GetAsync(url, cancel);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancel.IsCancellationRequested)
        {
            return false;
        }
    };

    /// <summary>Connects, sends <paramref name="greeting"/> and reads until <paramref name="until"/> arrived: the connection is set up and subscribed.</summary>
    private static async Task<Socket> ConnectAsync(IPEndPoint endpoint, string greeting, string until, CancellationToken cancel)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancel);
            await socket.SendAsync(Encoding.ASCII.GetBytes(greeting), cancel);
            var seen = new StringBuilder();
            var buffer = new byte[4096];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            while (!seen.ToString().Contains(until, StringComparison.Ordinal))
            {
                var n = await socket.ReceiveAsync(buffer, timeout.Token);
                if (n == 0)
                {
                    throw new BenchException($"{endpoint} closed the connection before '{until}': {seen}");
                }

                seen.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static string Report(IReadOnlyList<FootprintRun> runs, FootprintSettings s)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"## Footprint: start, RSS at rest, RSS per idle subscribed connection ({s.Runs} runs, {s.IdleConnections:N0} connections, rest {s.RestSeconds:0} s)");
        sb.AppendLine();
        sb.AppendLine("| server | start to ready, ms: median (min–max) | RSS at rest, MiB: median (min–max) | KiB per idle subscribed connection: median (min–max) |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var group in runs.GroupBy(r => r.Server))
        {
            var start = group.Select(r => r.StartMillis).ToList();
            var rest = group.Select(r => r.RestKiB / 1024.0).ToList();
            var perConnection = group.Where(r => r.KiBPerConnection is not null).Select(r => r.KiBPerConnection!.Value).ToList();
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {group.Key} | {Summary(start, "0.0")} | {Summary(rest, "0.0")} | {(perConnection.Count > 0 ? Summary(perConnection, "0.0") : "–")} |");
        }

        return sb.ToString();
    }

    private static string Summary(List<double> values, string format) =>
        string.Create(CultureInfo.InvariantCulture, $"{LatencySummary.Percentile([.. values.Order()], 50).ToString(format, CultureInfo.InvariantCulture)} ({values.Min().ToString(format, CultureInfo.InvariantCulture)}–{values.Max().ToString(format, CultureInfo.InvariantCulture)})");

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
