using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>The results of a balance run, as Markdown tables or JSON.</summary>
public sealed class BalanceReport(BalanceSettings settings, DateTimeOffset started)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public BalanceSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    /// <summary>One-minute load average when the run started and when it ended (2 cores: above 2, others were competing).</summary>
    public string LoadAverages { get; set; } = LoadAverage.Now();

    public string Machine { get; } = $"{RuntimeInformation.OSDescription}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}";

    public List<BalanceResult> Results { get; } = [];

    public List<string> Setup { get; } = [];

    public bool Clean => Results.Count == Settings.Policies.Count && Results.All(r => r.Problems.Count == 0 && r.AfterBursts is not null && (!Settings.Restart || r.AfterRestart is not null));

    public static string PolicyName(string policy) => policy switch
    {
        "dns" => "DNS alone (round robin, first answer kept)",
        "random" => "Random",
        "fewest" => "FewestUsers",
        "p2c" => "PowerOfTwoChoices",
        "weighted" => "Weighted (free capacity)",
        _ => policy,
    };

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"Balance: {Settings.Clients:N0} clients per policy in {(Settings.Bursts == 1 ? "one burst" : string.Create(Inv, $"{Settings.Bursts} bursts of {Settings.BurstSize} ({Settings.BurstGap.TotalMilliseconds:0} ms apart)"))}, {Settings.Servers} servers, {Started:yyyy-MM-dd HH:mm} UTC, {Machine}, load average (1 min) at start and end {LoadAverages}\n\n");
        var ids = Results.SelectMany(r => (r.AfterBursts?.Users.Keys ?? []).Concat(r.AfterRestart?.Users.Keys ?? [])).Distinct().Order(StringComparer.Ordinal).ToList();
        sb.Append("| policy | ").Append(string.Join(" | ", ids)).Append(" | max/mean | largest share of one burst on one server | all connected after s |");
        if (Settings.Restart)
        {
            sb.Append(" killed | all back after s | ").Append(string.Join(" | ", ids.Select(i => $"{i} after"))).Append(" | max/mean after |");
        }

        sb.Append('\n').Append("|---|").Append(string.Concat(ids.Select(_ => "---:|"))).Append("---:|---:|---:|");
        if (Settings.Restart)
        {
            sb.Append("---|---:|").Append(string.Concat(ids.Select(_ => "---:|"))).Append("---:|");
        }

        sb.Append('\n');
        foreach (var r in Results)
        {
            sb.Append("| ").Append(PolicyName(r.Policy)).Append(" | ");
            sb.Append(string.Join(" | ", ids.Select(i => r.AfterBursts?.Users.GetValueOrDefault(i).ToString(Inv) ?? "-")));
            sb.Append(Inv, $" | {(r.AfterBursts is { } a ? a.MaxOverMean.ToString("0.00", Inv) : "-")} | {(r.BurstMaxShares.Count == 0 ? "-" : $"{r.BurstMaxShares.Max():P0} (median {LatencySummary.Percentile([.. r.BurstMaxShares.Order()], 50):P0})")} | {(r.AfterBursts is null ? "-" : r.ConnectSeconds.ToString("0.00", Inv))} |");
            if (Settings.Restart)
            {
                sb.Append(Inv, $" {r.Killed ?? "-"} | {(r.RecoverySeconds is { } s ? s.ToString("0.00", Inv) : "-")} | ");
                sb.Append(string.Join(" | ", ids.Select(i => r.AfterRestart?.Users.GetValueOrDefault(i).ToString(Inv) ?? "-")));
                sb.Append(Inv, $" | {(r.AfterRestart is { } b ? b.MaxOverMean.ToString("0.00", Inv) : "-")} |");
            }

            sb.Append('\n');
        }

        sb.Append("\nSetup:\n\n```\n");
        foreach (var line in Setup)
        {
            sb.Append(line).Append('\n');
        }

        sb.Append("clients: FarmClient with Selectors.<policy>().ActiveOnly(), service stream.farm.test through DnsServerResolver, defaults otherwise; DNS alone: RttpConnection to the first address DNS gives\n```\n");
        var problems = Results.SelectMany(r => r.Problems.Select(p => $"{PolicyName(r.Policy)}: {p}")).ToList();
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

    public void WriteJson(Stream output) =>
        JsonSerializer.Serialize(output, new { started = Started, machine = Machine, load_averages = LoadAverages, settings = Settings, setup = Setup, results = Results }, Indented);
}
