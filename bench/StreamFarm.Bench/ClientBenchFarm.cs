using System.Diagnostics;
using System.Globalization;
using System.Net;
using StreamFarm.Client.Discovery;

namespace StreamFarm.Bench;

/// <summary>
/// The farm the client benchmarks run against, as real processes on one /24 of loopback addresses:
/// servers s2..sN+1 on PREFIX.2.., each <c>streamfarm node --id sK --listen PREFIX.K --tcp-port 17400
/// --http-port 0 --gossip-port 17401 --seeds (every server) --gossip-key KEY --preset local</c>, and the
/// DNS system as its own process, <c>streamfarm dns --listen PREFIX.1:15300 --seeds (every server)
/// --gossip-key KEY --preset local</c> (round robin, one address per answer, the defaults). Servers
/// can be killed with SIGKILL and started again; every process is killed at the end.
/// </summary>
internal sealed class ClientBenchFarm : IAsyncDisposable
{
    public const int TcpPort = 17400;
    public const int GossipPort = 17401;
    public const int DnsPort = 15300;
    public const string ServiceName = "stream.farm.test";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Every process of the farm is killed at the end (a drain would only slow the end of a run down), as the benchmarks kill servers.</summary>
    private static readonly ChildProcessOptions KilledAtTheEnd = new() { StopGrace = TimeSpan.Zero };
    private readonly ServerLauncher _launcher;
    private readonly string _key;
    private readonly Action<string> _log;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly Dictionary<string, Node> _nodes = new(StringComparer.Ordinal);
    private readonly string _preset;
    private ChildProcess? _dns;

    public ClientBenchFarm(ServerLauncher launcher, string prefix, int servers, string key, Action<string> log, string preset = "local")
    {
        _launcher = launcher;
        _preset = preset;
        _key = key;
        _log = log;
        Prefix = prefix;
        for (var k = 2; k < servers + 2; k++)
        {
            var id = "s" + k.ToString(CultureInfo.InvariantCulture);
            _nodes[id] = new Node(id, $"{prefix}.{k.ToString(CultureInfo.InvariantCulture)}");
        }

        DnsEndPoint = new IPEndPoint(IPAddress.Parse($"{prefix}.1"), DnsPort);
        Resolver = new DnsServerResolver(DnsEndPoint);
    }

    /// <summary>The first three bytes of every address, for example <c>127.0.7</c>.</summary>
    public string Prefix { get; }

    public IPEndPoint DnsEndPoint { get; }

    /// <summary>One resolver asking the farm's DNS system, shared by every client of a run.</summary>
    public DnsServerResolver Resolver { get; }

    public IReadOnlyList<string> Ids => [.. _nodes.Keys];

    /// <summary>The command lines, for the report (the key shown as KEY).</summary>
    public List<string> CommandLines { get; } = [];

    public string Ip(string id) => _nodes[id].Ip;

    /// <summary>Every process of the farm running now (servers and the DNS system), for <see cref="CpuSample"/>.</summary>
    public IReadOnlyList<(string Name, ChildProcess Process)> Processes =>
        [.. _nodes.Values.Where(n => n.Process is not null).Select(n => (n.Id, n.Process!)), .. _dns is null ? [] : new[] { ("dns", _dns) }];

    /// <summary>The last lines a server printed (its log), for a report or a diagnosis.</summary>
    public string RecentOutput(string id) => _nodes[id].Process?.RecentOutputText() ?? "";

    /// <summary>The id of the server at <paramref name="ip"/>, or null.</summary>
    public string? IdOf(string ip) => _nodes.Values.FirstOrDefault(n => n.Ip == ip)?.Id;

    /// <summary>Starts every server and the DNS system and waits until the farm is whole and DNS hands out every server.</summary>
    public async Task StartAsync(CancellationToken cancel)
    {
        var seeds = string.Join(',', _nodes.Values.Select(n => $"{n.Ip}:{GossipPort.ToString(CultureInfo.InvariantCulture)}"));
        foreach (var node in _nodes.Values)
        {
            StartNode(node);
        }

        var dnsArgs = _launcher.Arguments.Concat(
        [
            "dns", "--listen", $"{DnsEndPoint}", "--seeds", seeds, "--gossip-key", _key, "--gossip-port", GossipPort.ToString(CultureInfo.InvariantCulture),
            "--preset", _preset, "--farm-name", "client-bench", "--id", "dns",
        ]);
        _dns = ChildProcess.Start("dns", _launcher.FileName, dnsArgs, KilledAtTheEnd);
        CommandLines.Add(_dns.CommandLine.Replace(_key, "KEY", StringComparison.Ordinal));
        CommandLines.Add(_nodes.Values.First().Process!.CommandLine.Replace(_key, "KEY", StringComparison.Ordinal));
        foreach (var node in _nodes.Values)
        {
            await WaitStartedAsync(node, cancel);
        }

        await WaitWholeAsync(cancel);
    }

    /// <summary>kill -9 the server <paramref name="id"/>; returns the timestamp (Stopwatch) taken just before the signal.</summary>
    public long Kill(string id)
    {
        var node = _nodes[id];
        var at = Stopwatch.GetTimestamp();
        node.Process!.Signal(NativeMethods.SigKill);
        return at;
    }

    /// <summary>Waits for the killed server's process to be gone and starts it again (same id, addresses and ports).</summary>
    public async Task RestartAsync(string id, CancellationToken cancel)
    {
        var node = _nodes[id];
        if (node.Process is { } old)
        {
            await old.WaitForExitAsync(TimeSpan.FromSeconds(10), cancel);
            await old.DisposeAsync();
        }

        StartNode(node);
        await WaitStartedAsync(node, cancel);
    }

