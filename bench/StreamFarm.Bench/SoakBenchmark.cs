using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using StreamFarm.Client;

namespace StreamFarm.Bench;

/// <summary>What a soak run does (<c>./bench.sh soak</c>).</summary>
public sealed record SoakSettings
{
    /// <summary>How long the churn goes on.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Servers in the farm (the first is never killed and is the one measured).</summary>
    public int Servers { get; init; } = 3;

    /// <summary>Publications per second, over all subjects.</summary>
    public int Rate { get; init; } = 60;

    public int Subjects { get; init; } = 200;

    /// <summary>A peer is killed (and restarted) this often, in turn.</summary>
    public TimeSpan KillEvery { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>The measured server's memory is read this often.</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromSeconds(10);

    public string Preset { get; init; } = "lan";

    public string Prefix { get; init; } = "127.0.23";

    public void Validate()
    {
        if (Duration < TimeSpan.FromSeconds(30) || Duration > TimeSpan.FromHours(24))
        {
            throw new ArgumentException("the duration must be between 30 s and 24 h");
        }

        if (Servers is < 2 or > 8)
        {
            throw new ArgumentException("servers must be between 2 and 8");
        }

        if (Rate is < 1 or > 100_000 || Subjects is < 1 or > 100_000)
        {
            throw new ArgumentException("the rate must be 1 to 100,000 per second and subjects 1 to 100,000");
        }

        if (KillEvery < TimeSpan.FromSeconds(5))
        {
            throw new ArgumentException("kills must be at least 5 s apart");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.23");
        }
    }
}

/// <summary>One reading of the measured server's memory.</summary>
public sealed record SoakSample(double Minutes, double RssMb, double HeapMb, double CommittedMb, long Collections, long FullCollections, int Subjects, int RouteLinks, long Kills);

/// <summary>
/// Memory under churn (issue 11): a farm whose peers are killed with SIGKILL and restarted in turn
/// while a publisher and a subscriber on the one server that stays up keep publishing over many
/// subjects (their owners spread over the farm, so every kill hands subjects over and back). That
/// server's resident memory and managed heap are read from its /metrics; the report fits a line to
/// the second half of the run, where a bounded process is flat and a leak shows as a slope.
/// </summary>
public static class SoakBenchmark
{
    private static readonly string Pad = new('x', 64);

