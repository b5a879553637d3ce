using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using NATS.Client.Core;

namespace StreamFarm.Bench;

/// <summary>
/// The NATS side of the failover benchmark: two nats-servers clustered with explicit routes
/// (<c>nats-server -a PREFIX.11 -p 14222 --cluster nats://PREFIX.11:16222 --routes nats://PREFIX.12:16222</c>
/// and the mirror image), a NATS.Client.Core subscriber given both URLs, and a publisher that sends
/// every interval to the server the subscriber is not on (the one that survives: the message reaches
/// the subscriber through the route before the kill, directly after it). kill -9 the subscriber's
/// server, time the first message published after the kill that arrives over the new connection.
/// </summary>
internal static class NatsFailover
{
    private const string Subject = "bench.failover";
    private const int ClientPort = 14222;
    private const int ClusterPort = 16222;

    /// <summary><c>nats-server --version</c> without its name (<c>v2.9.10</c>), or "unknown".</summary>
    public static async Task<string> VersionAsync(string natsServer, CancellationToken cancel)
    {
        try
        {
            var run = await ChildProcess.RunToEndAsync(natsServer, ["--version"], TimeSpan.FromSeconds(5), cancel);
            return run.FirstLine()?.Replace("nats-server: ", "", StringComparison.Ordinal) ?? "unknown";
        }
        catch (BenchException)
        {
            return "unknown";
        }
    }

