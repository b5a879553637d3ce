using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using StreamFarm.Client;

namespace StreamFarm.Bench;

/// <summary>
/// <c>./bench.sh failover</c>: kill -9 the server a subscriber is on and time how long until
/// the subscriber gets its next message from another server. StreamFarm: a farm of real processes
/// with its DNS system, a publisher sending to every server, one <see cref="FarmClient"/> with the
/// defaults. NATS: a two-server nats-server cluster, the publisher on the server that survives, one
/// NATS.Client.Core connection that knows both servers. The killed server is started again between runs.
/// </summary>
public static class FailoverBenchmark
{
    public const string Subject = "/bench/failover";

    /// <summary>Runs the systems of <paramref name="settings"/> one after the other.</summary>
    public static async Task<FailoverReport> RunAsync(FailoverSettings settings, ServerLauncher streamFarm, string? natsServer, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new FailoverReport(settings, DateTimeOffset.UtcNow, natsServer is null ? "not used" : await NatsFailover.VersionAsync(natsServer, cancel));
        foreach (var system in settings.Systems)
        {
            if (system == "nats" && natsServer is null)
            {
                report.Notes.Add("nats-server was not found: the NATS side was skipped");
                continue;
            }

            try
            {
                report.Sides.Add(system == "streamfarm"
                    ? await RunStreamFarmAsync(settings, streamFarm, log, cancel)
                    : await NatsFailover.RunAsync(settings, natsServer!, log, cancel));
            }
            catch (Exception e) when (e is BenchException or RttpConnectionException or NATS.Client.Core.NatsException or IOException or HttpRequestException)
            {
                report.Notes.Add($"{system}: {e.Message}");
                log($"{system} FAILED: {e.Message}");
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancel);
        }

        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static async Task<FailoverSide> RunStreamFarmAsync(FailoverSettings settings, ServerLauncher launcher, Action<string> log, CancellationToken cancel)
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        log($"StreamFarm: starting {settings.Servers} servers on {settings.Prefix}.2-{settings.Servers + 1} and the DNS system on {settings.Prefix}.1:{ClientBenchFarm.DnsPort}");
        await using var farm = new ClientBenchFarm(launcher, settings.Prefix, settings.Servers, key, log);
        await farm.StartAsync(cancel);
        var side = new FailoverSide { System = "streamfarm" };
        side.Setup.AddRange(farm.CommandLines);

        await using var publisher = new FailoverPublisher(Subject, settings.PublishInterval);
        foreach (var id in farm.Ids)
        {
            await publisher.ConnectAsync(id, farm.Ip(id), ClientBenchFarm.TcpPort, cancel);
        }

        publisher.Start();
        await using var watcher = new FarmClientWatcher(new FarmClient(new FarmClientOptions
        {
            ServiceName = ClientBenchFarm.ServiceName,
            Port = ClientBenchFarm.TcpPort,
            Resolver = farm.Resolver,
            Connection = new RttpConnectionOptions { ClientName = "bench-failover" },
            Standby = settings.Standby,
        }));
        side.Setup.Add($"client: FarmClient, service {ClientBenchFarm.ServiceName} resolved at {farm.DnsEndPoint} (DnsServerResolver), port {ClientBenchFarm.TcpPort}, default selector (power of two choices, active only), default reconnect policy and heartbeat timeout (3 s), standby {settings.Standby.ToString().ToLowerInvariant()}; subscribed to {Subject}");
        await watcher.StartAsync(cancel);

        await WaitReadyAsync(farm, publisher, watcher, settings.Standby != StandbyMode.None, cancel);
        side.Cpu = await CpuSample.TakeAsync(farm.Processes, TimeSpan.FromSeconds(2), cancel);
        log("StreamFarm: " + side.Cpu);
        for (var run = 1; run <= settings.Runs; run++)
        {
            await WaitReadyAsync(farm, publisher, watcher, settings.Standby != StandbyMode.None, cancel);
            var victim = watcher.Client.ServerId ?? throw new BenchException("the client has no server");
            var owner = StreamFarm.Protocol.Ownership.OfTable(watcher.Client.Table)?.OwnerOf(Subject);
            var armed = watcher.Arm(victim);
            armed.KilledAt = farm.Kill(victim);
            FailoverRun result;
            try
            {
                var first = await armed.Done.Task.WaitAsync(settings.RunTimeout, cancel);
                double? live = null;
                try
                {
                    live = Stopwatch.GetElapsedTime(armed.KilledAt, await armed.Live.Task.WaitAsync(TimeSpan.FromSeconds(5), cancel)).TotalMilliseconds;
                }
                catch (TimeoutException)
                {
                    // not live again within 5 s: reported as null
                }

                result = watcher.Describe(run, armed, first, farm.Ip(victim)) with { Owner = owner, LiveAfter = live };
            }
            catch (TimeoutException)
            {
                result = new FailoverRun { Run = run, Killed = victim, Error = $"no message from another server within {settings.RunTimeout.TotalSeconds:0} s", Steps = watcher.StepsSince(armed) };
            }

            side.Runs.Add(result);
            log(result.Milliseconds is { } ms
                ? string.Create(CultureInfo.InvariantCulture, $"StreamFarm run {run}: killed {victim}{(result.OwnerKilled ? " (the owner)" : "")}, first {result.FirstKind} from {result.NewServer} after {ms:0.0} ms ({result.Continuity}, {result.Rounds} round(s), missed {result.Missed}{(result.WentBack ? ", WENT BACK" : "")}), live after {result.LiveAfter:0.0} ms")
                : $"StreamFarm run {run}: killed {victim}: FAILED {result.Error}");

            await farm.RestartAsync(victim, cancel);
            await publisher.ConnectAsync(victim, farm.Ip(victim), ClientBenchFarm.TcpPort, cancel);
        }

        side.PublishRate = publisher.Rate;
        return side;
    }

