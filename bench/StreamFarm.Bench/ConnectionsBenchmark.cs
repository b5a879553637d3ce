using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>Settings of <c>./bench.sh connections</c>.</summary>
public sealed record ConnectionsSettings
{
    /// <summary>Subscribed connections per server, one fresh server per size.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [1_000, 2_000, 5_000, 10_000, 18_000];

    public int Runs { get; init; } = 3;

    /// <summary>Subjects the connections are spread over (connection i takes subject i mod this).</summary>
    public int Subjects { get; init; } = 100;

    public int PayloadBytes { get; init; } = 16;

    /// <summary>Publishing before the measured interval.</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The measured interval.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most rounds (one publication to each subject) the publisher is ahead of the slowest subscriber.</summary>
    public int Window { get; init; } = 50;

    /// <summary>Rounds per publisher write.</summary>
    public int Batch { get; init; } = 5;

    /// <summary>Seconds a fresh server is left alone (its publisher connected, the subjects' values in) before its RSS at rest is read.</summary>
    public double RestSeconds { get; init; } = 5;

    /// <summary>Subscribers connecting and subscribing at once.</summary>
    public int ConnectAtOnce { get; init; } = 16;

    /// <summary>The loopback /24: each system on its own address (.1, .2, ...).</summary>
    public string Prefix { get; init; } = "127.0.81";

    /// <summary>Sockets the load generator keeps besides the subscribers' (the publisher, the runtime's own files).</summary>
    public const int Headroom = 1_000;

    /// <summary>Checks the settings against this process's open-file limit; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate(long openFileLimit)
    {
        if (Sizes.Count == 0 || Sizes.Any(n => n < Subjects))
        {
            throw new ArgumentException($"--sizes: every size must be at least the number of subjects ({Subjects})");
        }

        // Each subscriber is a socket here and one in the server (which inherits this limit).
        if (Sizes.Max() > openFileLimit - Headroom)
        {
            throw new ArgumentException($"--sizes: {Sizes.Max():N0} connections do not fit under this process's open-file limit of {openFileLimit:N0} with {Headroom:N0} to spare (ulimit -n)");
        }

        if (Runs < 1 || Subjects < 1 || PayloadBytes is < 1 or > 8192 || RestSeconds < 0 || ConnectAtOnce < 1)
        {
            throw new ArgumentException("--runs, the subjects and the payload size must be positive (payload at most 8192 bytes)");
        }

        if (Duration <= TimeSpan.Zero || Warmup < TimeSpan.Zero)
        {
            throw new ArgumentException("--duration must be positive and --warmup not negative");
        }

        if (Window < 1 || Batch < 1 || Batch > Window)
        {
            throw new ArgumentException("--window must be at least 1 and the batch between 1 and the window");
        }
    }
}

/// <summary>A server the connections benchmark runs: its name in the report, its kind, and how it is started (nats-server: the program alone).</summary>
public sealed record ConnectionsSystem(string Name, ServerKind Kind, ServerLauncher Launcher);

/// <summary>One server at one size in one run: its memory and the fan-out it carried.</summary>
/// <param name="System">As in the report.</param>
/// <param name="Connections">Subscribed connections.</param>
/// <param name="Run">Which run (1, 2, ...).</param>
/// <param name="RestKiB">RSS at rest, the publisher connected and the subjects' values in.</param>
/// <param name="SubscribedKiB">RSS once every connection was subscribed and <see cref="ConnectionMemory.Settle"/> passed, or null if they never were.</param>
/// <param name="IdleServerCores">The server's CPU while the subscribed connections sat idle (the settling before the RSS was read), in cores.</param>
/// <param name="IdleBenchCores">The load generator's CPU in the same interval (answering the server's keep-alive PINGs), in cores.</param>
/// <param name="Load">The fan-out measured right after.</param>
public sealed record ConnectionsRun(string System, int Connections, int Run, long RestKiB, long? SubscribedKiB, double IdleServerCores, double IdleBenchCores, ScenarioResult Load)
{
    public double? KiBPerConnection => SubscribedKiB is { } s ? (s - RestKiB) / (double)Connections : null;

    public bool Clean => SubscribedKiB is not null && Load.Measured && Load.Problems.Count == 0;
}

