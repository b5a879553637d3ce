using System.Globalization;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// <c>./bench.sh latency</c>: publish → deliver latency (p50, p90, p99, max) of one publisher
/// and one subscriber at fixed rates, by where they sit relative to the subject's owner:
/// <list type="bullet">
/// <item>same server: publisher and subscriber on the owner A;</item>
/// <item>one hop: publisher on the owner A (where a <c>FarmClient</c> with one hop sends a
/// subject's publications), subscriber on B: A's route carries each update to B;</item>
/// <item>worst case: publisher on B, subscriber on C (two servers that are not the owner): B forwards
/// to A, A passes the update to C;</item>
/// </list>
/// next to a single nats-server (publisher and subscriber on it) and a cluster of two (publisher on
/// one, subscriber on the other). StreamFarm runs as three real node processes (the routes
/// benchmark's <see cref="RouteCluster"/>), the clients are its raw-socket load clients, and each run
/// is the routes benchmark's latency run (<see cref="RouteScenario"/>): stamped messages at the rate,
/// every delivery inside the measured interval counted.
/// </summary>
public static class LatencyBenchmark
{
    /// <summary>Runs every system and rate; the report lists each scenario at each rate.</summary>
    public static async Task<LatencyReport> RunAsync(RouteSettings settings, IReadOnlyList<int> rates, ServerLauncher streamFarm, string? natsServer, Action<string> log, CancellationToken cancel)
    {
        var report = new LatencyReport(settings, rates, DateTimeOffset.UtcNow, natsServer is null ? "not used" : await NatsFailover.VersionAsync(natsServer, cancel));
        foreach (var system in settings.Systems)
        {
            if (system == "nats" && natsServer is null)
            {
                report.Notes.Add("nats-server was not found: the NATS side was skipped (scripts/setup.sh --bench installs it)");
                continue;
            }

            try
            {
                if (system == "nats")
                {
                    await RunNatsAsync(settings, rates, natsServer!, 1, report, log, cancel);
                    await Task.Delay(500, cancel);
                    await RunNatsAsync(settings, rates, natsServer!, 2, report, log, cancel);
                }
                else
                {
                    await RunStreamFarmAsync(settings, rates, streamFarm, report, log, cancel);
                }
            }
            catch (BenchException e)
            {
                report.Notes.Add($"{system}: {e.Message}");
                log($"{system}: {e.Message}");
            }

            await Task.Delay(500, cancel);
        }

        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static async Task RunStreamFarmAsync(RouteSettings settings, IReadOnlyList<int> rates, ServerLauncher launcher, LatencyReport report, Action<string> log, CancellationToken cancel)
    {
        log($"StreamFarm: starting three servers on {settings.Prefix}.1-3");
        await using var cluster = await RouteCluster.StartStreamFarmAsync(launcher, settings.Prefix, settings.SetupTimeout, cancel);
        report.Commands.AddRange(cluster.CommandLines);
        var (a, evidence) = await RouteBenchmark.FindOwnerAsync(cluster, settings, cancel);
        report.Notes.Add($"StreamFarm: {RttpLoadClient.BenchSubject} is owned by {a.Name} ({evidence})");
        var others = cluster.Servers.Where(s => s != a).ToList();
        var (b, c) = (others[0], others[1]);
        log($"StreamFarm: owner {a.Name}; B = {b.Name}, C = {c.Name}");
        await RunAsync(cluster, "StreamFarm", settings, rates, report,
        [
            ("same server", $"publisher and subscriber on {a.Name} (owner)", RouteLayout.OneHop, a, a),
            ("one hop", $"publisher on {a.Name} (owner) → route → subscriber on {b.Name}", RouteLayout.TwoHops, a, b),
            ("worst case", $"publisher on {b.Name} → route → {a.Name} (owner) → route → subscriber on {c.Name}", RouteLayout.ThreeHops, b, c),
        ], log, cancel);
    }

    private static async Task RunNatsAsync(RouteSettings settings, IReadOnlyList<int> rates, string natsServer, int count, LatencyReport report, Action<string> log, CancellationToken cancel)
    {
        log($"NATS: starting {count} server(s) on {settings.Prefix}.11{(count > 1 ? "-" + (10 + count).ToString(CultureInfo.InvariantCulture) : "")}");
        await using var cluster = await RouteCluster.StartNatsAsync(natsServer, settings.Prefix, settings.SetupTimeout, cancel, count);
        report.Commands.AddRange(cluster.CommandLines);
        var first = cluster.Servers[0];
        (string, string, RouteLayout, RouteServer, RouteServer) scenario = count == 1
            ? ("single server", $"publisher and subscriber on {first.Name}", RouteLayout.OneHop, first, first)
            : ("cluster of 2", $"publisher on {first.Name} → route → subscriber on {cluster.Servers[1].Name}", RouteLayout.TwoHops, first, cluster.Servers[1]);
        await RunAsync(cluster, "NATS", settings, rates, report, [scenario], log, cancel);
    }

    private static async Task RunAsync(RouteCluster cluster, string system, RouteSettings settings, IReadOnlyList<int> rates, LatencyReport report, IReadOnlyList<(string Name, string Path, RouteLayout Layout, RouteServer Publisher, RouteServer Subscriber)> scenarios, Action<string> log, CancellationToken cancel)
    {
        if (settings.Priming > TimeSpan.Zero)
        {
            var last = scenarios[^1];
            var priming = settings with { Warmup = TimeSpan.Zero, Duration = settings.Priming, Rate = rates.Max() };
            log($"{system}: priming with an unreported {settings.Priming.TotalSeconds:0.#} s run");
            await new RouteScenario(cluster, last.Layout, last.Path, last.Publisher, [last.Subscriber], priming).RunAsync(cancel);
            await Task.Delay(200, cancel);
        }

        foreach (var rate in rates)
        {
            foreach (var s in scenarios)
            {
                log($"{system}: {s.Name} at {rate:N0} msgs/s: {s.Path} ...");
                var result = await new RouteScenario(cluster, s.Layout, s.Path, s.Publisher, [s.Subscriber], settings with { Rate = rate }).RunAsync(cancel);
                var row = new LatencyRow(system, s.Name, s.Path, rate, result);
                report.Rows.Add(row);
                log($"  {LatencyReport.Describe(row)}");
                await Task.Delay(200, cancel);
            }
        }
    }
}

/// <summary>One scenario at one rate.</summary>
public sealed record LatencyRow(string System, string Scenario, string Path, int Rate, RouteResult Result);

/// <summary>What <c>./bench.sh latency</c> found.</summary>
public sealed class LatencyReport(RouteSettings settings, IReadOnlyList<int> rates, DateTimeOffset started, string natsVersion)
{
    public RouteSettings Settings { get; } = settings;

