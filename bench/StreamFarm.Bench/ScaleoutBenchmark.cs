using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>Settings of <c>./bench.sh scaleout</c>.</summary>
public sealed record ScaleoutSettings
{
    /// <summary>Farm sizes; a fresh farm (and a fresh NATS cluster) for each.</summary>
    public IReadOnlyList<int> Servers { get; init; } = [1, 2, 4];

    /// <summary>Subjects the publishers go round in the spread layout (a multiple of <see cref="Batch"/> and of <see cref="SubscribersPerServer"/>).</summary>
    public int Subjects { get; init; } = 1000;

    /// <summary>Subscriber connections on every server; connection j takes the subjects i with i mod this = j.</summary>
    public int SubscribersPerServer { get; init; } = 10;

    public int PayloadBytes { get; init; } = 128;

    public int Runs { get; init; } = 3;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(4);

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An unreported spread run on every fresh cluster first (JIT, buffers).</summary>
    public TimeSpan Priming { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>spread, hot.</summary>
    public IReadOnlyList<string> Layouts { get; init; } = ["spread", "hot"];

    /// <summary>streamfarm, nats.</summary>
    public IReadOnlyList<string> Systems { get; init; } = ["streamfarm", "nats"];

    /// <summary>Most publications (of all publishers together) ahead of what the subscribers have received.</summary>
    public int Window { get; init; } = 2000;

    /// <summary>Publications per write of each publisher.</summary>
    public int Batch { get; init; } = 100;

    /// <summary>The loopback /24: StreamFarm servers on .1 up, nats-servers on .11 up.</summary>
    public string Prefix { get; init; } = "127.0.84";

    public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public void Validate()
    {
        if (Servers.Count == 0 || Servers.Any(n => n is < 1 or > 9))
        {
            throw new ArgumentException("--servers: farm sizes between 1 and 9");
        }

        if (SubscribersPerServer < 1 || Batch < 1 || Batch % SubscribersPerServer != 0 || Subjects < Batch || Subjects % Batch != 0)
        {
            throw new ArgumentException($"the batch ({Batch}) must be a multiple of --subscribers ({SubscribersPerServer}), and --subjects ({Subjects}) a multiple of the batch, so that every subscriber gets the same share of each write");
        }

        if (Window < Servers.Max() * Batch)
        {
            throw new ArgumentException($"--window must be at least servers × batch ({Servers.Max() * Batch}): one write of every publisher");
        }

        if (PayloadBytes is < 1 or > 8192 || Runs < 1 || Duration <= TimeSpan.Zero || Warmup < TimeSpan.Zero || Priming < TimeSpan.Zero)
        {
            throw new ArgumentException("payload 1-8192 bytes, runs and duration positive, warm-up and priming not negative");
        }

        if (Layouts.Count == 0 || Layouts.Any(l => l is not ("spread" or "hot")))
        {
            throw new ArgumentException("--layouts: spread and hot");
        }

        if (Systems.Count == 0 || Systems.Any(s => s is not ("streamfarm" or "nats")))
        {
            throw new ArgumentException("--systems: streamfarm and nats");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.84");
        }
    }
}

/// <summary>One measured layout on one cluster.</summary>
public sealed record ScaleoutResult
{
    public required ServerKind Server { get; init; }

    public required int Servers { get; init; }

    public required string Layout { get; init; }

    public required int Run { get; init; }

    public double Seconds { get; init; }

    /// <summary>Publications written by all publishers in the interval (the window keeps them within reach of the subscribers).</summary>
    public long Published { get; init; }

    /// <summary>Messages received by all subscribers in the interval.</summary>
    public long Deliveries { get; init; }

    /// <summary>CPU seconds of every server process together.</summary>
    public double ServerCpuSeconds { get; init; }

    /// <summary>Cores each server kept busy (name → cores).</summary>
    public Dictionary<string, double> CoresByServer { get; init; } = [];

    public double BenchCpuSeconds { get; init; }

    public double MachineCpuSeconds { get; init; }

