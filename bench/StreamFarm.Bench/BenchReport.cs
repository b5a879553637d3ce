using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>The results of a fan-out run, rendered as Markdown tables or as JSON.</summary>
public sealed class BenchReport(FanoutSettings settings, DateTimeOffset started, string natsVersion)
{
    /// <summary>Other work above this (in cores) during a measurement makes its numbers suspect.</summary>
    public const double DisturbedCores = 0.15;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public FanoutSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string NatsVersion { get; } = natsVersion;

    public int Cores { get; } = Environment.ProcessorCount;

    public string Machine { get; } = $"{RuntimeInformation.OSDescription}, {RuntimeInformation.OSArchitecture}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}";

    public List<ScenarioResult> Results { get; } = [];

    /// <summary>The command line each server ran with.</summary>
    public Dictionary<ServerKind, string> Commands { get; } = [];

    /// <summary>Run-level events: a server that could not start, or crashed and was restarted.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>True when every scenario was measured without problems.</summary>
    public bool Clean => Notes.Count == 0 && Results.Count == Settings.Fanouts.Count * Settings.PayloadSizes.Count * 2 && Results.All(r => r.Measured && r.Problems.Count == 0);

    public ScenarioResult? Find(ServerKind server, int fanout, int size) => Results.Find(r => r.Server == server && r.Fanout == fanout && r.PayloadBytes == size);

    /// <summary>
    /// Whether other work competed with the run: it used more than <see cref="DisturbedCores"/> while
    /// the machine had no idle core left. (Other work on cores the run left idle is not counted: NATS,
    /// for one, fans a publisher's messages out on one core.)
    /// </summary>
    public bool Disturbed(ScenarioResult r) => IsDisturbed(r, Cores);

    /// <summary><see cref="Disturbed"/> on a machine of <paramref name="cores"/> cores.</summary>
    public static bool IsDisturbed(ScenarioResult r, int cores) => r.Measured && r.OtherCores > DisturbedCores && r.ServerCores + r.BenchCores + r.OtherCores > cores - DisturbedCores;

    /// <summary>One line for progress output.</summary>
    public static string Describe(ScenarioResult r)
    {
        if (!r.Measured)
        {
            return $"FAILED: {r.Error ?? "no deliveries"}";
        }

        var line = string.Create(Inv, $"{r.DeliveriesPerSecond:N0} deliveries/s, server CPU {r.ServerCpuMicrosPerDelivery:0.000} µs/delivery ({r.ServerCores:0.00} cores), bench CPU {r.BenchCpuMicrosPerDelivery:0.000} µs/delivery ({r.BenchCores:0.00} cores), other {r.OtherCores:0.00} cores, {r.Published / r.Seconds:N0} published/s");
        return r.Problems.Count == 0 ? line : $"{line}; PROBLEMS: {string.Join("; ", r.Problems)}";
    }

    /// <summary>The comparison table, a details table, and any problems, in Markdown.</summary>
    public string ToMarkdown()
    {
        var s = new StringBuilder();
        s.Append(Inv, $"Fan-out benchmark, {Started:yyyy-MM-dd HH:mm} UTC. Machine: {Machine}. NATS: {NatsVersion}.\n");
        s.Append(Inv, $"Each scenario: {Settings.Warmup.TotalSeconds:0.#} s warm-up, {Settings.Duration.TotalSeconds:0.#} s measured; publisher window {Settings.Window} messages, batches of {Settings.Batch}.{(Settings.Tls is null ? "" : " Every connection over TLS (TLS 1.3, ECDSA P-256 certificate from streamfarm cert, the same for both servers).")}\n\n");
        s.Append("| fan-out | payload | StreamFarm deliveries/s | NATS deliveries/s | StreamFarm/NATS throughput | StreamFarm CPU µs/delivery | NATS CPU µs/delivery | StreamFarm/NATS CPU per delivery |\n");
        s.Append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var fanout in Settings.Fanouts)
        {
            foreach (var size in Settings.PayloadSizes)
            {
                var sf = Find(ServerKind.StreamFarm, fanout, size);
                var nats = Find(ServerKind.Nats, fanout, size);
                s.Append(Inv, $"| 1:{fanout} | {size} B | {Rate(sf)} | {Rate(nats)} | {Ratio(sf?.DeliveriesPerSecond, nats?.DeliveriesPerSecond)} | {Cpu(sf)} | {Cpu(nats)} | {Ratio(sf?.ServerCpuMicrosPerDelivery, nats?.ServerCpuMicrosPerDelivery)} |\n");
            }
        }

