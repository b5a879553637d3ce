using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>
/// The servers of the routes benchmark (three; the scale-out benchmark starts 1 to 9), each a real process on its own loopback address and
/// fixed ports (every server has its own address, so all use the same ports):
/// <list type="bullet">
/// <item>StreamFarm: <c>streamfarm node --id rK --listen PREFIX.K --tcp-port 17500 --http-port 17580
/// --gossip-port 17501 --route-port 17502 --seeds (all three) --gossip-key KEY --preset local</c>, ready when every
/// server's <c>/farm</c> shows all three active/alive and its <c>/metrics</c> shows
/// <c>streamfarm_routes_up 2</c>;</item>
/// <item>NATS: <c>nats-server -a PREFIX.1K -p 14322 -m 18322 --cluster_name routes --cluster
/// nats://PREFIX.1K:16322 --routes (the other two)</c>, ready when every server's <c>/routez</c> counts
/// two routes.</item>
/// </list>
/// Stopped with SIGTERM at the end (killed if they do not leave in time).
/// </summary>
internal sealed class RouteCluster : IAsyncDisposable
{
    public const int StreamFarmTcpPort = 17500;
    public const int StreamFarmHttpPort = 17580;
    public const int StreamFarmGossipPort = 17501;
    public const int StreamFarmRoutePort = 17502;
    public const int NatsClientPort = 14322;
    public const int NatsClusterPort = 16322;
    public const int NatsMonitorPort = 18322;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly List<RouteServer> _servers = [];

    private RouteCluster(ServerKind kind)
    {
        Kind = kind;
    }

    public ServerKind Kind { get; }

    public IReadOnlyList<RouteServer> Servers => _servers;

    /// <summary>The command line of each server, for the report (the farm key shown as KEY).</summary>
    public List<string> CommandLines { get; } = [];

    /// <summary>How long the cluster took from the first start to ready.</summary>
    public TimeSpan ReadyAfter { get; private set; }