    /// <summary>StreamFarm: the server that owns the hot subject (the one that forwarded none of it), or null.</summary>
    public string? Owner { get; init; }

    /// <summary>StreamFarm: publications the servers passed on to an owner over a route, as a share of those published.</summary>
    public double ForwardedShare { get; init; } = double.NaN;

    public string? Error { get; init; }

    public IReadOnlyList<string> Problems { get; init; } = [];

    public bool Measured => Error is null && Deliveries > 0 && Seconds > 0;

    public double PublishedPerSecond => Published / Seconds;

    public double DeliveriesPerSecond => Deliveries / Seconds;

    public double ServerMicrosPerDelivery => ServerCpuSeconds * 1e6 / Deliveries;

    public double ServerCores => ServerCpuSeconds / Seconds;

    public double BenchCores => BenchCpuSeconds / Seconds;

    public double MachineCores => MachineCpuSeconds / Seconds;

    /// <summary>CPU µs the hot subject's owner spent per publication (the whole farm's publications), or NaN.</summary>
    public double OwnerMicrosPerPublication => Owner is null ? double.NaN : CoresByServer[Owner] * 1e6 / PublishedPerSecond;

    /// <summary>CPU µs each other server spent per publication, on average, or NaN (no owner, or one server).</summary>
    public double OthersMicrosPerPublication => Owner is null || Servers < 2 ? double.NaN : CoresByServer.Where(c => c.Key != Owner).Average(c => c.Value) * 1e6 / PublishedPerSecond;

    /// <summary>The busiest server's cores (the owner's in the hot layout).</summary>
    public double MaxServerCores => CoresByServer.Count == 0 ? double.NaN : CoresByServer.Values.Max();
}

/// <summary>
/// <c>./bench.sh scaleout</c> (issue 16): publishers spread over 1, 2, 4 servers of a farm with
/// routes, next to a nats-server cluster of the same size. On every server: one publisher connection
/// and <see cref="ScaleoutSettings.SubscribersPerServer"/> subscriber connections, subscriber j taking
/// the subjects i with i mod S = j (so each subject has one subscriber on every server: a publication
/// is delivered once per server, whatever the layout). Two layouts on the same connections:
/// <list type="bullet">
/// <item>spread: every publisher goes round all the subjects (writes of consecutive subjects), whose
/// owners the farm spreads over its servers;</item>
/// <item>hot: every publisher publishes to subject 0 only, so every publication goes through its owner.</item>
/// </list>
/// All publishers share one flow window (<see cref="FlowWindow"/>, counted per subscriber): the run
/// measures what the farm sustains, not what it buffers.
/// </summary>
public static class ScaleoutBenchmark
{
    private const int HotSubject = 0;

    /// <summary>Giving up on the subscribers after a run when none has moved for this long (<see cref="Drain"/>).</summary>
    private static readonly TimeSpan DrainStall = TimeSpan.FromSeconds(10);

    /// <summary>The longest a drain may take in all.</summary>
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(180);

    public static async Task<List<ScaleoutResult>> RunAsync(ScaleoutSettings settings, ServerLauncher streamFarm, string? natsServer, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var results = new List<ScaleoutResult>();
        for (var run = 1; run <= settings.Runs; run++)
        {
            foreach (var n in settings.Servers)
            {
                foreach (var system in settings.Systems)
                {
                    var kind = system == "nats" ? ServerKind.Nats : ServerKind.StreamFarm;
                    if (kind == ServerKind.Nats && natsServer is null)
                    {
                        continue;
                    }

                    await using (var cluster = kind == ServerKind.StreamFarm
                        ? await RouteCluster.StartStreamFarmAsync(streamFarm, settings.Prefix, settings.SetupTimeout, cancel, n)
                        : await RouteCluster.StartNatsAsync(natsServer!, settings.Prefix, settings.SetupTimeout, cancel, n))
                    {
                        log($"run {run}, {n} server(s), {kind.Name()}: ready after {cluster.ReadyAfter.TotalSeconds:0.0} s");
                        if (settings.Priming > TimeSpan.Zero)
                        {
                            var prime = await MeasureAsync(cluster, "spread", settings with { Warmup = TimeSpan.Zero, Duration = settings.Priming }, 0, cancel);
                            if (prime.Error is not null || prime.Problems.Count > 0)
                            {
                                log($"  priming went wrong: {prime.Error ?? string.Join("; ", prime.Problems)}");
                            }
                        }

                        foreach (var layout in settings.Layouts)
                        {
                            var result = await MeasureAsync(cluster, layout, settings, run, cancel);
                            results.Add(result);
                            log($"  {layout}: {Describe(result)}");
                        }
                    }

                    await Task.Delay(300, cancel); // the ports are free again before the next cluster
                }
            }
        }

        return results;
    }