        s.Append("\nDetails (cores: average CPU used during the measured interval by the server, by the load generator, which shares the same cores, and by anything else on the machine):\n\n");
        s.Append("| server | fan-out | payload | published msgs/s | deliveries/s | server cores | bench cores | other cores | bench CPU µs/delivery | publisher waits |\n");
        s.Append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var r in Results)
        {
            s.Append(Inv, $"| {r.Server.Name()} | 1:{r.Fanout} | {r.PayloadBytes} B | ");
            s.Append(r.Measured
                ? string.Create(Inv, $"{r.Published / r.Seconds:N0} | {r.DeliveriesPerSecond:N0} | {r.ServerCores:0.00} | {r.BenchCores:0.00} | {r.OtherCores:0.00} | {r.BenchCpuMicrosPerDelivery:0.000} | {r.WindowWaits:N0} |\n")
                : "failed | | | | | | | |\n");
        }

        var disturbed = Results.Where(Disturbed).ToList();
        if (disturbed.Count > 0)
        {
            s.Append(Inv, $"\nWarning: in {disturbed.Count} scenario(s) ({string.Join(", ", disturbed.Select(r => $"{r.Server.Name()} 1:{r.Fanout} {r.PayloadBytes} B"))}) other work took more than {DisturbedCores:0.##} cores while all {Cores} cores were busy; their numbers are disturbed. Run again on a quiet machine.\n");
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
                s.Append(Inv, $"- {r.Server.Name()} 1:{r.Fanout} {r.PayloadBytes} B: {r.Error ?? string.Join("; ", r.Problems)}\n");
            }
        }

        return s.ToString();
    }

    /// <summary>The run as one JSON document.</summary>
    public void WriteJson(Stream output)
    {
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("started", Started);
        w.WriteString("machine", Machine);
        w.WriteNumber("cores", Cores);
        w.WriteString("nats_version", NatsVersion);
        w.WriteStartObject("settings");
        w.WriteNumber("warmup_seconds", Settings.Warmup.TotalSeconds);
        w.WriteNumber("duration_seconds", Settings.Duration.TotalSeconds);
        w.WriteNumber("window", Settings.Window);
        w.WriteNumber("batch", Settings.Batch);
        w.WriteEndObject();
        w.WriteStartObject("commands");
        foreach (var (kind, command) in Commands)
        {
            w.WriteString(kind.Name(), command);
        }

        w.WriteEndObject();
        w.WriteStartArray("results");
        foreach (var r in Results)
        {
            w.WriteStartObject();
            w.WriteString("server", r.Server.Name());
            w.WriteNumber("fanout", r.Fanout);
            w.WriteNumber("payload_bytes", r.PayloadBytes);
            w.WriteBoolean("measured", r.Measured);
            w.WriteNumber("seconds", r.Seconds);
            w.WriteNumber("deliveries", r.Deliveries);
            w.WriteNumber("published", r.Published);
            Number(w, "deliveries_per_second", r.DeliveriesPerSecond);
            w.WriteNumber("server_cpu_seconds", r.ServerCpuSeconds);
            Number(w, "server_cpu_us_per_delivery", r.ServerCpuMicrosPerDelivery);
            Number(w, "server_cores", r.ServerCores);
            Number(w, "bench_cpu_us_per_delivery", r.BenchCpuMicrosPerDelivery);
            Number(w, "bench_cores", r.BenchCores);
            Number(w, "other_cores", r.OtherCores);
            w.WriteBoolean("disturbed", Disturbed(r));
            w.WriteNumber("window_waits", r.WindowWaits);
            w.WriteString("error", r.Error);
            w.WriteStringArray("problems", r.Problems);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("comparisons");
        foreach (var fanout in Settings.Fanouts)
        {
            foreach (var size in Settings.PayloadSizes)
            {
                var sf = Find(ServerKind.StreamFarm, fanout, size);
                var nats = Find(ServerKind.Nats, fanout, size);
                w.WriteStartObject();
                w.WriteNumber("fanout", fanout);
                w.WriteNumber("payload_bytes", size);
                Number(w, "throughput_ratio", RatioValue(sf?.DeliveriesPerSecond, nats?.DeliveriesPerSecond));
                Number(w, "cpu_per_delivery_ratio", RatioValue(sf?.ServerCpuMicrosPerDelivery, nats?.ServerCpuMicrosPerDelivery));
                w.WriteEndObject();
            }
        }

        w.WriteEndArray();
        w.WriteStringArray("notes", Notes);
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

    private static double RatioValue(double? a, double? b) => a is double x && b is double y && double.IsFinite(x) && double.IsFinite(y) && y > 0 ? x / y : double.NaN;

    private static string Ratio(double? a, double? b)
    {
        var r = RatioValue(a, b);
        return double.IsFinite(r) ? r.ToString("0.00", Inv) : "—";
    }

    private static string Rate(ScenarioResult? r) => r is null ? "—" : r.Measured ? Mark(r, r.DeliveriesPerSecond.ToString("N0", Inv)) : "failed";

    private static string Cpu(ScenarioResult? r) => r is null ? "—" : r.Measured ? Mark(r, r.ServerCpuMicrosPerDelivery.ToString("0.000", Inv)) : "failed";

    private static string Mark(ScenarioResult r, string text) => r.Problems.Count > 0 ? $"{text} (!)" : text;
}
