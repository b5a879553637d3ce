using System.Globalization;
using System.Text.RegularExpressions;

namespace StreamFarm.Bench;

/// <summary>One measured dnsperf run against one server, with the CPU used meanwhile.</summary>
public sealed record DnsPerfResult
{
    public required string Server { get; init; }

    public int Run { get; init; }

    public long Sent { get; init; }

    public long Completed { get; init; }

    public long Lost { get; init; }

    /// <summary>dnsperf's "Response codes" line, e.g. <c>NOERROR 75%, NXDOMAIN 25%</c>.</summary>
    public string ResponseCodes { get; init; } = "";

    public double AverageRequestBytes { get; init; }

    public double AverageResponseBytes { get; init; }

    public double Seconds { get; init; }

    public double QueriesPerSecond { get; init; }

    public double AverageLatencySeconds { get; init; }

    public double MinLatencySeconds { get; init; }

    public double MaxLatencySeconds { get; init; }

    public double LatencyStdDevSeconds { get; init; }

    /// <summary>CPU (user + system) of the server process during the run.</summary>
    public double ServerCpuSeconds { get; init; }

    /// <summary>CPU of dnsperf itself.</summary>
    public double LoadCpuSeconds { get; init; }

    /// <summary>Busy CPU of the whole machine during the run (all cores).</summary>
    public double MachineCpuSeconds { get; init; }

    /// <summary>Why the run could not be measured, or null.</summary>
    public string? Error { get; init; }

    public bool Measured => Error is null && Completed > 0 && Seconds > 0;

    public double LostPercent => Sent > 0 ? 100.0 * Lost / Sent : double.NaN;

    public double ServerCpuMicrosPerQuery => Completed > 0 ? ServerCpuSeconds * 1e6 / Completed : double.NaN;

    public double ServerCores => Seconds > 0 ? ServerCpuSeconds / Seconds : double.NaN;

    /// <summary>Cores busy with neither the server nor dnsperf (kernel work, other processes).</summary>
    public double OtherCores => Seconds > 0 && MachineCpuSeconds > 0 ? Math.Max(0, MachineCpuSeconds - ServerCpuSeconds - LoadCpuSeconds) / Seconds : double.NaN;

    /// <summary>Reads dnsperf's "Statistics:" block.</summary>
    public static DnsPerfResult Parse(string server, int run, string output)
    {
        long Count(string label) => Match($@"{label}:\s+(\d+)") is { } v ? long.Parse(v, CultureInfo.InvariantCulture) : 0;
        double Number(string pattern) => Match(pattern) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : double.NaN;
        string? Match(string pattern) => Regex.Match(output, pattern, RegexOptions.Multiline, TimeSpan.FromSeconds(1)) is { Success: true } m ? m.Groups[1].Value : null;

        var completed = Count("Queries completed");
        return new DnsPerfResult
        {
            Server = server,
            Run = run,
            Sent = Count("Queries sent"),
            Completed = completed,
            Lost = Count("Queries lost"),
            ResponseCodes = Match(@"Response codes:\s+(.+)$")?.Trim() ?? "",
            AverageRequestBytes = Number(@"Average packet size:\s+request (\d+)"),
            AverageResponseBytes = Number(@"Average packet size:\s+request \d+, response (\d+)"),
            Seconds = Number(@"Run time \(s\):\s+([\d.]+)"),
            QueriesPerSecond = Number(@"Queries per second:\s+([\d.]+)"),
            AverageLatencySeconds = Number(@"Average Latency \(s\):\s+([\d.]+)"),
            MinLatencySeconds = Number(@"Average Latency \(s\):\s+[\d.]+ \(min ([\d.]+)"),
            MaxLatencySeconds = Number(@"Average Latency \(s\):.*max ([\d.]+)\)"),
            LatencyStdDevSeconds = Number(@"Latency StdDev \(s\):\s+([\d.]+)"),
            Error = completed > 0 ? null : $"dnsperf completed no query: {Last(output, 400)}",
        };
    }

    private static string Last(string text, int chars) => text.Length <= chars ? text.Trim() : text[^chars..].Trim();
}
