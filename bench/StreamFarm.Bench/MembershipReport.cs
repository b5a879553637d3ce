using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>The results of a membership run, rendered as Markdown tables or as JSON.</summary>
public sealed class MembershipReport(MembershipSettings settings, DateTimeOffset started, string serfVersion)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public MembershipSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string SerfVersion { get; } = serfVersion;

    public string Machine { get; } = $"{RuntimeInformation.OSDescription}, {RuntimeInformation.OSArchitecture}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}";

    public List<MembershipResult> Results { get; } = [];

    /// <summary>Run-level events (a system skipped).</summary>
    public List<string> Notes { get; } = [];

    /// <summary>True when every scenario ran without problems.</summary>
    public bool Clean => Notes.Count == 0 && Results.Count == Settings.Sizes.Count * Settings.Systems.Count * Settings.Runs && Results.All(r => r.Problems.Count == 0);

    public MembershipResult? Find(string system, int size) => Results.Find(r => r.System == system && r.Size == size);

    public string ToMarkdown()
    {
        var s = new StringBuilder();
        var systems = Settings.Systems;
        var ours = systems.Where(x => x != "serf").ToList();
        var withSerf = systems.Contains("serf");
        s.Append(Inv, $"Membership benchmark, {Started:yyyy-MM-dd HH:mm} UTC. Machine: {Machine}. serf: {SerfVersion}.\n");
        s.Append(Inv, $"Every member's view polled every {Settings.PollInterval.TotalMilliseconds:0} ms (StreamFarm: HTTP /farm; serf: the RPC members call); an outcome is timed when the answer that completes it arrives, so times are late by up to one poll interval plus a poll's round trip.\n\n");

        void Header(string first)
        {
            s.Append(Inv, $"| members | {first} |");
            foreach (var x in systems)
            {
                s.Append(Inv, $" {MembershipSettings.Name(x)} |");
            }

            if (withSerf)
            {
                foreach (var x in ours)
                {
                    s.Append(Inv, $" {x} / serf |");
                }
            }

            s.Append("\n|---:|---|").Append(string.Concat(Enumerable.Repeat("---:|", systems.Count + (withSerf ? ours.Count : 0)))).Append('\n');
        }

        void Row(int size, string what, Func<MembershipResult, double?> value, string format, bool ratio = true)
        {
            s.Append(Inv, $"| {size} | {what} |");
            foreach (var x in systems)
            {
                var v = Find(x, size) is { } r ? value(r) : null;
                s.Append(' ').Append(v is { } d ? d.ToString(format, Inv) : "—").Append(" |");
            }

            if (withSerf)
            {
                var serf = !ratio ? null : Find("serf", size) is { } sr ? value(sr) : null;
                foreach (var x in ours)
                {
                    var v = Find(x, size) is { } r ? value(r) : null;
                    s.Append(' ').Append(v is { } a && serf is { } b && b > 0 ? (a / b).ToString("0.00", Inv) : "—").Append(" |");
                }
            }

            s.Append('\n');
        }

        s.Append("Times, in milliseconds:\n\n");
        Header("measure");
        foreach (var size in Settings.Sizes)
        {
            Row(size, "join: from starting N−1 processes (the seed already up) until all see all alive", r => r.Join?.TotalMilliseconds, "0");
            Row(size, "… of which: until the last process was up (membership started)", r => r.LastReady?.TotalMilliseconds, "0");
            Row(size, "the seed (already running) sees all alive", r => r.SeedSeesAll?.TotalMilliseconds, "0");
            Row(size, "status change (users 0 → 1) seen by all", r => r.Status?.TotalMilliseconds, "0");
            Row(size, "kill -9 known by all others (dead / failed)", r => r.Death?.TotalMilliseconds, "0");
            Row(size, "(other work on the machine meanwhile, cores: join and status)", r => r.OtherCoresJoin, "0.00", ratio: false);
        }

        s.Append("\nSlowest view at the join: ");
        s.AppendJoin("; ", Results.Select(r => $"{MembershipSettings.Name(r.System)}, {r.Size} members: {r.SlowestObserver}"));
        s.Append('\n');

        s.Append(Inv, $"\nAt rest, per member and second, over {Settings.Rest.TotalSeconds:0.#} s after a {Settings.Settle.TotalSeconds:0.#} s settling pause, with polling stopped (packets and bytes counted by nftables on the gossip port, bytes as whole IP packets; CPU from /proc):\n\n");
        Header("measure");
        foreach (var size in Settings.Sizes)
        {
            Row(size, "packets sent (UDP + TCP)", r => r.PacketsPerSecond, "0.00");
            Row(size, "… of which TCP (full-state exchanges)", r => r.TcpPackets, "0.00");
            Row(size, "bytes sent", r => r.Bytes, "0");
            Row(size, "self-reported packets (/metrics)", r => r.SelfPackets, "0.00");
            Row(size, "self-reported payload bytes (/metrics)", r => r.SelfBytes, "0");
            Row(size, "CPU ms per second", r => r.CpuMillis, "0.0");
            Row(size, "(other work on the machine meanwhile, cores)", r => r.OtherCoresRest, "0.00", ratio: false);
        }

        var faults = Results.Where(r => r.Faults).ToList();
        if (faults.Count > 0)
        {
            s.Append(Inv, $"\nFalse dead verdicts: members other than the killed one shown dead (serf: failed) by any member, during each fault and {Settings.AfterFault.TotalSeconds:0} s after it. SIGSTOP: one member stopped {Settings.Pause.TotalSeconds:0.#} s. CPU: {CpuHog.Describe(Settings.Hogs)}, for {Settings.Saturation.TotalSeconds:0.#} s. Suspect verdicts are shown by StreamFarm only (serf's members list has no suspect state).\n\n");
            s.Append("| members | system | SIGSTOP: members shown dead (dead verdicts) | SIGSTOP: suspect verdicts | CPU: members shown dead (dead verdicts) | CPU: suspect verdicts | dead verdicts at other times | unanswered polls / polls |\n");
            s.Append("|---:|---|---:|---:|---:|---:|---:|---:|\n");
            foreach (var r in faults)
            {
                s.Append(Inv, $"| {r.Size} | {MembershipSettings.Name(r.System)} | {MembershipResult.DeadMembers(r.PauseVerdicts)} ({r.PauseVerdicts.Count(v => v.Liveness == "dead")}) | {r.PauseVerdicts.Count(v => v.Liveness == "suspect")} | {MembershipResult.DeadMembers(r.SaturationVerdicts)} ({r.SaturationVerdicts.Count(v => v.Liveness == "dead")}) | {r.SaturationVerdicts.Count(v => v.Liveness == "suspect")} | {r.OtherVerdicts.Count(v => v.Liveness == "dead") + r.EarlyVerdictsOnVictim.Count(v => v.Liveness == "dead")} | {r.PollFailures} / {r.Polls + r.PollFailures} |\n");
            }

            s.Append('\n');
            foreach (var r in faults)
            {
                Details(s, r, $"SIGSTOP of {r.PausedMember}", r.PauseVerdicts);
                Details(s, r, $"CPU saturation of {r.SaturatedMember}", r.SaturationVerdicts);
            }
        }

        var other = Results.Where(r => r.OtherVerdicts.Count > 0 || r.EarlyVerdictsOnVictim.Count > 0).ToList();
        foreach (var r in other)
        {
            Details(s, r, "outside the fault windows (seconds since the scenario began)", [.. r.OtherVerdicts, .. r.EarlyVerdictsOnVictim]);
        }

        s.Append("\nCommands (one member each; the key is random per run):\n\n");
        foreach (var r in Results.GroupBy(r => r.System).Select(g => g.Last()))
        {
            s.Append(Inv, $"- {MembershipSettings.Name(r.System)}: `{r.Command}`\n");
        }

        var problems = Notes.Concat(Results.SelectMany(r => r.Problems.Select(p => $"{MembershipSettings.Name(r.System)}, {r.Size} members: {p}"))).ToList();
        if (problems.Count > 0)
        {
            s.Append("\nProblems:\n\n");
            foreach (var p in problems)
            {
                s.Append("- ").Append(p).Append('\n');
            }
        }

        return s.ToString();
    }

    public void WriteJson(Stream stream)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("started", Started);
        w.WriteString("machine", Machine);
        w.WriteString("serf", SerfVersion);
        w.WriteNumber("pollIntervalMs", Settings.PollInterval.TotalMilliseconds);
        w.WriteNumber("restSeconds", Settings.Rest.TotalSeconds);
        w.WriteStartArray("results");
        foreach (var r in Results)
        {
            w.WriteStartObject();
            w.WriteString("system", r.System);
            w.WriteNumber("members", r.Size);
            w.WriteString("command", r.Command);
            Number(w, "lastReadyMs", r.LastReady?.TotalMilliseconds);
            Number(w, "joinMs", r.Join?.TotalMilliseconds);
            Number(w, "seedSeesAllMs", r.SeedSeesAll?.TotalMilliseconds);
            w.WriteString("slowestView", r.SlowestObserver);
            Number(w, "statusMs", r.Status?.TotalMilliseconds);
            Number(w, "deathMs", r.Death?.TotalMilliseconds);
            Number(w, "udpPacketsPerMemberSecond", r.UdpPackets);
            Number(w, "tcpPacketsPerMemberSecond", r.TcpPackets);
            Number(w, "bytesPerMemberSecond", r.Bytes);
            Number(w, "selfReportedPacketsPerMemberSecond", r.SelfPackets);
            Number(w, "selfReportedBytesPerMemberSecond", r.SelfBytes);
            Number(w, "cpuMsPerMemberSecond", r.CpuMillis);
            Number(w, "otherCoresJoin", r.OtherCoresJoin);
            Number(w, "otherCoresRest", r.OtherCoresRest);
            w.WriteBoolean("faults", r.Faults);
            Verdicts(w, "pauseVerdicts", r.PauseVerdicts);
            Verdicts(w, "saturationVerdicts", r.SaturationVerdicts);
            Verdicts(w, "otherVerdicts", [.. r.OtherVerdicts, .. r.EarlyVerdictsOnVictim]);
            w.WriteNumber("polls", r.Polls);
            w.WriteNumber("pollFailures", r.PollFailures);
            w.WriteStringArray("problems", r.Problems);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStringArray("notes", Notes);
        w.WriteEndObject();
    }

    private static void Details(StringBuilder s, MembershipResult r, string what, List<VerdictRecord> verdicts)
    {
        if (verdicts.Count == 0)
        {
            return;
        }

        s.Append(Inv, $"- {MembershipSettings.Name(r.System)}, {r.Size} members, {what}: ");
        s.AppendJoin(", ", verdicts.Take(30).Select(v => string.Create(Inv, $"{v.Observer} showed {v.Member} {v.Liveness} at +{v.AtSeconds:0.00} s")));
        s.Append(verdicts.Count > 30 ? $", … ({verdicts.Count} in all)\n" : "\n");
    }

    private static void Number(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, Math.Round(v, 3));
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void Verdicts(Utf8JsonWriter w, string name, List<VerdictRecord> verdicts)
    {
        w.WriteStartArray(name);
        foreach (var v in verdicts)
        {
            w.WriteStartObject();
            w.WriteNumber("atSeconds", Math.Round(v.AtSeconds, 3));
            w.WriteString("observer", v.Observer);
            w.WriteString("member", v.Member);
            w.WriteString("liveness", v.Liveness);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