    /// <summary>The version nats-server reports, for the report's heading.</summary>
    public static Task<string> NatsVersionAsync(string natsServer, CancellationToken cancel) => NatsFailover.VersionAsync(natsServer, cancel);

    /// <summary>One line for the progress log.</summary>
    public static string Describe(ScaleoutResult r) => r.Error is not null
        ? $"failed: {r.Error}"
        : string.Create(CultureInfo.InvariantCulture,
            $"{r.PublishedPerSecond:N0} pub/s, {r.DeliveriesPerSecond:N0} deliveries/s, servers {r.ServerMicrosPerDelivery:0.00} µs/delivery ({string.Join(" ", r.CoresByServer.Select(c => $"{c.Key} {c.Value:0.00}"))} cores), load generator {r.BenchCores:0.00} cores, machine {r.MachineCores:0.00} cores busy{(r.Owner is null ? "" : $", owner {r.Owner}")}{(double.IsNaN(r.ForwardedShare) ? "" : $", forwarded {r.ForwardedShare:P0}")}{(r.Problems.Count > 0 ? $"; PROBLEMS: {string.Join("; ", r.Problems)}" : "")}");

    private static async Task<ScaleoutResult> MeasureAsync(RouteCluster cluster, string layout, ScaleoutSettings s, int run, CancellationToken cancel)
    {
        var n = cluster.Servers.Count;
        var subscribers = new List<(LoadClient Client, int Share)>();
        var publishers = new List<LoadClient>();
        var problems = new List<string>();
        try
        {
            foreach (var server in cluster.Servers)
            {
                for (var j = 0; j < s.SubscribersPerServer; j++)
                {
                    var sub = await ConnectAsync(cluster.Kind, server, $"sub{j}@{server.Name}", s, cancel);
                    subscribers.Add((sub, j));
                    var share = Enumerable.Range(0, s.Subjects).Where(i => i % s.SubscribersPerServer == j).ToList();
                    await sub.SubscribeManyAsync(share, s.Subjects, s.SetupTimeout, cancel);
                    if (sub is NatsLoadClient nats)
                    {
                        await nats.SubscribeProbeAsync(s.SetupTimeout, cancel);
                    }
                }
            }

            foreach (var server in cluster.Servers)
            {
                publishers.Add(await ConnectAsync(cluster.Kind, server, $"pub@{server.Name}", s, cancel));
            }

            if (cluster.Kind == ServerKind.Nats)
            {
                await WaitForInterestAsync(publishers, subscribers.Select(x => (NatsLoadClient)x.Client).ToList(), s.SetupTimeout, cancel);
            }

            var before = cluster.Kind == ServerKind.StreamFarm ? await cluster.MetricsAsync(cancel) : null;

            // Who must keep up: in the hot layout only the subscribers of the hot subject get anything.
            var hot = layout == "hot";
            var tracked = subscribers.Where(x => !hot || x.Share == HotSubject % s.SubscribersPerServer).Select(x => x.Client).ToList();
            var perRound = hot ? n * s.Batch : n * s.Batch / s.SubscribersPerServer; // what one write of every publisher brings each tracked subscriber
            var window = new FlowWindow(hot ? s.Window : s.Window / s.SubscribersPerServer, perRound);
            window.Attach(tracked);
            var payload = FanoutScenario.Payload(s.PayloadBytes);
            // Each publisher writes a field of its own (v1, v2, ...): on one field, publications from
            // different servers race and the later stamp wins (docs/protocol.md), so some would
            // never be shown and the count of what the subscribers must get would be unknown.
            var writes = publishers.Select((p, k) =>
            {
                var field = "v" + (k + 1).ToString(CultureInfo.InvariantCulture);
                return hot
                    ? [Batch(p, field, Enumerable.Repeat(HotSubject, s.Batch), payload)]
                    : Enumerable.Range(0, s.Subjects / s.Batch).Select(b => Batch(p, field, Enumerable.Range(b * s.Batch, s.Batch), payload)).ToArray();
            }).ToList();

            long published = 0;
            long rounds = 0;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            var publishing = Task.Run(
                async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        try
                        {
                            await window.WaitForRoomAsync(rounds * perRound, s.StallTimeout, stop.Token);
                        }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested)
                        {
                            return;
                        }

                        var r = rounds;
                        await Task.WhenAll(publishers.Select((p, k) => p.WriteAsync(writes[k][(r + (k * writes[k].Length / n)) % writes[k].Length], cancel).AsTask()));
                        rounds++;
                        Interlocked.Add(ref published, n * s.Batch);
                    }
                },
                cancel);

