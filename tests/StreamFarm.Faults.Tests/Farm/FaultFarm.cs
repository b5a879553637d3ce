using System.Diagnostics;
using System.Globalization;
using StreamFarm.Protocol;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>
/// A farm of <c>streamfarm node</c> processes on one test's own network (by default its loopback
/// subnet, server s<i>n</i> on <c>subnet.(n+1)</c>; or namespaces standing in for hosts, see
/// <see cref="IFarmNetwork"/>), default ports since every server has its own address, and the
/// faults the scenarios inject: kill -9 and restart with the same id and address, SIGSTOP /
/// SIGCONT, drain, a graceful restart on another build (an upgrade). Each server runs this build or
/// an earlier one's <c>streamfarm.dll</c>. Every event goes on the timeline with its time since the
/// start. Dispose kills every process.
/// </summary>
internal sealed class FaultFarm : IAsyncDisposable
{
    public const int RttpPort = 7400;
    public const int HttpPort = 7480;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(60, 32).Select(i => (byte)i).ToArray());
    private readonly Dictionary<string, NodeProcess?> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _lives = new(StringComparer.Ordinal);
    private readonly HashSet<string> _stopped = new(StringComparer.Ordinal);
    private readonly List<string> _timeline = [];
    private readonly List<(string Server, DateTime At)> _kills = [];

    /// <summary>When each server was killed (kill -9).</summary>
    public IReadOnlyList<(string Server, DateTime At)> Kills => [.. _kills];

    private readonly List<PartitionSpan> _partitions = [];
    private readonly CancellationTokenSource _closing = new();

    /// <summary>
    /// When the farm was split by a partition: from the cut until every running server's table
    /// showed every running server alive again, with every route up (measured by polling
    /// <c>/farm</c> and <c>/metrics</c> after the heal). Until then each side's owners sequence their
    /// own histories (protocol.md 4a), so the heal itself is not the end: after a long partition the
    /// two sides take some seconds to find each other. A split that never closed before the next cut
    /// lasts until that cut; one never seen whole lasts to the end.
    /// </summary>
    public IReadOnlyList<(DateTime From, DateTime Until)> Partitions
    {
        get
        {
            lock (_partitions)
            {
                return [.. _partitions.Select((p, i) => (p.From, p.Whole ?? (i + 1 < _partitions.Count ? _partitions[i + 1].From : DateTime.MaxValue)))];
            }
        }
    }

    public void PartitionStarted()
    {
        lock (_partitions)
        {
            _partitions.Add(new PartitionSpan(DateTime.UtcNow));
        }
    }

    public void PartitionHealed()
    {
        PartitionSpan span;
        lock (_partitions)
        {
            if (_partitions.Count == 0 || _partitions[^1].Healed is not null)
            {
                return;
            }

            span = _partitions[^1];
            span.Healed = DateTime.UtcNow;
        }

        _ = WatchWholeAsync(span);
    }

    /// <summary>Polls, after a heal, until the farm is one again; notes when (or that it was not, within a minute).</summary>
    private async Task WatchWholeAsync(PartitionSpan span)
    {
        using var http = Network.Observer(TimeSpan.FromSeconds(2));
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!_closing.IsCancellationRequested && DateTime.UtcNow < deadline)
        {
            lock (_partitions)
            {
                if (_partitions[^1] != span)
                {
                    return; // cut again before it was whole: the split runs on to that cut
                }
            }

            if (await IsWholeAsync(http))
            {
                span.Whole = DateTime.UtcNow;
                Note($"farm whole again: every server sees every other alive, routes up ({(span.Whole.Value - span.Healed!.Value).TotalSeconds:0.0} s after the heal)");
                return;
            }

            try
            {
                await Task.Delay(200, _closing.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<bool> IsWholeAsync(HttpClient http)
    {
        var running = Ids.Where(IsRunning).ToList();
        try
        {
            foreach (var id in running)
            {
                var table = System.Text.Json.JsonSerializer.Deserialize<ServerJson[]>(await http.GetStringAsync($"http://{Address(id)}:{HttpPort}/farm", _closing.Token)) ?? [];
                if (!running.All(r => table.Any(m => m.Id == r && m.Liveness == "alive")))
                {
                    return false;
                }

                if (!await RoutesUpAsync(http, id, running.Count - 1, _closing.Token))
                {
                    return false;
                }
            }

            return true;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
        {
            return false;
        }
    }

    private sealed class PartitionSpan(DateTime from)
    {
        public DateTime From { get; } = from;

        public DateTime? Healed { get; set; }

        public DateTime? Whole { get; set; }
    }

    private readonly Dictionary<string, string> _builds = new(StringComparer.Ordinal);

    private FaultFarm(IFarmNetwork network, int count, string preset, string logDir, DateTime start, Func<string, string?>? buildOf)
    {
        Network = network;
        Preset = preset;
        LogDir = logDir;
        Start = start;
        Ids = [.. Enumerable.Range(1, count).Select(n => $"s{n}")];
        foreach (var id in Ids)
        {
            _builds[id] = buildOf?.Invoke(id) ?? NodeProcess.ThisBuild;
        }
    }

    /// <summary>The build a server runs, for the timeline: "this build", or the directory (commit) of another.</summary>
    public string BuildOf(string id)
    {
        if (_builds[id] == NodeProcess.ThisBuild)
        {
            return "this build";
        }

        var commit = Path.GetFileName(Path.GetDirectoryName(_builds[id]))!;
        return $"build {commit[..Math.Min(7, commit.Length)]}";
    }

    public IFarmNetwork Network { get; }

    public string Preset { get; }

    public string LogDir { get; }

    public DateTime Start { get; }

    public IReadOnlyList<string> Ids { get; }

    /// <summary>Servers drained: they refuse new clients until the end.</summary>
    public HashSet<string> Drained { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<(string Id, string Host)> Servers => [.. Ids.Select(id => (id, Address(id)))];

    public string Address(string id) => Network.Address(id);

    public bool IsRunning(string id) => _nodes[id] is { HasExited: false } && !_stopped.Contains(id);

    public IReadOnlyList<string> Timeline()
    {
        lock (_timeline)
        {
            return [.. _timeline];
        }
    }

    public void Note(string text)
    {
        lock (_timeline)
        {
            _timeline.Add(string.Create(CultureInfo.InvariantCulture, $"+{(DateTime.UtcNow - Start).TotalSeconds:0.000}s {text}"));
        }
    }

    /// <summary>The subjects of the scenario, for the timeline's notes on owners.</summary>
    public IReadOnlyList<string> Subjects { get; set; } = [];

    private string Owns(string id) => $"{OwnedBy(id, Subjects).Count} of {Subjects.Count} subjects while all are up";

    /// <summary>The subjects a server owns while every server of the farm is up.</summary>
    public IReadOnlyList<string> OwnedBy(string id, IEnumerable<string> subjects)
    {
        var owners = new Ownership(Ids);
        return [.. subjects.Where(s => owners.OwnerOf(s) == id)];
    }

    public static async Task<FaultFarm> StartAsync(IFarmNetwork network, int count, string preset, string logDir, DateTime start, Func<string, string?>? buildOf = null)
    {
        var farm = new FaultFarm(network, count, preset, logDir, start, buildOf);
        try
        {
            foreach (var id in farm.Ids)
            {
                await farm.LaunchAsync(id);
            }

            await farm.WaitRoutesUpAsync();
            farm.Note($"farm of {count} up ({preset}): {string.Join(", ", farm.Servers.Select(s => $"{s.Id}={s.Host} ({farm.BuildOf(s.Id)})"))}");
            return farm;
        }
        catch
        {
            await farm.DisposeAsync();
            throw;
        }
    }

    /// <summary>Polls until every running server has a route up to every other running server.</summary>
    public async Task WaitRoutesUpAsync()
    {
        using var http = Network.Observer(TimeSpan.FromSeconds(2));
        var running = Ids.Where(IsRunning).ToList();
        await Poll.UntilAsync(async () =>
        {
            foreach (var id in running)
            {
                if (!await RoutesUpAsync(http, id, running.Count - 1, CancellationToken.None))
                {
                    return false;
                }
            }

            return true;
        }, "every server has its routes up", Patience);
    }

    /// <summary>Whether the server's <c>/metrics</c> count <paramref name="routes"/> routes up.</summary>
    private async Task<bool> RoutesUpAsync(HttpClient http, string id, int routes, CancellationToken cancel) =>
        (await http.GetStringAsync($"http://{Address(id)}:{HttpPort}/metrics", cancel)).Contains($"\nstreamfarm_routes_up {routes}\n", StringComparison.Ordinal);

    public async Task Kill9Async(string id)
    {
        var node = _nodes[id] ?? throw new InvalidOperationException($"{id} is not running");
        _kills.Add((id, DateTime.UtcNow));
        node.Signal(9);
        await node.WaitForExitAsync(Patience);
        await node.DisposeAsync();
        _nodes[id] = null;
        _stopped.Remove(id);
        Note($"kill -9 {id} (the owner of {Owns(id)})");
    }

    /// <summary>Starts the server again with the same id, address and options.</summary>
    public async Task RestartAsync(string id)
    {
        await LaunchAsync(id);
        Note($"restarted {id}");
    }

    public void Freeze(string id)
    {
        _nodes[id]!.Signal(19);
        _stopped.Add(id);
        Note($"SIGSTOP {id} (the owner of {Owns(id)})");
    }

    public void Thaw(string id)
    {
        _nodes[id]!.Signal(18);
        _stopped.Remove(id);
        Note($"SIGCONT {id}");
    }

    /// <summary>Drains a server with the operator's command (<c>streamfarm drain --http ip:port --spread s</c>).</summary>
    public async Task DrainAsync(string id, int spreadSeconds)
    {
        var info = Network.OnHost(id, ["drain", "--http", $"{Address(id)}:{HttpPort}", "--spread", spreadSeconds.ToString(CultureInfo.InvariantCulture)]);
        info.RedirectStandardInput = false;
        using var p = Process.Start(info)!;
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Drained.Add(id);
        Note($"drain {id} (the owner of {Owns(id)}) --spread {spreadSeconds}: exit {p.ExitCode}: {output.Trim()}");
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"streamfarm drain {id} failed: {output}");
        }
    }

    /// <summary>
    /// Stops a server gracefully (SIGTERM: its clients are moved, its subjects handed over) and
    /// starts it again with the same id and address on <paramref name="dll"/>: one step of a rolling upgrade.
    /// </summary>
    public async Task RestartOnBuildAsync(string id, string dll)
    {
        var node = _nodes[id] ?? throw new InvalidOperationException($"{id} is not running");
        var before = BuildOf(id);
        node.Signal(15);
        await node.WaitForExitAsync(Patience);
        var graceful = node.HasExited;
        await node.DisposeAsync();
        _nodes[id] = null;
        Note($"SIGTERM {id} ({before}, the owner of {Owns(id)}): {(graceful ? "stopped" : "did not stop in time, killed")}");
        _builds[id] = dll;
        Drained.Remove(id);
        await LaunchAsync(id);
        Note($"restarted {id} on {BuildOf(id)}");
    }

    /// <summary>Undoes every fault still in place: continues frozen servers, starts killed ones.</summary>
    public async Task HealAsync()
    {
        foreach (var id in _stopped.ToList())
        {
            Thaw(id);
        }

        foreach (var id in Ids.Where(id => _nodes[id] is null or { HasExited: true }).ToList())
        {
            await RestartAsync(id);
        }
    }

    private async Task LaunchAsync(string id)
    {
        var seeds = string.Join(',', Ids.Take(2).Select(s => $"{Address(s)}:7401"));
        string[] args =
        [
            "node", "--id", id, "--listen", Address(id), "--seeds", seeds, "--gossip-key", Key,
            "--preset", Preset, "--farm-name", Network.FarmName, .. Network.NodeOptions(id),
        ];

        // A kill -9'd server's ports are free again at once (the kernel closes its sockets); a few
        // tries cover a slow start on a loaded machine.
        for (var attempt = 1; ; attempt++)
        {
            _lives[id] = _lives.GetValueOrDefault(id) + 1;
            var node = NodeProcess.Start(Network.OnHost(id, args, _builds[id]), Path.Combine(LogDir, $"{id}.log"));
            if (await node.WaitReadyAsync(Patience))
            {
                _nodes[id] = node;
                return;
            }

            await node.DisposeAsync();
            if (attempt == 3)
            {
                throw new InvalidOperationException($"{id} did not start; see {LogDir}/{id}.log");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _closing.CancelAsync();
        foreach (var node in _nodes.Values)
        {
            if (node is not null)
            {
                await node.DisposeAsync();
            }
        }

        _nodes.Clear();
    }
}