    public IReadOnlyList<int> Rates { get; } = rates;

    public DateTimeOffset Started { get; } = started;

    public string NatsVersion { get; } = natsVersion;

    public string LoadAverages { get; set; } = LoadAverage.Now();

    public List<LatencyRow> Rows { get; } = [];

    public List<string> Notes { get; } = [];

    public List<string> Commands { get; } = [];

    /// <summary>True when every run measured and nothing went wrong.</summary>
    public bool Clean => Rows.Count > 0 && Rows.All(r => r.Result.Error is null && r.Result.Problems.Count == 0 && r.Result.Latency is { Count: > 0 })
        && !Notes.Any(n => !n.StartsWith("StreamFarm: ", StringComparison.Ordinal) || n.Contains("went wrong", StringComparison.Ordinal));

    public static string Describe(LatencyRow row)
    {
        var r = row.Result;
        if (r.Error is not null)
        {
            return $"failed: {r.Error}";
        }

        var l = r.Latency!;
        var problems = r.Problems.Count > 0 ? $"; problems: {string.Join("; ", r.Problems)}" : "";
        return string.Create(CultureInfo.InvariantCulture, $"{l.Count:N0} deliveries; µs p50 {l.Median:0} p90 {l.P90:0} p99 {l.P99:0} p99.9 {l.P999:0} max {l.Max:0}{problems}");
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"# Publish → deliver latency, {Started:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine();
        sb.AppendLine(inv, $"One publisher, one subscriber, {Settings.PayloadBytes}-byte payload; warm-up {Settings.Warmup.TotalSeconds:0.#} s, measured {Settings.Duration.TotalSeconds:0.#} s per run; nats-server {NatsVersion}; load average {LoadAverages}.");
        sb.AppendLine();
        sb.AppendLine("| system | scenario | msgs/s | deliveries | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | path |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var row in Rows.OrderBy(r => r.Rate).ThenBy(r => r.System == "NATS" ? 1 : 0))
        {
            if (row.Result.Latency is { Count: > 0 } l && row.Result.Error is null)
            {
                sb.AppendLine(inv, $"| {row.System} | {row.Scenario} | {row.Rate:N0} | {l.Count:N0} | {l.Median:N0} | {l.P90:N0} | {l.P99:N0} | {l.P999:N0} | {l.Max:N0} | {row.Path} |");
            }
            else
            {
                sb.AppendLine(inv, $"| {row.System} | {row.Scenario} | {row.Rate:N0} | failed | | | | | | {row.Result.Error} |");
            }
        }

        var problems = Rows.Where(r => r.Result.Problems.Count > 0).ToList();
        if (problems.Count > 0 || Notes.Count > 0)
        {
            sb.AppendLine();
            foreach (var n in Notes)
            {
                sb.AppendLine(inv, $"- {n}");
            }

            foreach (var r in problems)
            {
                sb.AppendLine(inv, $"- {r.System} {r.Scenario} at {r.Rate:N0}/s: {string.Join("; ", r.Result.Problems)}");
            }
        }

        sb.AppendLine();
        sb.AppendLine("Servers:");
        sb.AppendLine();
        foreach (var c in Commands)
        {
            sb.AppendLine(inv, $"    {c}");
        }

        return sb.ToString();
    }
}