            await FanoutScenario.WhileRunningAsync(publishing, s.Warmup, cancel);
            var start = Snapshot(cluster, subscribers, ref published);
            await FanoutScenario.WhileRunningAsync(publishing, s.Duration, cancel);
            var end = Snapshot(cluster, subscribers, ref published);
            await stop.CancelAsync();
            await publishing;

            // Every tracked subscriber must get all it was sent.
            var expected = rounds * perRound;
            var (_, problem) = await Drain.WaitAsync(tracked, expected, DrainStall, DrainLimit, cancel);
            if (problem is not null)
            {
                problems.Add(problem);
            }

            foreach (var c in subscribers.Select(x => x.Client).Concat(publishers))
            {
                if (c.Failure is not null)
                {
                    problems.Add($"{c.Name}: {c.Failure}");
                }

                if (c.Anomaly is not null)
                {
                    problems.Add($"{c.Name}: {c.Anomaly}");
                }
            }

            string? owner = null;
            var forwardedShare = double.NaN;
            if (before is not null)
            {
                await Task.Delay(100, cancel);
                var after = await cluster.MetricsAsync(cancel);
                var forwarded = cluster.Servers.ToDictionary(x => x.Name, x => after[x.Name].GetValueOrDefault("streamfarm_route_forwarded_total") - before[x.Name].GetValueOrDefault("streamfarm_route_forwarded_total"));
                var dropped = cluster.Servers.Sum(x => after[x.Name].GetValueOrDefault("streamfarm_route_dropped_total") - before[x.Name].GetValueOrDefault("streamfarm_route_dropped_total"));
                var total = Interlocked.Read(ref published);
                forwardedShare = forwarded.Values.Sum() / total;
                if (dropped > 0)
                {
                    problems.Add($"{dropped:0} publication(s) dropped on the way to an owner");
                }

                if (hot)
                {
                    // The owner forwards none of the hot subject's publications; every other server forwards all its publisher's.
                    var owners = forwarded.Where(f => f.Value == 0).Select(f => f.Key).ToList();
                    owner = owners.Count == 1 ? owners[0] : null;
                    if (owner is null || forwarded.Any(f => f.Key != owner && Math.Abs(f.Value - (total / n)) > 0.5))
                    {
                        problems.Add($"hot subject: forwarded {string.Join(", ", forwarded.Select(f => $"{f.Key} {f.Value:0}"))} of {total / n} each: no single owner");
                    }
                }
            }

            if (cluster.Exited() is { } exited)
            {
                problems.Add(exited);
            }