    public static async Task<FailoverSide> RunAsync(FailoverSettings settings, string natsServer, Action<string> log, CancellationToken cancel)
    {
        var ips = new[] { $"{settings.Prefix}.11", $"{settings.Prefix}.12" };
        var names = new[] { "nats-a", "nats-b" };
        var side = new FailoverSide { System = "nats" };
        log($"NATS: starting a two-server cluster on {ips[0]} and {ips[1]}");
        var servers = new ChildProcess?[2];
        var publishers = new NatsConnection?[2];
        try
        {
            for (var i = 0; i < 2; i++)
            {
                servers[i] = Start(natsServer, names[i], ips[i], ips[1 - i]);
            }

            side.Setup.Add(servers[0]!.CommandLine);
            side.Setup.Add(servers[1]!.CommandLine);
            for (var i = 0; i < 2; i++)
            {
                await servers[i]!.WaitUntilListeningAsync(new IPEndPoint(IPAddress.Parse(ips[i]), ClientPort), TimeSpan.FromSeconds(20), cancel);

                // The publisher's own reconnect is quick (it only has to be back before the next run); the subscriber keeps every default.
                publishers[i] = new NatsConnection(new NatsOpts
                {
                    Url = Url(ips[i]),
                    Name = "bench-publisher-" + names[i],
                    ReconnectWaitMin = TimeSpan.FromMilliseconds(50),
                    ReconnectWaitMax = TimeSpan.FromMilliseconds(200),
                });
                await publishers[i]!.ConnectAsync();
            }

            await using var subscriber = new NatsConnection(new NatsOpts { Url = $"{Url(ips[0])},{Url(ips[1])}", Name = "bench-failover" });
            side.Setup.Add($"client: NATS.Client.Core {typeof(NatsConnection).Assembly.GetName().Version} NatsConnection, Url {Url(ips[0])},{Url(ips[1])}, default options (reconnect: the next server of its shuffled list at once; after a failed attempt ReconnectWaitMin 2 s + up to 100 ms jitter, doubling to 5 s); subscribed to {Subject}");
            var watch = new Watch();
            subscriber.ConnectionDisconnected += (_, e) => watch.Event($"disconnected from {e.Message}");
            subscriber.ReconnectFailed += (_, e) => watch.Event($"reconnect to {e.Message} failed");
            subscriber.ConnectionOpened += (_, e) => watch.Event($"connected to {e.Message}");
            await subscriber.ConnectAsync();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            await using var sub = await subscriber.SubscribeCoreAsync<byte[]>(Subject, cancellationToken: cancel);
            var reader = ReadAsync(sub, subscriber, watch, stop.Token);
            var target = -1;
            var counter = 0L;
            using var metronome = new FailoverMetronome(settings.PublishInterval, Tick, "bench-nats-publisher");
            metronome.Start();
            try
            {
                await WaitReadyAsync(cancel);
                side.Cpu = await CpuSample.TakeAsync([(names[0], servers[0]!), (names[1], servers[1]!)], TimeSpan.FromSeconds(2), cancel);
                log("NATS: " + side.Cpu);
                for (var run = 1; run <= settings.Runs; run++)
                {
                    var on = await WaitReadyAsync(cancel);
                    var victim = on;
                    var armed = watch.Arm(ips[1 - victim]);
                    armed.KilledAt = Stopwatch.GetTimestamp();
                    servers[victim]!.Signal(NativeMethods.SigKill);
                    FailoverRun result;
                    try
                    {
                        var (at, n) = await armed.Done.Task.WaitAsync(settings.RunTimeout, cancel);
                        await Task.Delay(100, cancel); // the client raises its events asynchronously
                        var steps = watch.StepsSince(armed);
                        result = new FailoverRun
                        {
                            Steps = steps,
                            FailedAttempts = steps.Count(x => x.Contains(" failed", StringComparison.Ordinal)),
                            AttemptsAtKilled = steps.Count(x => x.Contains(" failed", StringComparison.Ordinal) && x.Contains(ips[victim], StringComparison.Ordinal)),
                            Run = run,
                            Killed = names[victim],
                            NewServer = names[1 - victim],
                            Milliseconds = Stopwatch.GetElapsedTime(armed.KilledAt, at).TotalMilliseconds,
                            FirstKind = "MSG",
                            Missed = armed.LastN >= 0 ? n - armed.LastN - 1 : null,
                        };
                    }
                    catch (TimeoutException)
                    {
                        result = new FailoverRun { Run = run, Killed = names[victim], Error = $"no message over the new connection within {settings.RunTimeout.TotalSeconds:0} s", Steps = watch.StepsSince(armed) };
                    }

                    side.Runs.Add(result);
                    log(result.Milliseconds is { } ms
                        ? string.Create(CultureInfo.InvariantCulture, $"NATS run {run}: killed {names[victim]}, first message from {result.NewServer} after {ms:0.0} ms (missed {result.Missed})")
                        : $"NATS run {run}: killed {names[victim]}: FAILED {result.Error}");

                    await servers[victim]!.WaitForExitAsync(TimeSpan.FromSeconds(10), cancel);
                    await servers[victim]!.DisposeAsync();
                    servers[victim] = Start(natsServer, names[victim], ips[victim], ips[1 - victim]);
                    await servers[victim]!.WaitUntilListeningAsync(new IPEndPoint(IPAddress.Parse(ips[victim]), ClientPort), TimeSpan.FromSeconds(20), cancel);
                }
            }
            finally
            {
                metronome.Dispose();
                await stop.CancelAsync();
                await reader;
            }

            side.PublishRate = metronome.Rate;
            return side;

            // Publishes to the server the subscriber is not on, every interval: 8 bytes of counter, 8 of Stopwatch timestamp.
            void Tick()
            {
                var t = Volatile.Read(ref target);
                if (t < 0 || publishers[t]!.ConnectionState != NatsConnectionState.Open)
                {
                    return;
                }

                var payload = new byte[16];
                BinaryPrimitives.WriteInt64LittleEndian(payload, Interlocked.Increment(ref counter));
                BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(8), Stopwatch.GetTimestamp());
                var sent = publishers[t]!.PublishAsync(Subject, payload, cancellationToken: CancellationToken.None);
                if (!sent.IsCompletedSuccessfully)
                {
                    sent.AsTask().GetAwaiter().GetResult(); // on the metronome's own thread
                }
            }

            // Both servers up, the subscriber on one, the publisher on the other, messages flowing through the route.
            async Task<int> WaitReadyAsync(CancellationToken token)
            {
                var ready = Stopwatch.StartNew();
                while (true)
                {
                    if (ready.Elapsed > TimeSpan.FromSeconds(30))
                    {
                        throw new BenchException($"NATS not ready after 30 s: subscriber {subscriber.ConnectionState} on {subscriber.ServerInfo?.Host}, publishers {publishers[0]!.ConnectionState}/{publishers[1]!.ConnectionState}; {servers[0]!.RecentOutputText()} / {servers[1]!.RecentOutputText()}");
                    }

                    var host = subscriber.ConnectionState == NatsConnectionState.Open ? subscriber.ServerInfo?.Host : null;
                    var on = Array.IndexOf(ips, host);
                    if (on >= 0 && publishers[1 - on]!.ConnectionState == NatsConnectionState.Open)
                    {
                        Volatile.Write(ref target, 1 - on);
                        var since = Stopwatch.GetTimestamp();
                        var seen = watch.Received;
                        var flowing = Stopwatch.StartNew();
                        while (flowing.Elapsed < TimeSpan.FromSeconds(3) && watch.ReceivedPublishedAfter(since) < 20)
                        {
                            await Task.Delay(10, token);
                        }

                        if (watch.ReceivedPublishedAfter(since) >= 20 && subscriber.ServerInfo?.Host == host && watch.Received > seen)
                        {
                            return on;
                        }
                    }

                    await Task.Delay(50, token);
                }
            }
        }
        finally
        {
            foreach (var p in publishers)
            {
                if (p is not null)
                {
                    await p.DisposeAsync();
                }
            }

            foreach (var s in servers)
            {
                if (s is not null)
                {
                    await s.DisposeAsync();
                }
            }
        }

