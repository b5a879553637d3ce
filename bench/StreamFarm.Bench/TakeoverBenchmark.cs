using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using StreamFarm.Client;
using StreamFarm.Protocol;

namespace StreamFarm.Bench;

/// <summary>What a takeover run does (<c>./bench.sh takeover</c>).</summary>
public sealed record TakeoverSettings
{
    /// <summary>Owners killed.</summary>
    public int Runs { get; init; } = 20;

    /// <summary>Servers in the farm (3 at least: the killed owner, the subscriber's server, the publisher's).</summary>
    public int Servers { get; init; } = 3;

    /// <summary>The publisher publishes the subject this often.</summary>
    public TimeSpan PublishInterval { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>The membership preset of the servers (lan is the default of <c>streamfarm node</c>).</summary>
    public string Preset { get; init; } = "lan";

    /// <summary>The loopback /24 (DNS on .1, servers on .2..).</summary>
    public string Prefix { get; init; } = "127.0.8";

    /// <summary>Longest wait for the new owner's updates before the run counts as failed.</summary>
    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromSeconds(20);

    public void Validate()
    {
        if (Runs is < 1 or > 1000)
        {
            throw new ArgumentException("runs must be between 1 and 1000");
        }

        if (Servers is < 3 or > 8)
        {
            throw new ArgumentException("servers must be between 3 and 8");
        }

        if (PublishInterval < TimeSpan.FromMilliseconds(1) || PublishInterval > TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException("the publish interval must be between 1 and 1000 ms");
        }

        if (Preset is not ("lan" or "local" or "wan"))
        {
            throw new ArgumentException("the preset is lan, local or wan");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.8");
        }
    }
}

/// <summary>One kill of a subject's owner, seen by a subscriber on another server.</summary>
public sealed record TakeoverRun
{
    public required int Run { get; init; }

    public required string Killed { get; init; }

    public string Subscriber { get; init; } = "";

    public string Publisher { get; init; } = "";

    /// <summary>Wall-clock time of the kill (UTC), to line up with the servers' logs.</summary>
    public string KilledAt { get; init; } = "";

    /// <summary>Milliseconds from just before SIGKILL until the killed server's port refused connections (the kernel's tear-down).</summary>
    public double? GoneMs { get; init; }

    /// <summary>Milliseconds from just before SIGKILL to the new owner's IMAGE at the subscriber.</summary>
    public double? ImageMs { get; init; }

    /// <summary>Milliseconds from just before SIGKILL to the first UPDATE of the new owner's history (updates flow again).</summary>
    public double? UpdateMs { get; init; }

    /// <summary>Whether the subscriber was told STALE in between.</summary>
    public bool Stale { get; init; }

    /// <summary>Consecutive updates of one epoch whose counter did not grow by exactly one (a publication lost without a signal).</summary>
    public int SilentGaps { get; init; }

    /// <summary>Times the counter went back (a subscriber shown an older value).</summary>
    public int WentBack { get; init; }

    /// <summary>Publications the publisher sent during the run that never reached the subscriber (in any message).</summary>
    public long Missing { get; init; }

