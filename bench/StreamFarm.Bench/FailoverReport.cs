using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>The results of a failover run, as Markdown tables or JSON.</summary>
public sealed class FailoverReport(FailoverSettings settings, DateTimeOffset started, string natsVersion)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public FailoverSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string NatsVersion { get; } = natsVersion;

    /// <summary>One-minute load average when the run started and when it ended (2 cores: above 2, others were competing).</summary>
    public string LoadAverages { get; set; } = LoadAverage.Now();

    public string Machine { get; } = $"{RuntimeInformation.OSDescription}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}";

    public List<FailoverSide> Sides { get; } = [];

    /// <summary>Run-level problems (a side that could not run).</summary>
    public List<string> Notes { get; } = [];

    /// <summary>True when every side ran every run successfully and every StreamFarm failover began with an image.</summary>
    public bool Clean => Notes.Count == 0 && Sides.Count == Settings.Systems.Count && Sides.All(s => s.Runs.Count == Settings.Runs && s.Runs.All(r => r.Error is null))
        && Sides.Where(s => s.System == "streamfarm").SelectMany(s => s.Runs).All(r => r.FirstKind == "IMAGE");

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"Failover: {Settings.Runs} kills per system, {Settings.Servers} StreamFarm servers, standby {Settings.Standby.ToString().ToLowerInvariant()}, publisher every {Settings.PublishInterval.TotalMilliseconds:0.###} ms, {Started:yyyy-MM-dd HH:mm} UTC, {Machine}, nats-server {NatsVersion}, load average (1 min) at start and end {LoadAverages}\n\n");
        sb.Append("| system | runs ok | median ms | p99 ms | min ms | max ms | mean ms | first message | messages missed (median, max) |\n");
        sb.Append("|---|---:|---:|---:|---:|---:|---:|---|---|\n");
        foreach (var side in Sides)
        {
            var s = side.Summary;
            var ok = side.Runs.Where(r => r.Error is null).ToList();
            var kinds = string.Join(", ", ok.GroupBy(r => r.Continuity is null ? r.FirstKind : $"{r.FirstKind} ({r.Continuity})").Select(g => $"{g.Key} ×{g.Count()}"));
            var missed = ok.Where(r => r.Missed is not null).Select(r => (double)r.Missed!.Value).Order().ToList();
            sb.Append(Inv, $"| {Name(side.System)} | {ok.Count}/{side.Runs.Count} | {s.Median:0.0} | {s.P99:0.0} | {s.Min:0.0} | {s.Max:0.0} | {s.Mean:0.0} | {kinds} | {(missed.Count == 0 ? "-" : $"{LatencySummary.Percentile(missed, 50):0}, {missed[^1]:0}")} |\n");
        }

        foreach (var side in Sides.Where(s => s.Cpu is not null))
        {
            sb.Append(Inv, $"\n{Name(side.System)}: {side.Cpu}\n");
        }

        var farm = Sides.Find(s => s.System == "streamfarm");
        var nats = Sides.Find(s => s.System == "nats");
        if (farm is not null && nats is not null && nats.Summary.Median > 0)
        {
            sb.Append(Inv, $"\nStreamFarm/NATS: median {farm.Summary.Median / nats.Summary.Median:0.00}×, p99 {farm.Summary.P99 / Math.Max(0.001, nats.Summary.P99):0.00}×, mean {farm.Summary.Mean / Math.Max(0.001, nats.Summary.Mean):0.00}×.\n");
        }

        if (farm is not null)
        {
            var ok = farm.Runs.Where(r => r.Error is null).ToList();
            sb.Append("\nStreamFarm client paths (rounds = DNS rediscoveries after the one retry of the killed server):\n\n");
            sb.Append("| rounds | runs | median ms | max ms | DNS still named the killed server | table choice fell on the killed server |\n|---:|---:|---:|---:|---:|---:|\n");
            foreach (var g in ok.GroupBy(r => r.Rounds).OrderBy(g => g.Key))
            {
                var st = LatencySummary.Of(g.Select(r => r.Milliseconds!.Value));
                sb.Append(Inv, $"| {g.Key} | {g.Count()} | {st.Median:0.0} | {st.Max:0.0} | {g.Sum(r => r.DnsGaveDead)} | {g.Sum(r => r.TableChoseDead)} |\n");
            }

            var timed = ok.Where(r => r.LostAfter is not null && r.ResolvedAfter is not null).ToList();
            if (timed.Count > 0)
            {
                var lost = LatencySummary.Of(timed.Select(r => r.LostAfter!.Value));
                var dns = LatencySummary.Of(timed.Select(r => r.ResolvedAfter!.Value - r.LostAfter!.Value));
                var rest = LatencySummary.Of(timed.Select(r => r.Milliseconds!.Value - r.ResolvedAfter!.Value));
                sb.Append("\nWhere the StreamFarm time goes (median [min–max] ms): ");
                sb.Append(Inv, $"kill → connection closed {lost.Median:0.0} [{lost.Min:0.0}–{lost.Max:0.0}]; ");
                sb.Append(Inv, $"closed → DNS answer of the round that worked (retry, jittered pauses, failed rounds) {dns.Median:0.0} [{dns.Min:0.0}–{dns.Max:0.0}]; ");
                sb.Append(Inv, $"that answer → image (first server, table, choice, move, SUB, IMAGE) {rest.Median:0.0} [{rest.Min:0.0}–{rest.Max:0.0}].\n");
            }

            sb.Append("\nBy kill (first = first message from another server; live = first value the client had not seen):\n\n");
            sb.Append("| kills | runs | first: median | p90 | p99 | max | live: median | p90 | max | went back |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            foreach (var (what, runs) in new[] { ("all", ok), ("of the subject's owner", ok.Where(r => r.OwnerKilled).ToList()), ("of another server", ok.Where(r => !r.OwnerKilled).ToList()) })
            {
                if (runs.Count == 0)
                {
                    continue;
                }

                var first = LatencySummary.Of(runs.Select(r => r.Milliseconds!.Value));
                var live = LatencySummary.Of(runs.Where(r => r.LiveAfter is not null).Select(r => r.LiveAfter!.Value));
                sb.Append(Inv, $"| {what} | {runs.Count} | {first.Median:0.0} | {first.P90:0.0} | {first.P99:0.0} | {first.Max:0.0} | {live.Median:0.0} | {live.P90:0.0} | {live.Max:0.0} | {runs.Count(r => r.WentBack)} |\n");
            }

            AppendSteps(sb, ok);
            sb.Append(Inv, $"\nPublisher: {farm.PublishRate:N0} rounds/s to every StreamFarm server");
            sb.Append(nats is null ? ".\n" : string.Create(Inv, $"; {nats.PublishRate:N0} messages/s to the surviving nats-server.\n"));
        }

        if (nats is not null)
        {
            var ok = nats.Runs.Where(r => r.Error is null).ToList();
            sb.Append("\nNATS client paths (failed attempts = reconnects that failed before one got through; each is followed by ReconnectWaitMin + jitter):\n\n");
            sb.Append("| failed attempts | runs | median ms | max ms | attempts at the killed server |\n|---:|---:|---:|---:|---:|\n");
            foreach (var g in ok.GroupBy(r => r.FailedAttempts).OrderBy(g => g.Key))
            {
                var st = LatencySummary.Of(g.Select(r => r.Milliseconds!.Value));
                sb.Append(Inv, $"| {g.Key} | {g.Count()} | {st.Median:0.0} | {st.Max:0.0} | {g.Sum(r => r.AttemptsAtKilled)} |\n");
            }

            AppendSteps(sb, ok);
        }

        sb.Append("\nEvery run:\n\n| system | run | killed | new server | ms | first | missed | rounds / failed attempts |\n|---|---:|---|---|---:|---|---:|---:|\n");
        foreach (var side in Sides)
        {
            foreach (var r in side.Runs)
            {
                sb.Append(Inv, $"| {Name(side.System)} | {r.Run} | {r.Killed} | {r.NewServer ?? "-"} | {(r.Milliseconds is { } ms ? ms.ToString("0.0", Inv) : "FAILED")} | {r.FirstKind}{(r.Continuity is null ? "" : $" {r.Continuity}")} | {(r.Missed?.ToString(Inv) ?? "-")} | {(side.System == "streamfarm" ? r.Rounds : r.FailedAttempts).ToString(Inv)} |\n");
            }
        }

        sb.Append("\nSetup:\n\n```\n");
        foreach (var side in Sides)
        {
            foreach (var line in side.Setup)
            {
                sb.Append(line).Append('\n');
            }
        }

        sb.Append("```\n");
        var problems = Notes.Concat(Sides.SelectMany(s => s.Runs.Where(r => r.Error is not null).Select(r => $"{Name(s.System)} run {r.Run}: {r.Error}; steps: {string.Join(" | ", r.Steps)}"))).ToList();
        if (problems.Count > 0)
        {
            sb.Append("\nProblems:\n\n");
            foreach (var p in problems)
            {
                sb.Append("- ").Append(p).Append('\n');
            }
        }

        return sb.ToString();
    }

    public void WriteJson(Stream output)
    {
        JsonSerializer.Serialize(output, new
        {
            started = Started,
            machine = Machine,
            nats_version = NatsVersion,
            load_averages = LoadAverages,
            settings = new { runs = Settings.Runs, servers = Settings.Servers, publish_interval_ms = Settings.PublishInterval.TotalMilliseconds, standby = Settings.Standby.ToString().ToLowerInvariant() },
            sides = Sides,
            notes = Notes,
        }, Indented);
    }

    /// <summary>The steps of the median run and of the slowest one.</summary>
    private static void AppendSteps(StringBuilder sb, List<FailoverRun> ok)
    {
        if (ok.Count == 0)
        {
            return;
        }

        var sorted = ok.OrderBy(r => r.Milliseconds).ToList();
        foreach (var (what, run) in new[] { ("median", sorted[(sorted.Count - 1) / 2]), ("slowest", sorted[^1]) }.DistinctBy(x => x.Item2.Run))
        {
            sb.Append(Inv, $"\nSteps of the {what} run (run {run.Run}, {run.Milliseconds:0.0} ms):\n\n```\n");
            foreach (var step in run.Steps)
            {
                sb.Append(step).Append('\n');
            }

            sb.Append("```\n");
        }
    }

    private static string Name(string system) => system == "nats" ? "NATS" : "StreamFarm";
}