        static async Task ReadAsync(INatsSub<byte[]> sub, NatsConnection subscriber, Watch watch, CancellationToken token)
        {
            try
            {
                await foreach (var msg in sub.Msgs.ReadAllAsync(token))
                {
                    var at = Stopwatch.GetTimestamp();
                    if (msg.Data is { Length: 16 } data)
                    {
                        watch.OnMessage(at, BinaryPrimitives.ReadInt64LittleEndian(data), BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(8)), subscriber.ServerInfo?.Host);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // stopping
            }
        }
    }

    /// <summary>Starts one nats-server of the cluster; it is killed (kill -9) at the end, as the benchmark kills it.</summary>
    private static ChildProcess Start(string natsServer, string name, string ip, string peer) =>
        ChildProcess.Start(name, natsServer,
        [
            "-a", ip, "-p", ClientPort.ToString(CultureInfo.InvariantCulture), "-n", name,
            "--cluster_name", "bench", "--cluster", $"nats://{ip}:{ClusterPort.ToString(CultureInfo.InvariantCulture)}",
            "--routes", $"nats://{peer}:{ClusterPort.ToString(CultureInfo.InvariantCulture)}",
        ], new ChildProcessOptions { StopGrace = TimeSpan.Zero });

    private static string Url(string ip) => $"nats://{ip}:{ClientPort.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Tracks what the subscriber received; once armed, catches the first message published after the kill that came over the new connection.</summary>
    private sealed class Watch
    {
        private readonly Lock _lock = new();
        private long _received;
        private long _lastN = -1;
        private long _publishedAfterMark;
        private long _mark = long.MaxValue;
        private readonly List<(long At, string Text)> _events = [];
        private Armed? _armed;

        public long Received => Interlocked.Read(ref _received);

        public ValueTask Event(string text)
        {
            lock (_lock)
            {
                _events.Add((Stopwatch.GetTimestamp(), text));
            }

            return ValueTask.CompletedTask;
        }

        public IReadOnlyList<string> StepsSince(Armed armed)
        {
            lock (_lock)
            {
                return [.. _events.Where(e => e.At >= armed.KilledAt).Select(e => string.Create(CultureInfo.InvariantCulture, $"+{Stopwatch.GetElapsedTime(armed.KilledAt, e.At).TotalMilliseconds:0.0} ms {e.Text}"))];
            }
        }

        public Armed Arm(string survivorHost)
        {
            lock (_lock)
            {
                _armed = new Armed(survivorHost, _lastN);
                return _armed;
            }
        }

        /// <summary>Messages received that were published after <paramref name="since"/> (a Stopwatch timestamp); the first call sets the mark.</summary>
        public long ReceivedPublishedAfter(long since)
        {
            lock (_lock)
            {
                if (_mark != since)
                {
                    _mark = since;
                    _publishedAfterMark = 0;
                }

                return _publishedAfterMark;
            }
        }

        public void OnMessage(long at, long n, long publishedAt, string? serverHost)
        {
            Interlocked.Increment(ref _received);
            lock (_lock)
            {
                _lastN = n;
                if (publishedAt >= _mark)
                {
                    _publishedAfterMark++;
                }

                if (_armed is { } armed)
                {
                    // Published after the kill and read after the client took the survivor's INFO:
                    // it came over the new connection, not out of the old socket's buffer.
                    if (publishedAt > armed.KilledAt && serverHost == armed.SurvivorHost)
                    {
                        _armed = null;
                        armed.Done.TrySetResult((at, n));
                    }
                    else
                    {
                        armed.LastN = n;
                    }
                }
            }
        }
    }

    private sealed class Armed(string survivorHost, long lastN)
    {
        public string SurvivorHost { get; } = survivorHost;

        public long KilledAt { get; set; } = long.MaxValue;

        public long LastN { get; set; } = lastN;

        public TaskCompletionSource<(long At, long N)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