            var ticks = (double)NativeMethods.ClockTicksPerSecond();
            var seconds = end.Time - start.Time;
            return new ScaleoutResult
            {
                Server = cluster.Kind,
                Servers = n,
                Layout = layout,
                Run = run,
                Seconds = seconds,
                Published = end.Published - start.Published,
                Deliveries = end.Received - start.Received,
                ServerCpuSeconds = end.ServerTicks.Zip(start.ServerTicks, (a, b) => a - b).Sum() / ticks,
                CoresByServer = cluster.Servers.Select((x, i) => (x.Name, Cores: (end.ServerTicks[i] - start.ServerTicks[i]) / ticks / seconds)).ToDictionary(x => x.Name, x => x.Cores, StringComparer.Ordinal),
                BenchCpuSeconds = (end.BenchCpu - start.BenchCpu).TotalSeconds,
                MachineCpuSeconds = (end.MachineTicks - start.MachineTicks) / ticks,
                Owner = owner,
                ForwardedShare = forwardedShare,
                Problems = problems.Count > 12 ? [.. problems.Take(11), $"... and {problems.Count - 11} more"] : problems,
            };
        }
        catch (Exception e) when (e is BenchException or IOException or System.Net.Sockets.SocketException or TimeoutException)
        {
            var detail = cluster.Exited() is { } exited ? $"{e.Message} ({exited})" : e.Message;
            return new ScaleoutResult { Server = cluster.Kind, Servers = n, Layout = layout, Run = run, Error = detail };
        }
        finally
        {
            foreach (var c in publishers.Concat(subscribers.Select(x => x.Client)))
            {
                await c.DisposeAsync();
            }

            await Task.Delay(200, cancel); // let the servers close the sessions
        }
    }

    /// <summary>One write: a publication to each of <paramref name="subjects"/>, in order.</summary>
    private static byte[] Batch(LoadClient publisher, string field, IEnumerable<int> subjects, byte[] payload)
    {
        var batch = new List<byte>();
        foreach (var i in subjects)
        {
            batch.AddRange(publisher.EncodePublish(publisher.ManySubject(i), field, payload));
        }

        return [.. batch];
    }

    /// <summary>
    /// NATS: every publisher sends probes until each subscriber has one more from it. A subscriber
    /// subscribed to its subjects before the probe subject, and routes pass interests on in order, so
    /// then every publisher's server knows every subscriber's interests.
    /// </summary>
    private static async Task WaitForInterestAsync(List<LoadClient> publishers, List<NatsLoadClient> subscribers, TimeSpan timeout, CancellationToken cancel)
    {
        foreach (var publisher in publishers)
        {
            var baseline = subscribers.Select(x => x.Probes).ToArray();
            var clock = Stopwatch.StartNew();
            while (subscribers.Where((x, i) => x.Probes == baseline[i]).Any())
            {
                if (clock.Elapsed > timeout)
                {
                    throw new BenchException($"the subscriptions did not reach {publisher.Name} within {timeout.TotalSeconds:0} s");
                }

                await publisher.WriteAsync(NatsLoadClient.ProbeMessage, cancel);
                await Task.Delay(20, cancel);
            }
        }
    }

    private static async Task<LoadClient> ConnectAsync(ServerKind kind, RouteServer server, string name, ScaleoutSettings s, CancellationToken cancel) => kind == ServerKind.Nats
        ? await NatsLoadClient.ConnectAsync(server.Endpoint, name, s.SetupTimeout, cancel)
        : await RttpLoadClient.ConnectAsync(server.Endpoint, name, s.SetupTimeout, cancel);

    private static Sample Snapshot(RouteCluster cluster, List<(LoadClient Client, int Share)> subscribers, ref long published) =>
        new(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, subscribers.Sum(x => x.Client.Received), Interlocked.Read(ref published), cluster.CpuTicks(), Environment.CpuUsage.TotalTime, MachineCpu.BusyTicks());

    /// <summary>The Markdown report: throughput and cost per farm size and layout, StreamFarm next to NATS (medians and ranges over the runs).</summary>
    public static string Report(IReadOnlyList<ScaleoutResult> results, ScaleoutSettings s, string streamFarmName, string natsVersion, string loadAverages)
    {
        var sb = new StringBuilder();
        var runs = results.Count == 0 ? 0 : results.Max(r => r.Run);
        sb.AppendLine(CultureInfo.InvariantCulture, $"## Scale-out: publishers on every server ({streamFarmName} next to nats-server {natsVersion}; median (min–max) over {runs} run(s))");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"On each server one publisher and {s.SubscribersPerServer} subscriber connections (connection j takes subjects i with i mod {s.SubscribersPerServer} = j: one subscriber per subject per server, each publication delivered once per server); {s.Subjects:N0} subjects (spread) or subject 0 only (hot); {s.PayloadBytes} B payload; window {s.Window:N0} publications, {s.Batch} per write; {s.Warmup.TotalSeconds:0.#} s warm-up, {s.Duration.TotalSeconds:0.#} s measured; {Environment.ProcessorCount} cores; load average {loadAverages}.");
        sb.AppendLine();
        sb.AppendLine("| servers | layout | StreamFarm publications/s | deliveries/s | NATS publications/s | deliveries/s | StreamFarm / NATS throughput | StreamFarm server µs per delivery (all servers) | NATS µs per delivery | StreamFarm / NATS CPU | StreamFarm cores per server (busiest) | hot: owner / each other server, µs per publication | load generator cores StreamFarm / NATS | StreamFarm forwarded to an owner |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|");
        foreach (var g in results.Where(r => r.Run > 0).GroupBy(r => (r.Servers, r.Layout)).OrderBy(g => g.Key.Servers).ThenBy(g => g.Key.Layout == "hot"))
        {
            var sf = g.Where(r => r.Server == ServerKind.StreamFarm && r.Measured).ToList();
            var nats = g.Where(r => r.Server == ServerKind.Nats && r.Measured).ToList();
            string F(IEnumerable<ScaleoutResult> rs, Func<ScaleoutResult, double> value, string format) => LatencySummary.MedianRange(rs.Select(value), format);
            string Ratio(Func<ScaleoutResult, double> value) => sf.Count == 0 || nats.Count == 0 ? "—" : (Median(sf.Select(value)) / Median(nats.Select(value))).ToString("0.00", CultureInfo.InvariantCulture) + "×";
            var owners = string.Join("/", sf.Select(r => r.Owner).Where(o => o is not null).Distinct());
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {g.Key.Servers} | {g.Key.Layout} | {F(sf, r => r.PublishedPerSecond, "N0")} | {F(sf, r => r.DeliveriesPerSecond, "N0")} | {F(nats, r => r.PublishedPerSecond, "N0")} | {F(nats, r => r.DeliveriesPerSecond, "N0")} | {Ratio(r => r.PublishedPerSecond)} | {F(sf, r => r.ServerMicrosPerDelivery, "0.00")} | {F(nats, r => r.ServerMicrosPerDelivery, "0.00")} | {Ratio(r => r.ServerMicrosPerDelivery)} | {F(sf, r => r.ServerCores / r.Servers, "0.00")} ({F(sf, r => r.MaxServerCores, "0.00")}{(owners.Length > 0 ? $", owner {owners}" : "")}) | {(g.Key.Layout == "hot" ? $"{F(sf, r => r.OwnerMicrosPerPublication, "0.00")} / {(g.Key.Servers > 1 ? F(sf, r => r.OthersMicrosPerPublication, "0.00") : "—")}" : "")} | {F(sf, r => r.BenchCores, "0.00")} / {F(nats, r => r.BenchCores, "0.00")} | {F(sf, r => r.ForwardedShare * 100, "0")} % |");
        }

        var failed = results.Where(r => r.Error is not null || r.Problems.Count > 0).ToList();
        if (failed.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Problems:");
            foreach (var r in failed)
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"- {r.Server.Name()}, {r.Servers} server(s), {r.Layout}, run {r.Run}: {r.Error ?? string.Join("; ", r.Problems)}");
            }
        }

        return sb.ToString();
    }

    private static double Median(IEnumerable<double> values) => LatencySummary.Percentile([.. values.Order()], 50);

    private readonly record struct Sample(double Time, long Received, long Published, long[] ServerTicks, TimeSpan BenchCpu, long MachineTicks);
}