    /// <summary>Every server up and in every table, DNS handing out all of them, the publisher sending to all, the client receiving (and its standby open, if asked).</summary>
    private static async Task WaitReadyAsync(ClientBenchFarm farm, FailoverPublisher publisher, FarmClientWatcher watcher, bool standby, CancellationToken cancel)
    {
        await farm.WaitWholeAsync(cancel);
        var clock = Stopwatch.StartNew();
        var before = watcher.Received;
        while (farm.Ids.Any(id => publisher.PublishedTo(id) < 20) || watcher.Received < before + 20 || watcher.Client.ServerId is null || (standby && watcher.Client.StandbyServerId is null))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new BenchException($"not ready after 30 s: published {string.Join(", ", farm.Ids.Select(id => $"{id} {publisher.PublishedTo(id)}"))}, client received {watcher.Received - before}, on {watcher.Client.ServerId ?? "no server"}");
            }

            await Task.Delay(10, cancel);
        }
    }
}

/// <summary>
/// Reads a <see cref="FarmClient"/>'s messages and steps, and, once armed with the killed server,
/// catches the first message from any other server.
/// </summary>
internal sealed class FarmClientWatcher : IAsyncDisposable
{
    private readonly List<(long At, ConnectionStep Step)> _steps = [];
    private readonly Dictionary<string, long> _lastN = new(StringComparer.Ordinal);
    private long _maxN = -1;
    private readonly Lock _lock = new();
    private Task _messages = Task.CompletedTask;
    private Task _stepReader = Task.CompletedTask;
    private Armed? _armed;
    private Armed? _live;
    private long _received;

    public FarmClientWatcher(FarmClient client)
    {
        Client = client;
    }

    public FarmClient Client { get; }

    /// <summary>IMAGEs and UPDATEs received so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    public async Task StartAsync(CancellationToken cancel)
    {
        _messages = ReadMessagesAsync();
        _stepReader = ReadStepsAsync();
        await Client.StartAsync(cancel);
        await Client.SubscribeAsync([FailoverBenchmark.Subject], cancel);
    }

    /// <summary>Watches for the first message from a server other than <paramref name="victim"/>.</summary>
    public Armed Arm(string victim)
    {
        lock (_lock)
        {
            var armed = new Armed(victim, _lastN.GetValueOrDefault(victim, -1), Stopwatch.GetTimestamp());
            _armed = armed;
            _live = null;
            return armed;
        }
    }