    public static async Task<SoakReport> RunAsync(SoakSettings settings, ServerLauncher launcher, Action<string> log, CancellationToken cancel)
    {
        var report = new SoakReport(settings, DateTimeOffset.UtcNow);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        await using var farm = new ClientBenchFarm(launcher, settings.Prefix, settings.Servers, key, log, settings.Preset);
        await farm.StartAsync(cancel);
        report.Setup.AddRange(farm.CommandLines);
        var measured = farm.Ids[0];
        var peers = farm.Ids.Skip(1).ToList();
        var subjects = Enumerable.Range(0, settings.Subjects).Select(i => $"/soak/s{i}").ToArray();

        await using var sub = await RttpConnection.ConnectAsync(farm.Ip(measured), ClientBenchFarm.TcpPort, new RttpConnectionOptions { ClientName = "bench-soak-sub" }, cancel);
        await sub.SubscribeAsync(subjects, cancel);
        long received = 0;
        var reading = Task.Run(async () =>
        {
            try
            {
                await foreach (var m in sub.Messages.ReadAllAsync(cancel))
                {
                    Interlocked.Increment(ref received);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or RttpConnectionException or System.Threading.Channels.ChannelClosedException)
            {
            }
        }, cancel);

        await using var pub = await RttpConnection.ConnectAsync(farm.Ip(measured), ClientBenchFarm.TcpPort, new RttpConnectionOptions { ClientName = "bench-soak-pub" }, cancel);
        long published = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var publishing = Task.Run(async () =>
        {
            var interval = TimeSpan.FromSeconds(1.0 / settings.Rate);
            var clock = Stopwatch.StartNew();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var n = published;
                    await pub.PublishAsync(subjects[n % subjects.Length], [KeyValuePair.Create("n", n.ToString(CultureInfo.InvariantCulture)), KeyValuePair.Create("pad", Pad)], cancel: stop.Token);
                    published++;
                    var due = interval * published - clock.Elapsed;
                    if (due > TimeSpan.Zero)
                    {
                        await Task.Delay(due, stop.Token);
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or RttpConnectionException)
            {
            }
        }, cancel);

        var run = Stopwatch.StartNew();
        var nextKill = settings.KillEvery;
        var nextSample = TimeSpan.Zero;
        var kills = 0L;
        while (run.Elapsed < settings.Duration)
        {
            if (run.Elapsed >= nextSample)
            {
                nextSample += settings.SampleEvery;
                if (await farm.MetricsAsync(measured, cancel) is { } m)
                {
                    var sample = new SoakSample(
                        Math.Round(run.Elapsed.TotalMinutes, 2),
                        Mb(m, "process_resident_memory_bytes"),
                        Mb(m, "dotnet_gc_heap_size_bytes"),
                        Mb(m, "dotnet_gc_committed_bytes"),
                        (long)m.GetValueOrDefault("dotnet_gc_collections_total"),
                        (long)m.GetValueOrDefault("dotnet_gc_gen2_collections_total"),
                        (int)m.GetValueOrDefault("streamfarm_subjects"),
                        (int)m.GetValueOrDefault("streamfarm_route_links"),
                        kills);
                    report.Samples.Add(sample);
                    log(string.Create(CultureInfo.InvariantCulture, $"{sample.Minutes:0.0} min: RSS {sample.RssMb:0.0} MB, heap {sample.HeapMb:0.0} MB, committed {sample.CommittedMb:0.0} MB, GCs {sample.Collections} (full {sample.FullCollections}), subjects {sample.Subjects}, route links {sample.RouteLinks}, kills {kills}, published {Interlocked.Read(ref published)}, received {Interlocked.Read(ref received)}"));
                }
            }

            if (run.Elapsed >= nextKill)
            {
                nextKill += settings.KillEvery;
                var victim = peers[(int)(kills % peers.Count)];
                farm.Kill(victim);
                kills++;
                await Task.Delay(TimeSpan.FromSeconds(2), cancel);
                await farm.RestartAsync(victim, cancel);
            }

            await Task.Delay(200, cancel);
        }

        await stop.CancelAsync();
        await publishing;
        report.Published = Interlocked.Read(ref published);
        report.Received = Interlocked.Read(ref received);
        report.Kills = kills;
        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static double Mb(Dictionary<string, double> m, string name) => Math.Round(m.GetValueOrDefault(name) / (1024 * 1024), 1);
}

/// <summary>The soak's samples and the fitted slopes, as Markdown or JSON.</summary>
public sealed class SoakReport(SoakSettings settings, DateTimeOffset started)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public SoakSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string LoadAverages { get; set; } = LoadAverage.Now();

    public List<string> Setup { get; } = [];

    public List<SoakSample> Samples { get; } = [];

    public long Published { get; set; }

    public long Received { get; set; }

    public long Kills { get; set; }

    /// <summary>Least-squares slope (MB per minute) of a series over the second half of the run.</summary>
    public double SlopeOfSecondHalf(Func<SoakSample, double> value)
    {
        var half = Samples.Where(s => s.Minutes >= Settings.Duration.TotalMinutes / 2).ToList();
        if (half.Count < 3)
        {
            return double.NaN;
        }

        var mx = half.Average(s => s.Minutes);
        var my = half.Average(value);
        var sxx = half.Sum(s => (s.Minutes - mx) * (s.Minutes - mx));
        return sxx == 0 ? double.NaN : half.Sum(s => (s.Minutes - mx) * (value(s) - my)) / sxx;
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"Soak: {Settings.Duration.TotalMinutes:0.#} min, {Settings.Servers} servers (preset {Settings.Preset}), peers killed with SIGKILL and restarted every {Settings.KillEvery.TotalSeconds:0} s in turn ({Kills} kills), {Settings.Rate} publications/s over {Settings.Subjects} subjects (publisher and subscriber on the server measured), {Started:yyyy-MM-dd HH:mm} UTC, load average (1 min) {LoadAverages}\n\n");
        sb.Append(Inv, $"Published {Published}, subscriber received {Received} messages.\n\n");
        sb.Append("| minute | RSS MB | managed heap MB (after last GC) | GC committed MB | GCs (full) | subjects | route links | kills so far |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        var every = Math.Max(1, Samples.Count / 20);
        foreach (var s in Samples.Where((_, i) => i % every == 0 || i == Samples.Count - 1))
        {
            sb.Append(Inv, $"| {s.Minutes:0.0} | {s.RssMb:0.0} | {s.HeapMb:0.0} | {s.CommittedMb:0.0} | {s.Collections} ({s.FullCollections}) | {s.Subjects} | {s.RouteLinks} | {s.Kills} |\n");
        }

        sb.Append(Inv, $"\nSlope over the second half (least squares): RSS {SlopeOfSecondHalf(s => s.RssMb):0.000} MB/min, managed heap {SlopeOfSecondHalf(s => s.HeapMb):0.000} MB/min, GC committed {SlopeOfSecondHalf(s => s.CommittedMb):0.000} MB/min.\n");
        sb.Append("\nSetup:\n\n");
        foreach (var line in Setup)
        {
            sb.Append(Inv, $"- `{line}`\n");
        }

        return sb.ToString();
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void WriteJson(Stream stream) => JsonSerializer.Serialize(stream, new
    {
        Settings,
        Started,
        LoadAverages,
        Setup,
        Published,
        Received,
        Kills,
        RssSlopeMbPerMin = SlopeOfSecondHalf(s => s.RssMb),
        HeapSlopeMbPerMin = SlopeOfSecondHalf(s => s.HeapMb),
        Samples,
    }, Indented);
}