    /// <summary>Starts a farm of <paramref name="count"/> StreamFarm nodes (three by default) with a fresh random key and waits until it has converged and its routes are up.</summary>
    public static async Task<RouteCluster> StartStreamFarmAsync(ServerLauncher launcher, string prefix, TimeSpan timeout, CancellationToken cancel, int count = 3)
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var ips = Ips(prefix, 1, count);
        var seeds = string.Join(',', ips.Select(ip => $"{ip}:{Num(StreamFarmGossipPort)}"));
        var cluster = new RouteCluster(ServerKind.StreamFarm);
        var clock = Stopwatch.StartNew();
        var servers = ips.Select((ip, i) =>
        {
            var id = "r" + Num(i + 1);
            var args = launcher.Arguments.Concat(
            [
                "node", "--id", id, "--listen", ip, "--tcp-port", Num(StreamFarmTcpPort), "--http-port", Num(StreamFarmHttpPort),
                "--gossip-port", Num(StreamFarmGossipPort), "--route-port", Num(StreamFarmRoutePort), "--seeds", seeds, "--gossip-key", key, "--preset", "local",
                "--farm-name", "route-bench", "--log-level", "Warning",
            ]);
            return (id, launcher.FileName, args, new IPEndPoint(IPAddress.Parse(ip), StreamFarmTcpPort), $"http://{ip}:{Num(StreamFarmHttpPort)}");
        });
        await cluster.StartAsync(servers, key, timeout, cancel);
        cluster.ReadyAfter = clock.Elapsed;
        return cluster;
    }

    /// <summary>
    /// Starts one StreamFarm node alone, without gossip or routes, as the fan-out benchmark runs it
    /// (<c>node --id r1 --listen PREFIX.1 --tcp-port 17500 --http-port 17580 --log-level Warning</c>),
    /// and waits until its <c>/farm</c> shows it active/alive.
    /// </summary>
    public static async Task<RouteCluster> StartSingleStreamFarmAsync(ServerLauncher launcher, string prefix, TimeSpan timeout, CancellationToken cancel)
    {
        var ip = Ips(prefix, 1, 1)[0];
        var cluster = new RouteCluster(ServerKind.StreamFarm);
        var clock = Stopwatch.StartNew();
        var args = launcher.Arguments.Concat(["node", "--id", "r1", "--listen", ip, "--tcp-port", Num(StreamFarmTcpPort), "--http-port", Num(StreamFarmHttpPort), "--log-level", "Warning"]);
        await cluster.StartAsync([("r1", launcher.FileName, args, new IPEndPoint(IPAddress.Parse(ip), StreamFarmTcpPort), $"http://{ip}:{Num(StreamFarmHttpPort)}")], null, timeout, cancel);
        cluster.ReadyAfter = clock.Elapsed;
        return cluster;
    }

    /// <summary>Starts <paramref name="count"/> clustered nats-servers (three by default; every server given the others as routes; one alone has no cluster) and waits until each has a route to every other.</summary>
    public static async Task<RouteCluster> StartNatsAsync(string natsServer, string prefix, TimeSpan timeout, CancellationToken cancel, int count = 3)
    {
        var ips = Ips(prefix, 11, count);
        var cluster = new RouteCluster(ServerKind.Nats);
        var clock = Stopwatch.StartNew();
        var servers = ips.Select((ip, i) =>
        {
            var name = "nats-" + (char)('a' + i);
            IEnumerable<string> args = ips.Length == 1
                ? ["-a", ip, "-p", Num(NatsClientPort), "-m", Num(NatsMonitorPort), "-n", name]
                :
                [
                    "-a", ip, "-p", Num(NatsClientPort), "-m", Num(NatsMonitorPort), "-n", name,
                    "--cluster_name", "routes", "--cluster", $"nats://{ip}:{Num(NatsClusterPort)}",
                    "--routes", string.Join(',', ips.Where(other => other != ip).Select(other => $"nats://{other}:{Num(NatsClusterPort)}")),
                ];
            return (name, natsServer, args, new IPEndPoint(IPAddress.Parse(ip), NatsClientPort), $"http://{ip}:{Num(NatsMonitorPort)}");
        });
        await cluster.StartAsync(servers, null, timeout, cancel);
        cluster.ReadyAfter = clock.Elapsed;
        return cluster;
    }

    /// <summary>The server named <paramref name="name"/>.</summary>
    public RouteServer Server(string name) => _servers.Find(s => s.Name == name) ?? throw new BenchException($"no server {name}");

    /// <summary>Utime + stime ticks of each server so far, in the order of <see cref="Servers"/>.</summary>
    public long[] CpuTicks() => [.. _servers.Select(s => s.Process.CpuTicks())];

    /// <summary>A server that is no longer running, with its last output, or null.</summary>
    public string? Exited()
    {
        var gone = _servers.Find(s => s.Process.HasExited);
        return gone is null ? null : $"{gone.Name} exited: {string.Join(" | ", gone.Process.RecentOutput())}";
    }

    /// <summary>The unlabelled /metrics samples of every StreamFarm server (name → value); an empty table for a server that does not answer.</summary>
    public async Task<Dictionary<string, Dictionary<string, double>>> MetricsAsync(CancellationToken cancel)
    {
        var all = new Dictionary<string, Dictionary<string, double>>(StringComparer.Ordinal);
        foreach (var s in _servers)
        {
            all[s.Name] = await FarmHttp.MetricsAsync(_http, s.HttpBase, cancel) ?? [];
        }

        return all;
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_servers.Select(s => s.Process.DisposeAsync().AsTask()));
        _http.Dispose();
    }

    /// <summary>Starts the servers and waits until they are ready; stops them all if that fails.</summary>
    private async Task StartAsync(IEnumerable<(string Name, string FileName, IEnumerable<string> Args, IPEndPoint Endpoint, string HttpBase)> servers, string? key, TimeSpan timeout, CancellationToken cancel)
    {
        try
        {
            await StartAllAsync(servers, key, cancel);
            await WaitReadyAsync(timeout, cancel);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAllAsync(IEnumerable<(string Name, string FileName, IEnumerable<string> Args, IPEndPoint Endpoint, string HttpBase)> servers, string? key, CancellationToken cancel)
    {
        var list = servers.ToList();
        var starting = list.Select(s => ServerProcess.StartAsync(Kind, s.FileName, s.Args, s.Endpoint, cancel)).ToList();
        try
        {
            await Task.WhenAll(starting);
        }
        catch
        {
            foreach (var t in starting.Where(t => t.IsCompletedSuccessfully))
            {
                await t.Result.DisposeAsync();
            }

            throw;
        }

        for (var i = 0; i < list.Count; i++)
        {
            var process = starting[i].Result;
            _servers.Add(new RouteServer(list[i].Name, process, list[i].Endpoint, list[i].HttpBase));
            CommandLines.Add(key is null ? process.CommandLine : process.CommandLine.Replace(key, "KEY", StringComparison.Ordinal));
        }
    }

    private async Task WaitReadyAsync(TimeSpan timeout, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (Exited() is { } exited)
            {
                throw new BenchException($"{Kind.Name()}: {exited}");
            }

            var missing = await NotReadyAsync(cancel);
            if (missing is null)
            {
                return;
            }

            if (clock.Elapsed > timeout)
            {
                throw new BenchException($"{Kind.Name()}: the servers were not ready within {timeout.TotalSeconds:0} s: {missing}");
            }

            await Task.Delay(50, cancel);
        }
    }

    /// <summary>What is still missing (the first server found lacking), or null when every server is ready.</summary>
    private async Task<string?> NotReadyAsync(CancellationToken cancel)
    {
        foreach (var s in _servers)
        {
            if (Kind == ServerKind.StreamFarm)
            {
                var table = await FarmHttp.TableAsync(_http, s.HttpBase, cancel);
                if (table is null || _servers.Any(o => !table.TryGetValue(o.Name, out var state) || state != "active/alive"))
                {
                    return table is null ? $"{s.Name} does not answer /farm" : $"{s.Name} sees {string.Join(' ', table.Select(t => $"{t.Key}={t.Value}"))}";
                }

                var metrics = await FarmHttp.MetricsAsync(_http, s.HttpBase, cancel);
                if (metrics is null || !metrics.TryGetValue("streamfarm_routes_up", out var up) || up < _servers.Count - 1)
                {
                    return $"{s.Name} has {(metrics?.GetValueOrDefault("streamfarm_routes_up") ?? 0).ToString(CultureInfo.InvariantCulture)} route(s) up";
                }
            }
            else
            {
                var routes = await NatsRoutesAsync(s, cancel);
                if (routes < _servers.Count - 1)
                {
                    return $"{s.Name} has {routes.ToString(CultureInfo.InvariantCulture)} route(s)";
                }
            }
        }

        return null;
    }

    /// <summary>num_routes of a nats-server's /routez, or -1 when it does not answer.</summary>
    private async Task<int> NatsRoutesAsync(RouteServer s, CancellationToken cancel)
    {
        try
        {
            await using var body = await _http.GetStreamAsync(s.HttpBase + "/routez", cancel);
            using var doc = await JsonDocument.ParseAsync(body, cancellationToken: cancel);
            return doc.RootElement.GetProperty("num_routes").GetInt32();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException or KeyNotFoundException or TaskCanceledException && !cancel.IsCancellationRequested)
        {
            return -1;
        }
    }

    private static string[] Ips(string prefix, int first, int count = 3) => [.. Enumerable.Range(first, count).Select(k => $"{prefix}.{Num(k)}")];

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One server of a <see cref="RouteCluster"/>: its name (r1, nats-a), process, client endpoint and HTTP base URL.</summary>
internal sealed record RouteServer(string Name, ServerProcess Process, IPEndPoint Endpoint, string HttpBase);
