using System.Globalization;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>Settings of <c>./bench.sh subscribers</c>.</summary>
public sealed record SubscribersSettings
{
    /// <summary>Subscriber connections on the one subject (one publisher each time).</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [1, 10, 100, 1_000, 10_000];

    /// <summary>Runs; each starts both servers afresh and alternates which goes first.</summary>
    public int Runs { get; init; } = 3;

    /// <summary>Deliveries per second in the latency pass, over all subscribers: the publisher sends budget / subscribers messages a second.</summary>
    public int Budget { get; init; } = 20_000;

    /// <summary>A fixed publication rate for the latency pass at every size instead of the budget, or null.</summary>
    public int? Rate { get; init; }

    /// <summary>Payload bytes per message (the latency pass adds its counter and stamp).</summary>
    public int PayloadBytes { get; init; } = 16;

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The measured interval of each pass.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>An unreported 1:10 run right after each server starts (JIT, buffers).</summary>
    public TimeSpan Priming { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Which systems: streamfarm, nats.</summary>
    public IReadOnlyList<string> Systems { get; init; } = ["streamfarm", "nats"];

    /// <summary>The loopback /24: StreamFarm on .1, nats-server on .11.</summary>
    public string Prefix { get; init; } = "127.0.82";

    /// <summary>Publications per second of the latency pass with <paramref name="subscribers"/> subscribers.</summary>
    public int RateFor(int subscribers) => Rate ?? Math.Max(1, Budget / subscribers);

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        // Each subscriber is a socket of this process: 10,000 stay under the open-file limit of 20,000.
        if (Sizes.Count == 0 || Sizes.Any(n => n is < 1 or > 10_000))
        {
            throw new ArgumentException("sizes must be between 1 and 10000 subscribers");
        }

        if (Runs < 1 || Budget < 1 || Rate is < 1 or > 1_000_000 || Sizes.Any(n => RateFor(n) > 1_000_000))
        {
            throw new ArgumentException("--runs and --budget must be positive, and the rate between 1 and 1,000,000 messages per second");
        }

        if (PayloadBytes is < 1 or > 8192)
        {
            throw new ArgumentException("the payload size must be between 1 and 8192 bytes");
        }

        if (Duration <= TimeSpan.Zero || Warmup < TimeSpan.Zero || Priming < TimeSpan.Zero)
        {
            throw new ArgumentException("the duration must be positive, the warm-up and priming not negative");
        }

        if (Systems.Count == 0 || Systems.Any(s => s is not ("streamfarm" or "nats")))
        {
            throw new ArgumentException("systems are streamfarm and nats");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.82");
        }
    }
}

/// <summary>One system at one size in one run: the routes benchmark's one-server scenario (latency pass at the rate, then throughput pass).</summary>
public sealed record SubscribersRow(int Run, int Subscribers, ServerKind System, int Rate, RouteResult Result);

