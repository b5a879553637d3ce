using System.Globalization;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// The cost curve of servers per farm (<c>./bench.sh farmsize</c>): the membership benchmark's
/// results over several runs, as median (min–max) per system and farm size, with the ratio of the
/// medians to serf's: gossip at rest per server, convergence times, and the FARM table lines one
/// RTTP client of a StreamFarm server is sent (no serf figure: serf has no clients to tell).
/// </summary>
public static class FarmSizeReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string ToMarkdown(MembershipReport report, string server)
    {
        var settings = report.Settings;
        var ours = settings.Systems.Where(x => x != "serf").ToList();
        var withSerf = settings.Systems.Contains("serf");
        var s = new StringBuilder();
        s.Append(Inv, $"## Servers per farm: cost as the farm grows ({server}; {report.Started:yyyy-MM-dd HH:mm} UTC; median (min–max) over {settings.Runs} run(s))\n\n");
        s.Append(Inv, $"Machine: {report.Machine}. serf: {report.SerfVersion}. Rest: {settings.Rest.TotalSeconds:0} s, no sooner than {settings.MinUptime.TotalSeconds:0} s after the start. Views polled every {settings.PollInterval.TotalMilliseconds:0} ms.\n\n");

        void Table(string title, IReadOnlyList<(string What, Func<MembershipResult, double?> Value, string Format, bool Ratio)> rows, IReadOnlyList<string> systems, bool ratios)
        {
            s.Append(Inv, $"{title}\n\n| servers | measure |");
            foreach (var x in systems)
            {
                s.Append(Inv, $" {MembershipSettings.Name(x)} |");
            }

            var ratioColumns = ratios && withSerf ? ours : [];
            foreach (var x in ratioColumns)
            {
                s.Append(Inv, $" {x} / serf |");
            }

            s.Append("\n|---:|---|").Append(string.Concat(Enumerable.Repeat("---:|", systems.Count + ratioColumns.Count))).Append('\n');
            foreach (var size in settings.Sizes)
            {
                foreach (var (what, value, format, ratio) in rows)
                {
                    s.Append(Inv, $"| {size} | {what} |");
                    foreach (var x in systems)
                    {
                        s.Append(' ').Append(Cell(Values(report, x, size, value), format)).Append(" |");
                    }

                    foreach (var x in ratioColumns)
                    {
                        var a = Median(Values(report, x, size, value));
                        var b = ratio ? Median(Values(report, "serf", size, value)) : null;
                        s.Append(' ').Append(a is { } va && b is { } vb && vb > 0 ? (va / vb).ToString("0.00", Inv) : "—").Append(" |");
                    }

                    s.Append('\n');
                }
            }

            s.Append('\n');
        }

        Table("Gossip at rest, per server and second (kernel counters: whole IP packets, UDP and TCP on the gossip port):",
        [
            ("datagrams (UDP packets)", r => r.UdpPackets, "0.00", true),
            ("TCP packets (full-state exchanges)", r => r.TcpPackets, "0.00", true),
            ("bytes (UDP + TCP)", r => r.Bytes, "0", true),
            ("… of which UDP", r => r.UdpBytes, "0", true),
            ("CPU ms per second", r => r.CpuMillis, "0.00", true),
        ], settings.Systems, ratios: true);

        if (settings.Churn > TimeSpan.Zero)
        {
            Table(string.Create(Inv, $"Under churn: every server's users count changes {settings.ChurnRate:0.#} times a second (up and down by one), per server and second over {settings.Churn.TotalSeconds:0} s (after 1 s of warm-up):"),
            [
                ("users changes made", r => r.ChurnChanges, "0.0", false),
                ("datagrams (UDP packets)", r => r.ChurnWindow?.UdpPackets, "0.00", true),
                ("bytes (UDP + TCP)", r => r.ChurnWindow?.Bytes, "0", true),
                ("bytes per users change (bytes/s ÷ changes/s)", r => r.ChurnWindow?.Bytes / r.ChurnChanges, "0", true),
                ("CPU ms per second", r => r.ChurnWindow?.CpuMillis, "0.00", true),
                ("FARM lines to one client of the seed: bytes/s", r => r.FarmChurn?.BytesPerSecond, "0", false),
                ("… lines/s", r => r.FarmChurn?.LinesPerSecond, "0.0", false),
            ], settings.Systems, ratios: true);
        }

        var convergence = new List<(string, Func<MembershipResult, double?>, string, bool)>
        {
            ("join: from starting N−1 processes (the seed up) until all see all alive, ms", r => Ms(r.Join), "N0", true),
            ("… until the last process was up, ms", r => Ms(r.LastReady), "N0", true),
            ("… the seed sees all alive, ms", r => Ms(r.SeedSeesAll), "N0", true),
            ("status change (users 0 → 1) seen by all, ms", r => Ms(r.Status), "N0", true),
        };
        if (settings.JoinOne)
        {
            convergence.Add(("one more server started until all see it alive, ms", r => Ms(r.JoinOne), "N0", true));
        }

        convergence.Add(("kill -9 known by all others, ms", r => Ms(r.Death), "N0", true));
        Table("Convergence (times are late by up to one poll interval plus a poll's round trip):", convergence, settings.Systems, ratios: true);

        if (settings.FarmClient && ours.Count > 0)
        {
            var farm = new List<(string, Func<MembershipResult, double?>, string, bool)>
            {
                ("whole table (`FARM` block after `WELCOME` or `FARM`), bytes", r => r.FarmTableBytes, "N0", false),
                ("at rest: bytes/s", r => r.FarmRest?.BytesPerSecond, "0.0", false),
                ("at rest: lines/s", r => r.FarmRest?.LinesPerSecond, "0.00", false),
                ("join of N−1 servers (until 2 s after all see all): bytes", r => r.FarmJoin?.Bytes, "N0", false),
                ("… lines", r => r.FarmJoin?.Lines, "N0", false),
                ("… bytes/s over the window", r => r.FarmJoin?.BytesPerSecond, "N0", false),
                ("status change (until 1 s after all see it): bytes", r => r.FarmStatus?.Bytes, "N0", false),
                ("… lines", r => r.FarmStatus?.Lines, "N0", false),
            };
            if (settings.JoinOne)
            {
                farm.Add(("one more server joins (until 1 s after all see it): bytes", r => r.FarmJoinOne?.Bytes, "N0", false));
                farm.Add(("… lines", r => r.FarmJoinOne?.Lines, "N0", false));
            }

            farm.Add(("kill -9 of one server (until 1 s after all know): bytes", r => r.FarmDeath?.Bytes, "N0", false));
            farm.Add(("… lines", r => r.FarmDeath?.Lines, "N0", false));
            Table("FARM table lines one RTTP client of the seed server is sent (no serf figure: serf has no clients):", farm, ours, ratios: false);
        }

        var problems = report.Results.SelectMany(r => r.Problems.Select(p => $"{MembershipSettings.Name(r.System)}, {r.Size} servers, run {r.Run}: {p}")).Concat(report.Notes).ToList();
        if (problems.Count > 0)
        {
            s.Append("Problems:\n\n");
            foreach (var p in problems)
            {
                s.Append("- ").Append(p).Append('\n');
            }

            s.Append('\n');
        }

        var other = report.Results.Select(r => Math.Max(r.OtherCoresJoin ?? 0, Math.Max(r.OtherCoresRest ?? 0, r.ChurnWindow?.OtherCoresRest ?? 0))).DefaultIfEmpty(0).Max();
        s.Append(Inv, $"Other work on the machine (besides the servers and the harness): at most {other:0.00} cores in any join, status, rest or churn phase.\n");
        return s.ToString();
    }

    private static double? Ms(TimeSpan? t) => t?.TotalMilliseconds;

    private static List<double> Values(MembershipReport report, string system, int size, Func<MembershipResult, double?> value) =>
        [.. report.Results.Where(r => r.System == system && r.Size == size).Select(value).OfType<double>().Order()];

    private static double? Median(List<double> sorted) => sorted.Count == 0 ? null : LatencySummary.Percentile(sorted, 50);

    private static string Cell(List<double> sorted, string format)
    {
        if (sorted.Count == 0)
        {
            return "—";
        }

        var median = Median(sorted)!.Value.ToString(format, Inv);
        return sorted.Count == 1 ? median : $"{median} ({sorted[0].ToString(format, Inv)}–{sorted[^1].ToString(format, Inv)})";
    }
}