    public FailoverRun Describe(int run, Armed armed, First first, string victimIp)
    {
        var steps = StepsSince(armed);
        double? lost = null;
        double? resolved = null;
        lock (_lock)
        {
            foreach (var (at, step) in _steps.Where(s => s.At >= armed.ArmedAt && s.At <= first.At))
            {
                var ms = Stopwatch.GetElapsedTime(armed.KilledAt, at).TotalMilliseconds;
                lost ??= step.Kind == StepKind.Lost ? ms : null;
                resolved = step.Kind == StepKind.Resolved ? ms : resolved;
            }
        }

        return new FailoverRun
        {
            LostAfter = lost,
            ResolvedAfter = resolved,
            Run = run,
            Killed = armed.Victim,
            NewServer = first.Server,
            Milliseconds = Stopwatch.GetElapsedTime(armed.KilledAt, first.At).TotalMilliseconds,
            FirstKind = first.Kind == RttpMessageKind.Image ? "IMAGE" : first.Kind.ToString().ToUpperInvariant(),
            Continuity = first.Continuity.ToString(),
            Missed = first.N >= 0 && armed.LastNFromVictim >= 0 ? first.N - armed.LastNFromVictim - 1 : null,
            WentBack = first.N >= 0 && first.N < armed.MaxNBeforeFirst,
            Rounds = steps.Count(s => s.Contains(" Rediscovered:", StringComparison.Ordinal)),
            DnsGaveDead = steps.Count(s => s.Contains(" Resolved: ", StringComparison.Ordinal) && s[(s.IndexOf("-> ", StringComparison.Ordinal) + 3)..].Split(", ").Contains(victimIp)),
            TableChoseDead = steps.Count(s => s.Contains($" Chosen: {armed.Victim}:", StringComparison.Ordinal)),
            Steps = steps,
        };
    }

    /// <summary>The client's steps since the kill, as "+12.3 ms Kind: text".</summary>
    public IReadOnlyList<string> StepsSince(Armed armed)
    {
        lock (_lock)
        {
            return [.. _steps.Where(s => s.At >= armed.ArmedAt).Select(s => string.Create(CultureInfo.InvariantCulture, $"+{Stopwatch.GetElapsedTime(armed.KilledAt, s.At).TotalMilliseconds:0.0} ms {s.Step.Kind}: {s.Step.Text}"))];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await _messages;
        await _stepReader;
    }

    private async Task ReadMessagesAsync()
    {
        try
        {
            await foreach (var m in Client.Messages.ReadAllAsync())
            {
                var at = Stopwatch.GetTimestamp();
                if (m.Message.Kind is not (RttpMessageKind.Image or RttpMessageKind.Update))
                {
                    continue;
                }

                var n = m.Message.Fields.FirstOrDefault(f => f.Key == "n").Value is { } text && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1;
                Interlocked.Increment(ref _received);
                lock (_lock)
                {
                    _lastN[m.Server] = n;
                    if (_armed is { } armed)
                    {
                        if (m.Server == armed.Victim)
                        {
                            armed.LastNFromVictim = n; // already on its way before the kill
                        }
                        else
                        {
                            _armed = null;
                            armed.MaxNBeforeFirst = _maxN;
                            _live = armed;
                            armed.Done.TrySetResult(new First(at, m.Server, m.Message.Kind, m.Continuity, n));
                        }
                    }

                    if (_live is { } waiting && m.Server != waiting.Victim && n > waiting.MaxNBeforeFirst)
                    {
                        _live = null;
                        waiting.Live.TrySetResult(at); // a value the client had not seen: live again
                    }

                    _maxN = Math.Max(_maxN, n);
                }
            }
        }
        catch (Exception e) when (e is RttpConnectionException or OperationCanceledException)
        {
            // the client gave up or was disposed
        }
    }

    private async Task ReadStepsAsync()
    {
        await foreach (var step in Client.Steps.ReadAllAsync())
        {
            // When the client took the step (its own clock), not when this loop got to it: the steps
            // are read on the thread pool, which lags behind the client on a busy machine.
            var lag = DateTimeOffset.UtcNow - step.At;
            var at = Stopwatch.GetTimestamp() - (long)(Math.Max(0, lag.TotalSeconds) * Stopwatch.Frequency);
            lock (_lock)
            {
                _steps.Add((at, step));
                if (_steps.Count > 10_000)
                {
                    _steps.RemoveRange(0, 5_000);
                }
            }
        }
    }

    /// <summary>A watch for one kill.</summary>
    internal sealed class Armed(string victim, long lastN, long armedAt)
    {
        public string Victim { get; } = victim;

        public long ArmedAt { get; } = armedAt;

        public long KilledAt { get; set; } = armedAt;

        public long LastNFromVictim { get; set; } = lastN;

        public TaskCompletionSource<First> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The highest counter the client had seen (from any server) when the first message from another server came.</summary>
        public long MaxNBeforeFirst { get; set; } = -1;

        /// <summary>When a message from another server first carried a counter above <see cref="MaxNBeforeFirst"/>.</summary>
        public TaskCompletionSource<long> Live { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The first message from another server.</summary>
    internal readonly record struct First(long At, string Server, RttpMessageKind Kind, Continuity Continuity, long N);
}