/// <summary>
/// How a server's cost grows with the subscribed connections it holds (issue 16): for each size N,
/// a fresh server of each system (alternating, a different one first each time) gets a publisher
/// that gives each of <see cref="ConnectionsSettings.Subjects"/> subjects a value, rests, then N
/// connections that each subscribe to one subject (connection i to subject i mod subjects, so each
/// subject has N/subjects subscribers); its RSS per connection is read as <c>footprint</c> reads it
/// (<see cref="ConnectionMemory"/>). Then the publisher writes rounds of one small publication to
/// every subject, never more than the window of rounds ahead of the slowest subscriber
/// (<see cref="FanoutScenario"/> with a <see cref="FanoutLayout"/>), and after a warm-up the
/// deliveries per second and the server's CPU per delivery are measured.
/// </summary>
public static class ConnectionsBenchmark
{
    public static async Task<List<ConnectionsRun>> RunAsync(ConnectionsSettings s, IReadOnlyList<ConnectionsSystem> systems, TextWriter progress, CancellationToken cancel)
    {
        var runs = new List<ConnectionsRun>();
        var turn = 0;
        for (var run = 1; run <= s.Runs; run++)
        {
            foreach (var n in s.Sizes)
            {
                turn++;
                for (var i = 0; i < systems.Count; i++)
                {
                    var index = (i + turn) % systems.Count; // a different one goes first each time
                    var result = await MeasureAsync(s, systems[index], index, n, run, cancel);
                    runs.Add(result);
                    progress.WriteLine(Describe(result));
                    await Task.Delay(1000, cancel); // the closed connections' work (and TIME_WAIT bookkeeping) is over before the next server starts
                }
            }
        }

        return runs;
    }

    private static async Task<ConnectionsRun> MeasureAsync(ConnectionsSettings s, ConnectionsSystem system, int index, int n, int run, CancellationToken cancel)
    {
        var ip = IPAddress.Parse($"{s.Prefix}.{(index + 1).ToString(CultureInfo.InvariantCulture)}");
        await using var server = system.Kind == ServerKind.StreamFarm
            ? await ServerProcess.StartStreamFarmAsync(system.Launcher, ip, cancel)
            : await ServerProcess.StartNatsAsync(system.Launcher.FileName, ip, cancel);
        var memory = new ConnectionMemory(server);
        double idleServerCores = 0, idleBenchCores = 0;
        var settings = new FanoutSettings
        {
            Warmup = s.Warmup,
            Duration = s.Duration,
            Window = s.Window,
            Batch = s.Batch,
        };
        var layout = new FanoutLayout
        {
            Subjects = s.Subjects,
            Retained = true,
            ConnectAtOnce = s.ConnectAtOnce,
            PublisherReady = c => memory.AtRestAsync(TimeSpan.FromSeconds(s.RestSeconds), c),
            Subscribed = async c =>
            {
                var (serverTicks, benchCpu, clock) = (server.CpuTicks(), Environment.CpuUsage.TotalTime, Stopwatch.StartNew());
                await memory.SubscribedAsync(n, c);
                var seconds = clock.Elapsed.TotalSeconds;
                idleServerCores = (server.CpuTicks() - serverTicks) / (double)NativeMethods.ClockTicksPerSecond() / seconds;
                idleBenchCores = (Environment.CpuUsage.TotalTime - benchCpu).TotalSeconds / seconds;
            },
        };
        var load = await new FanoutScenario(server, n, s.PayloadBytes, settings, layout).RunAsync(cancel);
        await server.StopAsync();
        return new ConnectionsRun(system.Name, n, run, memory.RestKiB, memory.SubscribedKiB, idleServerCores, idleBenchCores, load);
    }