    /// <summary>What went wrong, line by line (the offending pairs of messages).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    public string? Error { get; init; }
}

/// <summary>
/// kill -9 of a subject's owner while a publisher on one surviving server and a subscriber on
/// another keep going: how long until the subscriber gets the new owner's updates, and whether
/// anything was lost or shown out of order on the way (docs/benchmarks.md, "Owner takeover").
/// </summary>
public static class TakeoverBenchmark
{
    public static async Task<TakeoverReport> RunAsync(TakeoverSettings settings, ServerLauncher launcher, Action<string> log, CancellationToken cancel)
    {
        var report = new TakeoverReport(settings, DateTimeOffset.UtcNow);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        log($"starting {settings.Servers} servers (preset {settings.Preset}) on {settings.Prefix}.2-{settings.Servers + 1}");
        await using var farm = new ClientBenchFarm(launcher, settings.Prefix, settings.Servers, key, log, settings.Preset);
        await farm.StartAsync(cancel);
        report.Setup.AddRange(farm.CommandLines);
        var ids = farm.Ids;
        var ownership = new Ownership(ids);
        for (var run = 1; run <= settings.Runs; run++)
        {
            var victim = ids[(run - 1) % ids.Count];
            var others = ids.Where(i => i != victim).ToList();
            var subAt = others[run % others.Count];
            var pubAt = others[(run + 1) % others.Count];
            var subject = Enumerable.Range(0, 10_000).Select(i => $"/bench/takeover/r{run}-{i}").First(s => ownership.OwnerOf(s) == victim);
            var result = await OneAsync(run, farm, victim, subAt, pubAt, subject, settings, cancel);
            report.Runs.Add(result);
            if (Environment.GetEnvironmentVariable("STREAMFARM_BENCH_LOGS") is { Length: > 0 })
            {
                foreach (var id in others)
                {
                    log($"{id} log after run {run}:\n{farm.RecentOutput(id)}");
                }
            }

            log(result.Error ?? string.Create(CultureInfo.InvariantCulture, $"run {run}: killed owner {victim} at {result.KilledAt}; subscriber at {subAt}: image after {result.ImageMs:0.0} ms, updates after {result.UpdateMs:0.0} ms; stale {result.Stale}, silent gaps {result.SilentGaps}, went back {result.WentBack}, missing {result.Missing}"));
            await farm.RestartAsync(victim, cancel);
            await farm.WaitWholeAsync(cancel);
        }

        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static async Task<TakeoverRun> OneAsync(int run, ClientBenchFarm farm, string victim, string subAt, string pubAt, string subject, TakeoverSettings settings, CancellationToken cancel)
    {
        var seen = new List<(long At, RttpMessage M)>();
        await using var sub = await RttpConnection.ConnectAsync(farm.Ip(subAt), ClientBenchFarm.TcpPort, new RttpConnectionOptions { ClientName = "bench-takeover-sub" }, cancel);
        await sub.SubscribeAsync([subject], cancel);
        var reading = Task.Run(async () =>
        {
            try
            {
                await foreach (var m in sub.Messages.ReadAllAsync(cancel))
                {
                    if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status && m.Subject == subject)
                    {
                        lock (seen)
                        {
                            seen.Add((Stopwatch.GetTimestamp(), m));
                        }
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or RttpConnectionException or System.Threading.Channels.ChannelClosedException)
            {
            }
        }, cancel);

        await using var pub = await RttpConnection.ConnectAsync(farm.Ip(pubAt), ClientBenchFarm.TcpPort, new RttpConnectionOptions { ClientName = "bench-takeover-pub" }, cancel);
        long counter = 0;
        using var metronome = new FailoverMetronome(settings.PublishInterval, () =>
        {
            // On the metronome's own thread: waiting here delays only the next tick.
            var n = Interlocked.Increment(ref counter);
            pub.PublishAsync(subject, [KeyValuePair.Create("n", n.ToString(CultureInfo.InvariantCulture))]).GetAwaiter().GetResult();
        }, "bench-takeover-pub");
        metronome.Start();

        List<(long At, RttpMessage M)> Snapshot()
        {
            lock (seen)
            {
                return [.. seen];
            }
        }

        async Task<bool> WaitAsync(Func<List<(long At, RttpMessage M)>, bool> condition, TimeSpan limit)
        {
            var clock = Stopwatch.StartNew();
            while (!condition(Snapshot()))
            {
                if (clock.Elapsed > limit)
                {
                    return false;
                }

                await Task.Delay(2, cancel);
            }

            return true;
        }

        if (!await WaitAsync(s => s.Count(x => x.M.Kind == RttpMessageKind.Update) >= 50, TimeSpan.FromSeconds(20)))
        {
            return new TakeoverRun { Run = run, Killed = victim, Error = $"run {run}: the subscriber at {subAt} got no updates of {subject} before the kill" };
        }

        var epochBefore = Snapshot().Last(x => x.M.Kind == RttpMessageKind.Update).M.Epoch;
        var killedAt = farm.Kill(victim);
        var killedWall = DateTime.UtcNow;
        var gone = Task.Run(() => GoneAfter(farm.Ip(victim), killedAt), cancel);
        var flowing = await WaitAsync(s => s.Count(x => x.At >= killedAt && x.M.Kind == RttpMessageKind.Update && x.M.Epoch != epochBefore) >= 200, settings.RunTimeout);
        metronome.Dispose();
        var last = Interlocked.Read(ref counter);

        // The last publications arrive (or not): wait for the counter's last value, briefly.
        await WaitAsync(s => s.Count > 0 && N(s[^1].M) >= last, TimeSpan.FromSeconds(5));
        var all = Snapshot();
        var image = all.FirstOrDefault(x => x.At >= killedAt && x.M.Kind == RttpMessageKind.Image && x.M.Epoch != epochBefore);
        var update = all.FirstOrDefault(x => x.At >= killedAt && x.M.Kind == RttpMessageKind.Update && x.M.Epoch != epochBefore);
        var gaps = 0;
        var back = 0;
        var notes = new List<string>();
        var values = new HashSet<long>();
        (ulong Epoch, long N)? prev = null;
        foreach (var (_, m) in all.Where(x => x.M.Kind != RttpMessageKind.Status))
        {
            var n = N(m);
            values.Add(n);
            if (prev is { } p)
            {
                if (n < p.N)
                {
                    back++;
                    notes.Add($"went back: n={p.N} ({p.Epoch}) then {m.Kind} {m.Epoch}/{m.Seq} n={n}");
                }

                if (m.Kind == RttpMessageKind.Update && m.Merged == 1 && m.Epoch == p.Epoch && n != p.N + 1)
                {
                    gaps++;
                    notes.Add($"silent gap: n={p.N} then UPDATE {m.Epoch}/{m.Seq} n={n}");
                }
            }

            prev = (m.Epoch, n);
        }

        var first = all.Where(x => x.M.Kind != RttpMessageKind.Status).Select(x => N(x.M)).DefaultIfEmpty(0).Min();
        var missing = Enumerable.Range(0, (int)Math.Max(0, last - first + 1)).Count(i => !values.Contains(first + i) && !MergedOver(all, first + i));
        var goneMs = await gone;
        return new TakeoverRun
        {
            GoneMs = goneMs,
            Run = run,
            Killed = victim,
            Subscriber = subAt,
            Publisher = pubAt,
            ImageMs = image.M is null ? null : Stopwatch.GetElapsedTime(killedAt, image.At).TotalMilliseconds,
            UpdateMs = update.M is null ? null : Stopwatch.GetElapsedTime(killedAt, update.At).TotalMilliseconds,
            Stale = all.Any(x => x.At >= killedAt && x.M.Kind == RttpMessageKind.Status && x.M.Status == SubjectStatus.Stale),
            SilentGaps = gaps,
            WentBack = back,
            Missing = missing,
            Notes = notes,
            KilledAt = killedWall.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture),
            Error = flowing ? null : $"run {run}: the new owner's updates did not reach the subscriber at {subAt} within {settings.RunTimeout.TotalSeconds:0} s",
        };
    }

    /// <summary>
    /// Milliseconds from the kill until the victim's port refuses connections: the kernel tears a
    /// killed process down (its memory first, then its files and sockets) before peers can know.
    /// Measured with a plain connect every half millisecond; null if not within 5 s.
    /// </summary>
    private static double? GoneAfter(string ip, long killedAt)
    {
        var endPoint = new System.Net.IPEndPoint(System.Net.IPAddress.Parse(ip), ClientBenchFarm.TcpPort);
        while (Stopwatch.GetElapsedTime(killedAt) < TimeSpan.FromSeconds(5))
        {
            using var socket = new System.Net.Sockets.Socket(endPoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                socket.Connect(endPoint);
            }
            catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused)
            {
                return Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds;
            }
            catch (System.Net.Sockets.SocketException)
            {
            }

            Thread.Sleep(TimeSpan.FromMilliseconds(0.5));
        }

        return null;
    }

