using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>The results of <c>./bench.sh dns</c> as Markdown.</summary>
public sealed class DnsBenchReport(DnsBenchSettings settings, DateTimeOffset started, string knotVersion, string dnsperfVersion)
{
    /// <summary>Other work above this (in cores) during a run makes its numbers suspect: the machine has only a few.</summary>
    public const double DisturbedCores = 0.3;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public DnsBenchSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string KnotVersion { get; } = knotVersion;

    public string DnsperfVersion { get; } = dnsperfVersion;

    public string Machine { get; } = $"{RuntimeInformation.OSDescription}, {RuntimeInformation.OSArchitecture}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}";

    public List<DnsPerfResult> Results { get; } = [];

    /// <summary>Each server's command line.</summary>
    public Dictionary<string, string> Commands { get; } = [];

    /// <summary>What each server answers to the four queries of the mix (checked before the runs).</summary>
    public Dictionary<string, string> Answers { get; } = [];

    public List<string> Notes { get; } = [];

    /// <summary>Every run measured, nothing lost, no notes.</summary>
    public bool Clean => Notes.Count == 0 && Results.Count == 2 * Settings.Runs && Results.All(r => r.Measured && r.Lost == 0);

    public static string Describe(DnsPerfResult r) => r.Measured
        ? string.Create(Inv, $"{r.QueriesPerSecond:N0} queries/s, latency avg {r.AverageLatencySeconds * 1000:0.000} ms (max {r.MaxLatencySeconds * 1000:0.0} ms), lost {r.Lost} of {r.Sent}, server CPU {r.ServerCpuSeconds:0.00} s ({r.ServerCpuMicrosPerQuery:0.00} µs/query), dnsperf CPU {r.LoadCpuSeconds:0.00} s, other {r.OtherCores:0.00} cores; {r.ResponseCodes}")
        : $"FAILED: {r.Error}";

    public string ToMarkdown()
    {
        var s = new StringBuilder();
        s.Append(Inv, $"DNS benchmark, {Started:yyyy-MM-dd HH:mm} UTC. Machine: {Machine}. {KnotVersion}; dnsperf {DnsperfVersion}.\n");
        s.Append(Inv, $"dnsperf -c {Settings.Clients} -T {Settings.Threads} -q {Settings.MaxOutstanding} -l {Settings.Duration.TotalSeconds:0.#} over UDP, the same query file for both (");
        s.Append(string.Join(", ", Settings.Queries.Select(q => $"`{q}`")));
        s.Append(Inv, $", in turn); an unreported {Settings.Warmup.TotalSeconds:0.#} s warm-up before each run; {Settings.Runs} run(s) per server, alternating.\n");
        if (Settings.Pin)
        {
            s.Append(Inv, $"Pinned (`--pin`): every server process on the last core (`taskset -a`), dnsperf on the others; Knot with `udp-workers: 1`, our responder with its default of one UDP loop.\n");
        }

        s.Append('\n');
        s.Append("| server | queries/s | avg latency | max latency | lost | server CPU s | server CPU µs/query | server cores | dnsperf CPU s | other cores | avg response |\n");
        s.Append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        foreach (var r in Results.OrderBy(r => r.Server, StringComparer.Ordinal).ThenBy(r => r.Run))
        {
            s.Append(Inv, $"| {r.Server}{(Settings.Runs > 1 ? $" (run {r.Run})" : "")}{(Disturbed(r) ? " (disturbed)" : "")} | ");
            s.Append(r.Measured
                ? string.Create(Inv, $"{r.QueriesPerSecond:N0} | {r.AverageLatencySeconds * 1000:0.000} ms | {r.MaxLatencySeconds * 1000:0.0} ms | {r.Lost} ({r.LostPercent:0.###} %) | {r.ServerCpuSeconds:0.00} | {r.ServerCpuMicrosPerQuery:0.00} | {r.ServerCores:0.00} | {r.LoadCpuSeconds:0.00} | {r.OtherCores:0.00} | {r.AverageResponseBytes:0} B |\n")
                : $"failed: {r.Error} | | | | | | | | | |\n");
        }

        var knot = Median("Knot");
        var ours = Median("StreamFarm");
        if (knot is not null && ours is not null)
        {
            var which = knot.Value.Runs == 1 && ours.Value.Runs == 1 ? "" : $" (medians of {Runs(knot.Value)} Knot and {Runs(ours.Value)} StreamFarm runs)";
            s.Append(Inv, $"\nStreamFarm / Knot{which}: queries/s **{ours.Value.Qps / knot.Value.Qps:0.00}×**, average latency {ours.Value.Latency / knot.Value.Latency:0.00}×, server CPU per query {ours.Value.Cpu / knot.Value.Cpu:0.00}×.\n");
        }

        s.Append("\nAnswers (checked before the runs):\n\n");
        foreach (var (server, answers) in Answers)
        {
            s.Append(Inv, $"- {server}: {answers}\n");
        }

        s.Append("\nCommands:\n\n");
        foreach (var (server, command) in Commands)
        {
            s.Append(Inv, $"- {server}: `{command}`\n");
        }

        var disturbed = Results.Where(Disturbed).ToList();
        if (disturbed.Count > 0)
        {
            s.Append(Inv, $"\nWarning: in {disturbed.Count} run(s) ({string.Join(", ", disturbed.Select(r => $"{r.Server} run {r.Run}"))}) other work took more than {DisturbedCores:0.##} cores; their numbers are disturbed. Run again on a quiet machine.\n");
        }

        if (Notes.Count > 0 || Results.Any(r => !r.Measured || r.Lost > 0))
        {
            s.Append("\nProblems:\n\n");
            foreach (var n in Notes)
            {
                s.Append(Inv, $"- {n}\n");
            }

            foreach (var r in Results.Where(r => !r.Measured || r.Lost > 0))
            {
                s.Append(Inv, $"- {r.Server} run {r.Run}: {(r.Measured ? $"{r.Lost} queries lost" : r.Error)}\n");
            }
        }

        return s.ToString();
    }

    public static bool Disturbed(DnsPerfResult r) => r.Measured && r.OtherCores > DisturbedCores;

    private static string Runs((double, double, double, int Runs, bool Quiet) m) => m.Quiet ? $"{m.Runs} undisturbed" : $"{m.Runs} (all disturbed)";

    /// <summary>Medians over the undisturbed runs, or over all runs when every one was disturbed.</summary>
    private (double Qps, double Latency, double Cpu, int Runs, bool Quiet)? Median(string server)
    {
        var measured = Results.Where(r => r.Server == server && r.Measured).ToList();
        var quiet = measured.Where(r => !Disturbed(r)).ToList();
        var runs = quiet.Count > 0 ? quiet : measured;
        if (runs.Count == 0)
        {
            return null;
        }

        static double Mid(IEnumerable<double> values)
        {
            var v = values.Order().ToList();
            return v.Count % 2 == 1 ? v[v.Count / 2] : (v[(v.Count / 2) - 1] + v[v.Count / 2]) / 2;
        }

        return (Mid(runs.Select(r => r.QueriesPerSecond)), Mid(runs.Select(r => r.AverageLatencySeconds)), Mid(runs.Select(r => r.ServerCpuMicrosPerQuery)), runs.Count, quiet.Count > 0);
    }
}