    /// <summary>This process's limit of open files (the servers it starts inherit it), from /proc/self/limits.</summary>
    public static long OpenFileLimit()
    {
        foreach (var line in File.ReadLines("/proc/self/limits"))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : long.MaxValue;
            }
        }

        return long.MaxValue;
    }

    private static string Describe(ConnectionsRun r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.System}, {r.Connections:N0} connections, run {r.Run}: {(r.KiBPerConnection is { } k ? $"{k:0.0} KiB per subscribed connection" : "memory not measured")} (set up in {r.Load.SetupSeconds:0.0} s; idle: server {r.IdleServerCores:0.00} cores, load generator {r.IdleBenchCores:0.00}); {BenchReport.Describe(r.Load)}");

    public static string Report(IReadOnlyList<ConnectionsRun> runs, ConnectionsSettings s, string natsVersion)
    {
        var inv = CultureInfo.InvariantCulture;
        var nats = runs.Select(r => r.System).FirstOrDefault(n => n.StartsWith("nats-server", StringComparison.Ordinal));
        var systems = runs.Select(r => r.System).Distinct().OrderBy(n => n == nats).ToList(); // the baseline last
        var groups = (from n in s.Sizes
                      from system in systems
                      let g = runs.Where(r => r.Connections == n && r.System == system).ToList()
                      where g.Count > 0
                      select (n, system, g, Measured: g.Where(r => r.Load.Measured).ToList())).ToList();
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"## Subscribed connections per server: memory and fan-out throughput ({s.Runs} run(s), median (min–max))");
        sb.AppendLine();
        sb.AppendLine(inv, $"{RuntimeInformation.OSDescription}, {Environment.ProcessorCount} cores, {RuntimeInformation.FrameworkDescription}; {natsVersion}. Connection i subscribes to subject i mod {s.Subjects}; the publisher writes rounds of one {s.PayloadBytes} B publication to each subject, at most {s.Window} rounds ahead of the slowest subscriber, {s.Batch} rounds per write; {s.Warmup.TotalSeconds:0.#} s warm-up, {s.Duration.TotalSeconds:0.#} s measured. Memory: RSS {ConnectionMemory.Settle.TotalSeconds:0} s after the last subscription, less the RSS at rest ({s.RestSeconds:0.#} s after the publisher set the subjects' values), per connection. Ratios (×{nats ?? "NATS"}): the median of each run's ratio at that size.");
        sb.AppendLine();
        sb.AppendLine("| connections | server | KiB per subscribed connection | × | deliveries/s | × | server CPU µs per delivery | × | server cores | load generator: cores, µs per delivery |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (n, system, g, measured) in groups)
        {
            sb.AppendLine(inv,
                $"| {n:N0} | {system} | {S(g.Where(r => r.KiBPerConnection is not null), r => r.KiBPerConnection!.Value, "0.0")} | {Ratio(runs, system, nats, n, r => r.KiBPerConnection)} | {S(measured, r => r.Load.DeliveriesPerSecond, "N0")} | {Ratio(runs, system, nats, n, r => r.Load.Measured ? r.Load.DeliveriesPerSecond : null)} | {S(measured, r => r.Load.ServerCpuMicrosPerDelivery, "0.000")} | {Ratio(runs, system, nats, n, r => r.Load.Measured ? r.Load.ServerCpuMicrosPerDelivery : null)} | {S(measured, r => r.Load.ServerCores, "0.00")} | {S(measured, r => r.Load.BenchCores, "0.00")}, {S(measured, r => r.Load.BenchCpuMicrosPerDelivery, "0.000")} |");
        }

        sb.AppendLine();
        sb.AppendLine("Details (medians): RSS at rest and with the connections; the time to connect and subscribe them all; the CPU of the server and of the load generator while the connections sat idle before the RSS was read; what the publisher sent; CPU taken by anything but the server and the load generator while measuring; the publisher's waits for the slowest subscriber.");
        sb.AppendLine();
        sb.AppendLine("| connections | server | RSS at rest, MiB | RSS subscribed, MiB | connect and subscribe, s | idle: server cores | idle: load generator cores | published/s | other cores | publisher waits | clean runs |");
        sb.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (n, system, g, measured) in groups)
        {
            sb.AppendLine(inv,
                $"| {n:N0} | {system} | {M(g, r => r.RestKiB / 1024.0, "0.0")} | {M(g.Where(r => r.SubscribedKiB is not null), r => r.SubscribedKiB!.Value / 1024.0, "0.0")} | {M(g.Where(r => r.SubscribedKiB is not null), r => r.Load.SetupSeconds, "0.0")} | {M(g.Where(r => r.SubscribedKiB is not null), r => r.IdleServerCores, "0.00")} | {M(g.Where(r => r.SubscribedKiB is not null), r => r.IdleBenchCores, "0.00")} | {M(measured, r => r.Load.Published / r.Load.Seconds, "N0")} | {M(measured, r => r.Load.OtherCores, "0.00")} | {M(measured, r => r.Load.WindowWaits, "N0")} | {g.Count(r => r.Clean)} of {g.Count} |");
        }

        var problems = runs.Where(r => !r.Clean).ToList();
        if (problems.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Problems:");
            sb.AppendLine();
            foreach (var r in problems)
            {
                sb.AppendLine(inv, $"- {r.System}, {r.Connections:N0} connections, run {r.Run}: {r.Load.Error ?? string.Join("; ", r.Load.Problems)}");
            }
        }

        return sb.ToString();
    }

    /// <summary>The median over runs of <paramref name="system"/>'s value divided by <paramref name="baseline"/>'s in the same run, with the range.</summary>
    private static string Ratio(IReadOnlyList<ConnectionsRun> runs, string system, string? baseline, int n, Func<ConnectionsRun, double?> value)
    {
        if (baseline is null || system == baseline)
        {
            return baseline is null ? "–" : "1";
        }

        var ratios = new List<double>();
        foreach (var r in runs.Where(r => r.System == system && r.Connections == n))
        {
            var b = runs.FirstOrDefault(x => x.System == baseline && x.Connections == n && x.Run == r.Run);
            if (b is not null && value(r) is double x && value(b) is double y && double.IsFinite(x) && double.IsFinite(y) && y > 0)
            {
                ratios.Add(x / y);
            }
        }

        return ratios.Count == 0 ? "–" : S(ratios, v => v, "0.00");
    }

    private static string M<T>(IEnumerable<T> items, Func<T, double> value, string format)
    {
        var values = items.Select(value).Order().ToList();
        return values.Count == 0 ? "–" : LatencySummary.Percentile(values, 50).ToString(format, CultureInfo.InvariantCulture);
    }

    private static string S<T>(IEnumerable<T> items, Func<T, double> value, string format)
    {
        var values = items.Select(value).Order().ToList();
        if (values.Count == 0)
        {
            return "–";
        }

        var median = LatencySummary.Percentile(values, 50).ToString(format, CultureInfo.InvariantCulture);
        return values.Count == 1 ? median : $"{median} ({values[0].ToString(format, CultureInfo.InvariantCulture)}–{values[^1].ToString(format, CultureInfo.InvariantCulture)})";
    }
}