    /// <summary>
    /// Waits until every server's table shows every server active and alive, and DNS has handed out
    /// every server's address (round robin: a few queries see them all).
    /// </summary>
    public async Task WaitWholeAsync(CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (await IsWholeAsync(cancel))
            {
                return;
            }

            if (clock.Elapsed > StartTimeout)
            {
                throw new BenchException($"the farm did not become whole within {StartTimeout.TotalSeconds:0} s: {await DescribeAsync(cancel)}");
            }

            await Task.Delay(50, cancel);
        }
    }

    /// <summary>Users of each server, from its own /metrics (streamfarm_users: sessions past HELLO, counted live); -1 when it cannot answer.</summary>
    public async Task<Dictionary<string, int>> UsersAsync(CancellationToken cancel)
    {
        var users = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in _nodes.Values)
        {
            users[node.Id] = await UsersOfAsync(node, cancel);
        }

        return users;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes.Values)
        {
            if (node.Process is { } p)
            {
                await p.DisposeAsync();
            }
        }

        if (_dns is not null)
        {
            await _dns.DisposeAsync();
        }

        _http.Dispose();
    }

    private void StartNode(Node node)
    {
        var seeds = string.Join(',', _nodes.Values.Select(n => $"{n.Ip}:{GossipPort.ToString(CultureInfo.InvariantCulture)}"));
        node.HttpBase = null;
        var args = _launcher.Arguments.Concat(
        [
            "node", "--id", node.Id, "--listen", node.Ip, "--tcp-port", TcpPort.ToString(CultureInfo.InvariantCulture), "--http-port", "0",
            "--gossip-port", GossipPort.ToString(CultureInfo.InvariantCulture), "--seeds", seeds, "--gossip-key", _key, "--preset", _preset,
            "--farm-name", "client-bench", "--log-level", Environment.GetEnvironmentVariable("STREAMFARM_BENCH_SERVER_LOG") is { Length: > 0 } level ? level : "Warning",
        ]);
        node.Process = ChildProcess.Start(node.Id, _launcher.FileName, args, KilledAtTheEnd with { OnLine = OnLine });

        void OnLine(string line)
        {
            // "  HTTP       http://127.0.7.2:41234  (status page, /farm, /healthz, /metrics)"
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && parts[0] == "HTTP" && parts[1].StartsWith("http://", StringComparison.Ordinal))
            {
                node.HttpBase = parts[1];
            }
        }
    }

    private static async Task WaitStartedAsync(Node node, CancellationToken cancel)
    {
        await node.Process!.WaitUntilListeningAsync(new IPEndPoint(IPAddress.Parse(node.Ip), TcpPort), StartTimeout, cancel);
        var clock = Stopwatch.StartNew();
        while (node.HttpBase is null)
        {
            if (clock.Elapsed > StartTimeout)
            {
                throw new BenchException($"{node.Id} did not print its HTTP address: {node.Process.RecentOutputText()}");
            }

            await Task.Delay(20, cancel);
        }
    }

    private async Task<bool> IsWholeAsync(CancellationToken cancel)
    {
        foreach (var node in _nodes.Values)
        {
            var table = await TableOfAsync(node, cancel);
            if (table is null || _nodes.Keys.Any(id => !table.TryGetValue(id, out var m) || m != "active/alive"))
            {
                return false;
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 4 * _nodes.Count && seen.Count < _nodes.Count; i++)
        {
            try
            {
                foreach (var a in await Resolver.ResolveAsync(ServiceName, cancel))
                {
                    seen.Add(a.ToString());
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return false;
            }
        }

        return _nodes.Values.All(n => seen.Contains(n.Ip));
    }

    private async Task<string> DescribeAsync(CancellationToken cancel)
    {
        var parts = new List<string>();
        foreach (var node in _nodes.Values)
        {
            var table = await TableOfAsync(node, cancel);
            parts.Add(table is null
                ? $"{node.Id}: no answer ({node.Process?.RecentOutputText()})"
                : $"{node.Id} sees {string.Join(' ', table.Select(t => $"{t.Key}={t.Value}"))}");
        }

        return string.Join("; ", parts);
    }

    /// <summary>A server's table from /farm: id → state/liveness; null when it cannot answer.</summary>
    private async Task<Dictionary<string, string>?> TableOfAsync(Node node, CancellationToken cancel) =>
        node.HttpBase is { } baseUrl ? await FarmHttp.TableAsync(_http, baseUrl, cancel) : null;

    /// <summary>The unlabelled samples of a server's /metrics; null when it cannot answer.</summary>
    public Task<Dictionary<string, double>?> MetricsAsync(string id, CancellationToken cancel) =>
        _nodes[id].HttpBase is { } baseUrl ? FarmHttp.MetricsAsync(_http, baseUrl, cancel) : Task.FromResult<Dictionary<string, double>?>(null);

    private async Task<int> UsersOfAsync(Node node, CancellationToken cancel) =>
        node.HttpBase is { } baseUrl && await FarmHttp.MetricsAsync(_http, baseUrl, cancel) is { } metrics && metrics.TryGetValue("streamfarm_users", out var users) ? (int)users : -1;

    private sealed class Node(string id, string ip)
    {
        public string Id { get; } = id;

        public string Ip { get; } = ip;

        public ChildProcess? Process { get; set; }

        public volatile string? HttpBase;
    }
}