    // A value absent from the subscriber's lines is not missing if an IMAGE (or merged UPDATE)
    // jumped over it: the image carries the state, and says so.
    private static bool MergedOver(List<(long At, RttpMessage M)> all, long n)
    {
        var after = all.Where(x => x.M.Kind != RttpMessageKind.Status).Select(x => x.M).FirstOrDefault(m => N(m) > n);
        return after is not null && (after.Kind == RttpMessageKind.Image || after.Merged > 1);
    }

    private static long N(RttpMessage m) =>
        m.Fields.FirstOrDefault(f => f.Key == "n").Value is { } text && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1;
}

/// <summary>The results of a takeover run, as Markdown or JSON.</summary>
public sealed class TakeoverReport(TakeoverSettings settings, DateTimeOffset started)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public TakeoverSettings Settings { get; } = settings;

    public DateTimeOffset Started { get; } = started;

    public string LoadAverages { get; set; } = LoadAverage.Now();

    public List<string> Setup { get; } = [];

    public List<TakeoverRun> Runs { get; } = [];

    /// <summary>True when every run worked with nothing lost, reordered or silent.</summary>
    public bool Clean => Runs.Count == Settings.Runs && Runs.All(r => r.Error is null && r.SilentGaps == 0 && r.WentBack == 0);

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        var ok = Runs.Where(r => r.Error is null).ToList();
        var image = LatencySummary.Of(ok.Where(r => r.ImageMs is not null).Select(r => r.ImageMs!.Value));
        var update = LatencySummary.Of(ok.Where(r => r.UpdateMs is not null).Select(r => r.UpdateMs!.Value));
        var updates = ok.Where(r => r.UpdateMs is not null).Select(r => r.UpdateMs!.Value).Order().ToList();
        sb.Append(Inv, $"Owner takeover: {Settings.Runs} kills (kill -9 of a subject's owner, host up), {Settings.Servers} servers, preset {Settings.Preset}, publisher every {Settings.PublishInterval.TotalMilliseconds:0.###} ms, {Started:yyyy-MM-dd HH:mm} UTC, load average (1 min) {LoadAverages}\n\n");
        sb.Append("| measure | runs | median ms | p90 ms | p99 ms | min ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n");
        sb.Append(Inv, $"| kill → new owner's IMAGE at the subscriber | {image.Count} | {image.Median:0.0} | {LatencySummary.Percentile(ok.Where(r => r.ImageMs is not null).Select(r => r.ImageMs!.Value).Order().ToList(), 90):0.0} | {image.P99:0.0} | {image.Min:0.0} | {image.Max:0.0} |\n");
        sb.Append(Inv, $"| kill → first UPDATE of the new owner (updates flow) | {update.Count} | {update.Median:0.0} | {LatencySummary.Percentile(updates, 90):0.0} | {update.P99:0.0} | {update.Min:0.0} | {update.Max:0.0} |\n");
        var goneList = ok.Where(r => r.GoneMs is not null).Select(r => r.GoneMs!.Value).Order().ToList();
        var gone = LatencySummary.Of(goneList);
        sb.Append(Inv, $"| kill → the killed server's port refuses (kernel tear-down; nobody can know sooner) | {gone.Count} | {gone.Median:0.0} | {LatencySummary.Percentile(goneList, 90):0.0} | {gone.P99:0.0} | {gone.Min:0.0} | {gone.Max:0.0} |\n");
        var ours = ok.Where(r => r.GoneMs is not null && r.UpdateMs is not null).Select(r => r.UpdateMs!.Value - r.GoneMs!.Value).Order().ToList();
        var oursS = LatencySummary.Of(ours);
        sb.Append(Inv, $"| port refuses → first UPDATE of the new owner (StreamFarm's part) | {oursS.Count} | {oursS.Median:0.0} | {LatencySummary.Percentile(ours, 90):0.0} | {oursS.P99:0.0} | {oursS.Min:0.0} | {oursS.Max:0.0} |\n");
        sb.Append(Inv, $"\nRuns ok {ok.Count}/{Runs.Count}; silent gaps {Runs.Sum(r => r.SilentGaps)}; counter went back {Runs.Sum(r => r.WentBack)}; publications missing without an IMAGE over them {Runs.Sum(r => r.Missing)}; STALE shown in {Runs.Count(r => r.Stale)} runs.\n");
        foreach (var r in Runs.Where(r => r.Error is not null))
        {
            sb.Append(Inv, $"- {r.Error}\n");
        }

        foreach (var r in Runs)
        {
            foreach (var note in r.Notes.Take(5))
            {
                sb.Append(Inv, $"- run {r.Run}: {note}\n");
            }
        }

        sb.Append("\nSetup:\n\n");
        foreach (var line in Setup)
        {
            sb.Append(Inv, $"- `{line}`\n");
        }

        return sb.ToString();
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public void WriteJson(Stream stream) => JsonSerializer.Serialize(stream, new { Settings, Started, LoadAverages, Setup, Runs }, Indented);
}