/// <summary>
/// How cost grows with the subscribers of one subject (issue 16): one publisher, one subject, N
/// subscriber connections on one server, StreamFarm (a node alone, as in the fan-out benchmark)
/// next to nats-server, both running through a run and taking turns at each size (the first of
/// the pair alternates from run to run). Each turn is the routes benchmark's scenario on one
/// server (<see cref="RouteScenario"/>) on one set of connections:
/// <list type="number">
/// <item>latency pass: stamped messages at <see cref="SubscribersSettings.RateFor"/> (a fixed budget
/// of deliveries per second, the same for both systems), the latency of every delivery to every
/// subscriber of a message stamped in the measured interval;</item>
/// <item>throughput pass: as <c>./bench.sh fanout</c> (batches of 100, never more than 1,000
/// messages ahead of the slowest subscriber): deliveries per second and server CPU per delivery.</item>
/// </list>
/// The subscribers are the raw-socket load clients (<see cref="LoadClient"/>): each reads with an
/// asynchronous loop, so the 10,000 sockets share the runtime's epoll thread and the thread pool.
/// </summary>
public static class SubscribersBenchmark
{
    public static async Task<SubscribersReport> RunAsync(SubscribersSettings settings, ServerLauncher streamFarm, string? natsServer, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new SubscribersReport(settings, DateTimeOffset.UtcNow, natsServer is null ? "not used" : await NatsFailover.VersionAsync(natsServer, cancel));
        var kinds = settings.Systems.Select(s => s == "nats" ? ServerKind.Nats : ServerKind.StreamFarm).ToList();
        for (var run = 1; run <= settings.Runs; run++)
        {
            var clusters = new Dictionary<ServerKind, RouteCluster>();
            try
            {
                foreach (var kind in kinds)
                {
                    var cluster = kind == ServerKind.StreamFarm
                        ? await RouteCluster.StartSingleStreamFarmAsync(streamFarm, settings.Prefix, TimeSpan.FromSeconds(30), cancel)
                        : await RouteCluster.StartNatsAsync(natsServer!, settings.Prefix, TimeSpan.FromSeconds(30), cancel, 1);
                    clusters[kind] = cluster;
                    if (run == 1)
                    {
                        report.Commands.AddRange(cluster.CommandLines);
                    }

                    log($"run {run}: {kind.Name()} pid {cluster.Servers[0].Process.Pid} on {cluster.Servers[0].Endpoint}");
                    await PrimeAsync(cluster, settings, report, log, cancel);
                }

                var order = run % 2 == 1 ? kinds : [.. Enumerable.Reverse(kinds)];
                foreach (var n in settings.Sizes)
                {
                    foreach (var kind in order)
                    {
                        var rate = settings.RateFor(n);
                        log($"run {run}: {kind.Name()}, 1:{n:N0}, latency pass at {rate:N0} msgs/s, then throughput ...");
                        var result = await Scenario(clusters[kind], n, rate, settings).RunAsync(cancel);
                        var row = new SubscribersRow(run, n, kind, rate, result);
                        report.Rows.Add(row);
                        log($"  {SubscribersReport.Describe(row)}");
                        await Task.Delay(n >= 1000 ? 1000 : 200, cancel); // let the server close the sessions
                    }
                }
            }
            catch (BenchException e)
            {
                report.Notes.Add($"run {run}: {e.Message}");
                log($"run {run}: {e.Message}");
            }
            finally
            {
                foreach (var c in clusters.Values)
                {
                    await c.DisposeAsync();
                }
            }
        }

        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static RouteScenario Scenario(RouteCluster cluster, int subscribers, int rate, SubscribersSettings s)
    {
        var server = cluster.Servers[0];
        var settings = new RouteSettings
        {
            Subscribers = subscribers,
            PayloadBytes = s.PayloadBytes,
            Warmup = s.Warmup,
            Duration = s.Duration,
            Priming = TimeSpan.Zero,
            Rate = rate,
            Systems = s.Systems,
            Prefix = s.Prefix,
        };
        return new RouteScenario(cluster, RouteLayout.OneHop, $"publisher and {subscribers:N0} subscriber(s) on {server.Name}", server, [server], settings);
    }

    private static async Task PrimeAsync(RouteCluster cluster, SubscribersSettings settings, SubscribersReport report, Action<string> log, CancellationToken cancel)
    {
        if (settings.Priming <= TimeSpan.Zero)
        {
            return;
        }

        var half = settings.Priming / 2;
        var prime = await Scenario(cluster, 10, 1000, settings with { Warmup = TimeSpan.Zero, Duration = half }).RunAsync(cancel);
        if (prime.Error is not null || prime.Problems.Count > 0)
        {
            report.Notes.Add($"{cluster.Kind.Name()}: the priming run went wrong: {prime.Error ?? string.Join("; ", prime.Problems)}");
            log($"{cluster.Kind.Name()}: the priming run went wrong");
        }

        await Task.Delay(200, cancel);
    }
}

/// <summary>What <c>./bench.sh subscribers</c> found: a row per run, size and system; the tables give median (range) over the runs.</summary>
public sealed class SubscribersReport(SubscribersSettings settings, DateTimeOffset started, string natsVersion)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public SubscribersSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string NatsVersion { get; } = natsVersion;

    public string LoadAverages { get; set; } = LoadAverage.Now();

    public List<SubscribersRow> Rows { get; } = [];

    public List<string> Notes { get; } = [];

