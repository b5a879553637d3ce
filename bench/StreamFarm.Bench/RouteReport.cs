using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>The results of a routes run (<c>./bench.sh routes</c>), rendered as Markdown tables or as JSON.</summary>
public sealed class RouteReport(RouteSettings settings, DateTimeOffset started, string natsVersion)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public RouteSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string NatsVersion { get; } = natsVersion;

    public int Cores { get; } = Environment.ProcessorCount;

    public string Machine { get; } = $"{RuntimeInformation.OSDescription}, {RuntimeInformation.OSArchitecture}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}";

    /// <summary>One-minute load average when the run started and when it ended.</summary>
    public string LoadAverages { get; set; } = LoadAverage.Now();

    public List<RouteResult> Results { get; } = [];

    /// <summary>The command line of each server, by system.</summary>
    public Dictionary<ServerKind, List<string>> Commands { get; } = [];

    /// <summary>The StreamFarm server that owns the bench subject, and how the harness told.</summary>
    public string? Owner { get; set; }

    public string? OwnerEvidence { get; set; }

    /// <summary>Run-level problems: a system that could not start, a priming run that went wrong.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>True when every scenario of every system was measured without problems.</summary>
    public bool Clean => Notes.Count == 0 && Results.Count == Settings.Systems.Count * 3 && Results.All(r => r.Measured && r.Problems.Count == 0);

    public RouteResult? Find(ServerKind server, RouteLayout layout) => Results.Find(r => r.Server == server && r.Layout == layout);

    /// <summary>Whether other work competed with either measured interval of the scenario (see <see cref="BenchReport.Disturbed"/>).</summary>
    public bool Disturbed(RouteResult r) =>
        (r.Throughput is { } t && BenchReport.IsDisturbed(t, Cores)) || (r.AtRate is { } a && BenchReport.IsDisturbed(a, Cores));

    /// <summary>One line for progress output.</summary>
    public static string Describe(RouteResult r)
    {
        if (r.Error is not null || r.Throughput is null || r.AtRate is null || r.Latency is null)
        {
            return $"FAILED: {r.Error ?? "nothing measured"}";
        }

        var t = r.Throughput;
        var line = string.Create(Inv, $"{t.DeliveriesPerSecond:N0} deliveries/s, server CPU {t.ServerCpuMicrosPerDelivery:0.000} µs/delivery ({t.ServerCores:0.00} cores: {string.Join(' ', r.ThroughputCoresByServer.Select(c => $"{c.Key} {c.Value:0.00}"))}), bench {t.BenchCores:0.00}, other {t.OtherCores:0.00}; at {r.AtRate.Published / r.AtRate.Seconds:N0} msgs/s latency median {r.Latency.Median:0} µs, p99 {r.Latency.P99:0} µs, max {r.Latency.Max:0} µs ({r.Latency.Count:N0} samples{(r.LatencyBySubscriberServer.Count == 0 ? "" : "; " + BySubscriberServer(r))})");
        return r.Problems.Count == 0 ? line : $"{line}; PROBLEMS: {string.Join("; ", r.Problems)}";
    }

    /// <summary>The comparison table, details, checks and commands, in Markdown.</summary>
    public string ToMarkdown()
    {
        var s = new StringBuilder();
        s.Append(Inv, $"Routes benchmark, {Started:yyyy-MM-dd HH:mm} UTC. Machine: {Machine}. NATS: {NatsVersion}. Load average (1 min) at start and end: {LoadAverages}.\n");
        s.Append(Inv, $"Each scenario: one publisher, {Settings.Subscribers} subscribers, {Settings.PayloadBytes} B payload. ");
        s.Append(Inv, $"Latency run: {Settings.Rate:N0} msgs/s, {Settings.Warmup.TotalSeconds:0.#} s warm-up, {Settings.Duration.TotalSeconds:0.#} s measured; latency = receive time − the publisher's stamp, over every delivery stamped in the measured interval. ");
        s.Append(Inv, $"Throughput run: {Settings.Warmup.TotalSeconds:0.#} s warm-up, {Settings.Duration.TotalSeconds:0.#} s measured, window {Settings.Window}, batches of {Settings.Batch}. Server CPU: the three servers together.\n");
        if (Owner is not null)
        {
            s.Append(Inv, $"StreamFarm: {RttpLoadClient.BenchSubject} is owned by {Owner} ({OwnerEvidence}).\n");
        }

        s.Append("\n| scenario | StreamFarm deliveries/s | NATS deliveries/s | StreamFarm/NATS throughput | StreamFarm CPU µs/delivery | NATS CPU µs/delivery | StreamFarm/NATS CPU per delivery | StreamFarm latency median / p99 µs | NATS latency median / p99 µs | StreamFarm/NATS latency median / p99 |\n");
        s.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var layout in Enum.GetValues<RouteLayout>())
        {
            var sf = Find(ServerKind.StreamFarm, layout);
            var nats = Find(ServerKind.Nats, layout);
            s.Append(Inv, $"| {layout.Name()} | {Rate(sf)} | {Rate(nats)} | {Ratio(sf?.Throughput?.DeliveriesPerSecond, nats?.Throughput?.DeliveriesPerSecond)} | {Cpu(sf)} | {Cpu(nats)} | {Ratio(sf?.Throughput?.ServerCpuMicrosPerDelivery, nats?.Throughput?.ServerCpuMicrosPerDelivery)} | ");
            s.Append(Inv, $"{Latency(sf)} | {Latency(nats)} | {Ratio(sf?.Latency?.Median, nats?.Latency?.Median)} / {Ratio(sf?.Latency?.P99, nats?.Latency?.P99)} |\n");
        }

        s.Append("\nPaths:\n\n");
        foreach (var r in Results)
        {
            s.Append(Inv, $"- {r.Server.Name()}, {r.Layout.Name()}: {r.Path}; {r.Placement}.\n");
        }

        s.Append("\nThroughput runs (cores: average CPU during the measured interval of each server, of the load generator, which shares the same cores, and of anything else):\n\n");
        s.Append("| server | scenario | published msgs/s | deliveries/s | server cores, each | bench cores | other cores | publisher waits |\n");
        s.Append("|---|---|---:|---:|---|---:|---:|---:|\n");
        foreach (var r in Results)
        {
            s.Append(Inv, $"| {r.Server.Name()} | {r.Layout.Name()} | ");
            s.Append(r.Throughput is { Measured: true } t
                ? string.Create(Inv, $"{t.Published / t.Seconds:N0} | {t.DeliveriesPerSecond:N0} | {Each(r.ThroughputCoresByServer)} | {t.BenchCores:0.00} | {t.OtherCores:0.00} | {t.WindowWaits:N0} |\n")
                : "failed | | | | | |\n");
        }

        s.Append("\nLatency runs (µs, nearest rank):\n\n");
        s.Append("| server | scenario | published msgs/s | deliveries/s | server CPU µs/delivery | server cores, each | samples | min | median | p99 | max | mean | median / p99 by the subscribers' server |\n");
        s.Append("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n");
        foreach (var r in Results)
        {
            s.Append(Inv, $"| {r.Server.Name()} | {r.Layout.Name()} | ");
            s.Append(r.AtRate is { Measured: true } a && r.Latency is { } l
                ? string.Create(Inv, $"{a.Published / a.Seconds:N0} | {a.DeliveriesPerSecond:N0} | {a.ServerCpuMicrosPerDelivery:0.00} | {Each(r.AtRateCoresByServer)} | {l.Count:N0} | {l.Min:0} | {l.Median:0} | {l.P99:0} | {l.Max:0} | {l.Mean:0} | {BySubscriberServer(r)} |\n")
                : "failed | | | | | | | | | | |\n");
        }

        var routed = Results.Where(r => r.Routes.Count > 0).ToList();
        if (routed.Count > 0)
        {
            s.Append("\nStreamFarm route counters over each whole scenario (both runs, warm-ups included): publications forwarded to the owner / dropped on the way, per server:\n\n");
            var names = routed[0].Routes.Keys.Order(StringComparer.Ordinal).ToList();
            s.Append("| scenario | published | ").Append(string.Join(" | ", names.Select(n => $"{n} forwarded / dropped"))).Append(" |\n");
            s.Append("|---|---:|").Append(string.Concat(names.Select(_ => "---:|"))).Append('\n');
            foreach (var r in routed)
            {
                s.Append(Inv, $"| {r.Layout.Name()} | {r.Published:N0} | ");
                s.Append(string.Join(" | ", names.Select(n => r.Routes.TryGetValue(n, out var c) ? string.Create(Inv, $"{c.Forwarded:N0} / {c.Dropped:N0}") : "—"))).Append(" |\n");
            }
        }

        var clean = Results.Where(r => r.Measured && r.Problems.Count == 0).Select(r => $"{r.Server.Name()} {r.Layout.Name()}").ToList();
        if (clean.Count > 0)
        {
            s.Append(Inv, $"\nEvery subscriber got every message, in order, in: {string.Join(", ", clean)} (RTTP: each UPDATE's seq one more than the last, no @merged; both systems: the publisher's counter n one more than the last in the latency run; counts equal to what was published after both runs).\n");
        }

        var disturbed = Results.Where(Disturbed).ToList();
        if (disturbed.Count > 0)
        {
            s.Append(Inv, $"\nWarning: in {disturbed.Count} scenario(s) ({string.Join(", ", disturbed.Select(r => $"{r.Server.Name()} {r.Layout.Name()}"))}) other work took more than {BenchReport.DisturbedCores:0.##} cores while all {Cores} cores were busy; their numbers are disturbed. Run again on a quiet machine.\n");
        }

        var problems = Results.Where(r => r.Error is not null || r.Problems.Count > 0).ToList();
        if (problems.Count > 0 || Notes.Count > 0)
        {
            s.Append("\nProblems:\n\n");
            foreach (var n in Notes)
            {
                s.Append(Inv, $"- {n}\n");
            }

            foreach (var r in problems)
            {
                s.Append(Inv, $"- {r.Server.Name()} {r.Layout.Name()}: {r.Error ?? string.Join("; ", r.Problems)}\n");
            }
        }

        s.Append("\nServers:\n\n```\n");
        foreach (var line in Commands.Values.SelectMany(c => c))
        {
            s.Append(line).Append('\n');
        }

        s.Append("```\n");
        return s.ToString();
    }

    /// <summary>The run as one JSON document.</summary>
    public void WriteJson(Stream output)
    {
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("started", Started);
        w.WriteString("machine", Machine);
        w.WriteString("nats_version", NatsVersion);
        w.WriteString("load_averages", LoadAverages);
        w.WriteStartObject("settings");
        w.WriteNumber("subscribers", Settings.Subscribers);
        w.WriteNumber("payload_bytes", Settings.PayloadBytes);
        w.WriteNumber("rate", Settings.Rate);
        w.WriteNumber("warmup_seconds", Settings.Warmup.TotalSeconds);
        w.WriteNumber("duration_seconds", Settings.Duration.TotalSeconds);
        w.WriteNumber("window", Settings.Window);
        w.WriteNumber("batch", Settings.Batch);
        w.WriteEndObject();
        w.WriteString("owner", Owner);
        w.WriteString("owner_evidence", OwnerEvidence);
        w.WriteStartObject("commands");
        foreach (var (kind, lines) in Commands)
        {
            w.WriteStartArray(kind.Name());
            foreach (var line in lines)
            {
                w.WriteStringValue(line);
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
        w.WriteStartArray("results");
        foreach (var r in Results)
        {
            w.WriteStartObject();
            w.WriteString("server", r.Server.Name());
            w.WriteString("scenario", r.Layout.Key());
            w.WriteString("path", r.Path);
            w.WriteString("placement", r.Placement);
            w.WriteBoolean("measured", r.Measured);
            w.WriteBoolean("disturbed", Disturbed(r));
            w.WriteNumber("published", r.Published);
            Run(w, "throughput", r.Throughput);
            w.WriteStartObject("throughput_cores_by_server");
            foreach (var (name, cores) in r.ThroughputCoresByServer)
            {
                Number(w, name, cores);
            }

            w.WriteEndObject();
            Run(w, "at_rate", r.AtRate);
            w.WriteStartObject("at_rate_cores_by_server");
            foreach (var (name, cores) in r.AtRateCoresByServer)
            {
                Number(w, name, cores);
            }

            w.WriteEndObject();
            if (r.Latency is { } l)
            {
                w.WriteStartObject("latency_us");
                w.WriteNumber("samples", l.Count);
                Number(w, "min", l.Min);
                Number(w, "median", l.Median);
                Number(w, "p90", l.P90);
                Number(w, "p99", l.P99);
                Number(w, "p99_9", l.P999);
                Number(w, "max", l.Max);
                Number(w, "mean", l.Mean);
                w.WriteEndObject();
            }

            w.WriteStartObject("latency_us_by_subscriber_server");
            foreach (var (name, b) in r.LatencyBySubscriberServer)
            {
                w.WriteStartObject(name);
                w.WriteNumber("samples", b.Count);
                Number(w, "median", b.Median);
                Number(w, "p99", b.P99);
                Number(w, "max", b.Max);
                w.WriteEndObject();
            }

            w.WriteEndObject();

            w.WriteStartObject("routes");
            foreach (var (name, c) in r.Routes)
            {
                w.WriteStartObject(name);
                w.WriteNumber("forwarded", c.Forwarded);
                w.WriteNumber("dropped", c.Dropped);
                w.WriteNumber("messages_in", c.MessagesIn);
                w.WriteNumber("messages_out", c.MessagesOut);
                w.WriteEndObject();
            }

            w.WriteEndObject();
            w.WriteString("error", r.Error);
            w.WriteStringArray("problems", r.Problems);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStringArray("notes", Notes);
        w.WriteEndObject();
    }

    private static string BySubscriberServer(RouteResult r) =>
        r.LatencyBySubscriberServer.Count == 0 ? "—" : string.Join(", ", r.LatencyBySubscriberServer.Select(b => string.Create(Inv, $"{b.Key} {b.Value.Median:0} / {b.Value.P99:0}")));

    private static string Each(IReadOnlyDictionary<string, double> cores) => string.Join(", ", cores.Select(c => string.Create(Inv, $"{c.Key} {c.Value:0.00}")));

    private static void Run(Utf8JsonWriter w, string name, ScenarioResult? r)
    {
        if (r is null)
        {
            w.WriteNull(name);
            return;
        }

        w.WriteStartObject(name);
        w.WriteNumber("seconds", r.Seconds);
        w.WriteNumber("published", r.Published);
        w.WriteNumber("deliveries", r.Deliveries);
        Number(w, "deliveries_per_second", r.DeliveriesPerSecond);
        Number(w, "server_cpu_us_per_delivery", r.ServerCpuMicrosPerDelivery);
        Number(w, "server_cores", r.ServerCores);
        Number(w, "bench_cores", r.BenchCores);
        Number(w, "other_cores", r.OtherCores);
        w.WriteNumber("window_waits", r.WindowWaits);
        w.WriteEndObject();
    }

    private static void Number(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value))
        {
            w.WriteNumber(name, Math.Round(value, 6));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static string Ratio(double? a, double? b) =>
        a is double x && b is double y && double.IsFinite(x) && double.IsFinite(y) && y > 0 ? (x / y).ToString("0.00", Inv) : "—";

    private static string Rate(RouteResult? r) => r?.Throughput is not { } t ? (r is null ? "—" : "failed") : t.Measured ? Mark(r, t.DeliveriesPerSecond.ToString("N0", Inv)) : "failed";

    private static string Cpu(RouteResult? r) => r?.Throughput is not { } t ? (r is null ? "—" : "failed") : t.Measured ? Mark(r, t.ServerCpuMicrosPerDelivery.ToString("0.000", Inv)) : "failed";

    private static string Latency(RouteResult? r) => r?.Latency is not { Count: > 0 } l ? (r is null ? "—" : "failed") : Mark(r, string.Create(Inv, $"{l.Median:0} / {l.P99:0}"));

    private static string Mark(RouteResult r, string text) => r.Problems.Count > 0 ? $"{text} (!)" : text;
}