    public List<string> Commands { get; } = [];

    public bool Clean => Rows.Count > 0 && Notes.Count == 0 && Rows.All(r => r.Result.Measured && r.Result.Problems.Count == 0);

    public static string Describe(SubscribersRow row)
    {
        var r = row.Result;
        if (r.Error is not null)
        {
            return $"failed: {r.Error}";
        }

        var l = r.Latency!;
        var t = r.Throughput!;
        var problems = r.Problems.Count > 0 ? $"; problems: {string.Join("; ", r.Problems)}" : "";
        return string.Create(Inv, $"latency {l.Count:N0} deliveries, µs p50 {l.Median:0} p90 {l.P90:0} p99 {l.P99:0} p99.9 {l.P999:0} max {l.Max:0}, load generator {r.AtRate!.BenchCores:0.00} cores; throughput {t.DeliveriesPerSecond:N0}/s, server {t.ServerCpuMicrosPerDelivery:0.000} µs/delivery, load generator {t.BenchCores:0.00} cores, drained in {r.ThroughputDrain?.TotalSeconds ?? 0:0.0} s{problems}");
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        var s = Settings;
        var budget = s.Rate is { } rate ? $"a fixed {rate:N0} msgs/s" : $"a budget of {s.Budget:N0} deliveries/s (msgs/s = budget / subscribers)";
        sb.AppendLine(Inv, $"# Subscribers per subject, {Started:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine();
        sb.AppendLine(Inv, $"One publisher, one subject, N subscriber connections on one server; {s.PayloadBytes}-byte payload; {s.Runs} run(s), systems taking turns at each size; warm-up {s.Warmup.TotalSeconds:0.#} s and {s.Duration.TotalSeconds:0.#} s measured per pass; latency pass at {budget}; nats-server {NatsVersion}; load average {LoadAverages}. Median (min–max) over the runs; ratios are StreamFarm / NATS per run (paired), then their median (min–max).");
        sb.AppendLine();
        sb.AppendLine("## Throughput (flow window of 1,000 messages, as `./bench.sh fanout`)");
        sb.AppendLine();
        sb.AppendLine("| subscribers | StreamFarm deliveries/s | NATS deliveries/s | ratio | StreamFarm server µs/delivery | NATS server µs/delivery | ratio | load generator cores, StreamFarm / NATS |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var n in s.Sizes)
        {
            sb.AppendLine(Inv, $"| {n:N0} | {Cell(n, ServerKind.StreamFarm, r => r.Throughput?.DeliveriesPerSecond, "N0")} | {Cell(n, ServerKind.Nats, r => r.Throughput?.DeliveriesPerSecond, "N0")} | {Ratio(n, r => r.Throughput?.DeliveriesPerSecond)} | {Cell(n, ServerKind.StreamFarm, r => r.Throughput?.ServerCpuMicrosPerDelivery, "0.000")} | {Cell(n, ServerKind.Nats, r => r.Throughput?.ServerCpuMicrosPerDelivery, "0.000")} | {Ratio(n, r => r.Throughput?.ServerCpuMicrosPerDelivery)} | {Median(n, ServerKind.StreamFarm, r => r.Throughput?.BenchCores)} / {Median(n, ServerKind.Nats, r => r.Throughput?.BenchCores)} |");
        }

        sb.AppendLine();
        sb.AppendLine("## Publish → deliver latency at the fixed rate, every delivery to every subscriber, µs");
        sb.AppendLine();
        sb.AppendLine("| subscribers | msgs/s | system | deliveries timed per run | p50 | p90 | p99 | p99.9 | max | server µs/delivery | server cores | load generator cores |");
        sb.AppendLine("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var n in s.Sizes)
        {
            foreach (var kind in new[] { ServerKind.StreamFarm, ServerKind.Nats })
            {
                if (!Rows.Any(r => r.Subscribers == n && r.System == kind))
                {
                    continue;
                }

                sb.AppendLine(Inv, $"| {n:N0} | {s.RateFor(n):N0} | {kind.Name()} | {Median(n, kind, r => (double?)r.Latency?.Count, "N0")} | {Cell(n, kind, r => r.Latency?.Median, "N0")} | {Cell(n, kind, r => r.Latency?.P90, "N0")} | {Cell(n, kind, r => r.Latency?.P99, "N0")} | {Cell(n, kind, r => r.Latency?.P999, "N0")} | {Cell(n, kind, r => r.Latency?.Max, "N0")} | {Cell(n, kind, r => r.AtRate?.ServerCpuMicrosPerDelivery, "0.00")} | {Median(n, kind, r => r.AtRate?.ServerCores)} | {Median(n, kind, r => r.AtRate?.BenchCores)} |");
            }

            sb.AppendLine(Inv, $"| {n:N0} | | ratio | | {Ratio(n, r => r.Latency?.Median)} | {Ratio(n, r => r.Latency?.P90)} | {Ratio(n, r => r.Latency?.P99)} | {Ratio(n, r => r.Latency?.P999)} | {Ratio(n, r => r.Latency?.Max)} | {Ratio(n, r => r.AtRate?.ServerCpuMicrosPerDelivery)} | | |");
        }

        var others = Rows.Where(r => r.Result.Measured).Select(r => (r, Other: Math.Max(r.Result.AtRate!.OtherCores, r.Result.Throughput!.OtherCores))).Where(x => x.Other > 0.15).ToList();
        var problems = Rows.Where(r => r.Result.Error is not null || r.Result.Problems.Count > 0).ToList();
        if (Notes.Count > 0 || problems.Count > 0 || others.Count > 0)
        {
            sb.AppendLine();
            foreach (var note in Notes)
            {
                sb.AppendLine(Inv, $"- {note}");
            }

            foreach (var r in problems)
            {
                sb.AppendLine(Inv, $"- run {r.Run}, {r.System.Name()} 1:{r.Subscribers:N0}: {r.Result.Error ?? string.Join("; ", r.Result.Problems)}");
            }

            foreach (var (r, other) in others)
            {
                sb.AppendLine(Inv, $"- run {r.Run}, {r.System.Name()} 1:{r.Subscribers:N0}: {other:0.00} cores busy with neither the server nor the load generator (disturbed?)");
            }
        }

        sb.AppendLine();
        sb.AppendLine("Servers:");
        sb.AppendLine();
        foreach (var c in Commands)
        {
            sb.AppendLine(Inv, $"    {c}");
        }

        return sb.ToString();
    }

    private List<double> Values(int n, ServerKind kind, Func<RouteResult, double?> value) =>
        [.. Rows.Where(r => r.Subscribers == n && r.System == kind && r.Result.Measured).Select(r => value(r.Result)).OfType<double>().Where(double.IsFinite).Order()];

    private string Cell(int n, ServerKind kind, Func<RouteResult, double?> value, string format) => MedianRange(Values(n, kind, value), format);

    private string Median(int n, ServerKind kind, Func<RouteResult, double?> value, string format = "0.00")
    {
        var values = Values(n, kind, value);
        return values.Count == 0 ? "–" : LatencySummary.Percentile(values, 50).ToString(format, Inv);
    }

    /// <summary>StreamFarm / NATS in each run that measured both, then median (range).</summary>
    private string Ratio(int n, Func<RouteResult, double?> value)
    {
        var ratios = new List<double>();
        foreach (var run in Rows.Where(r => r.Subscribers == n).GroupBy(r => r.Run))
        {
            var sf = run.FirstOrDefault(r => r.System == ServerKind.StreamFarm && r.Result.Measured);
            var nats = run.FirstOrDefault(r => r.System == ServerKind.Nats && r.Result.Measured);
            if (sf is not null && nats is not null && value(sf.Result) is { } a && value(nats.Result) is { } b && b > 0)
            {
                ratios.Add(a / b);
            }
        }

        ratios.Sort();
        return MedianRange(ratios, "0.00");
    }

    private static string MedianRange(List<double> sorted, string format)
    {
        if (sorted.Count == 0)
        {
            return "–";
        }

        var median = LatencySummary.Percentile(sorted, 50).ToString(format, Inv);
        return sorted.Count == 1 ? median : $"{median} ({sorted[0].ToString(format, Inv)}–{sorted[^1].ToString(format, Inv)})";
    }
}
