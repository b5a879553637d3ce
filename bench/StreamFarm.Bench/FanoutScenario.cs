using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// One fan-out scenario against one running server: N subscribers on one subject (or spread over
/// several, <see cref="FanoutLayout"/>) and one publisher that writes batches of identical messages,
/// never more than the flow window ahead of the slowest subscriber. After a warm-up it measures, over
/// a fixed interval, the messages all subscribers received and the CPU time the server used; then it
/// stops publishing, waits for every subscriber to receive everything, and checks the counts.
/// </summary>
public sealed class FanoutScenario
{
    // After publishing stops, the subscribers get as long as any of them still makes progress (a
    // server that is the bottleneck may still be applying the last window), as in RouteScenario.
    private static readonly TimeSpan DrainStall = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(180);
    private readonly ServerProcess _server;
    private readonly FanoutSettings _settings;
    private readonly FanoutLayout _layout;
    private readonly List<LoadClient> _subscribers = [];
    private long _published; // rounds: one publication to each subject

    public FanoutScenario(ServerProcess server, int fanout, int payloadBytes, FanoutSettings settings, FanoutLayout? layout = null)
    {
        _server = server;
        Fanout = fanout;
        PayloadBytes = payloadBytes;
        _settings = settings;
        _layout = layout ?? new FanoutLayout();
        if (_layout.Subjects < 1 || _layout.ConnectAtOnce < 1)
        {
            throw new ArgumentException("a layout needs at least one subject and one connection at a time");
        }
    }

    /// <summary>Subscriber connections (all subjects together).</summary>
    public int Fanout { get; }

    public int PayloadBytes { get; }

    /// <summary>Payload of ASCII letters (no escaping needed in either protocol).</summary>
    public static byte[] Payload(int size)
    {
        var payload = new byte[size];
        for (var i = 0; i < size; i++)
        {
            payload[i] = (byte)('a' + (i % 26));
        }

        return payload;
    }

    /// <summary>Runs the scenario; failures end up in <see cref="ScenarioResult.Error"/>, not as exceptions.</summary>
    public async Task<ScenarioResult> RunAsync(CancellationToken cancel)
    {
        LoadClient? publisher = null;
        try
        {
            return await MeasureAsync(p => publisher = p, cancel);
        }
        catch (Exception e) when (e is BenchException or IOException or System.Net.Sockets.SocketException or TimeoutException)
        {
            return Failed(e.Message);
        }
        finally
        {
            if (publisher is not null)
            {
                await publisher.DisposeAsync();
            }

            foreach (var s in _subscribers)
            {
                await s.DisposeAsync();
            }

            _subscribers.Clear();
        }
    }

    private async Task<ScenarioResult> MeasureAsync(Action<LoadClient> keepPublisher, CancellationToken cancel)
    {
        var subjects = _layout.Subjects;
        var publisher = await ConnectAsync("pub", cancel);
        keepPublisher(publisher);
        var payload = Payload(PayloadBytes);
        if (_layout.Retained)
        {
            for (var k = 0; k < subjects; k++)
            {
                await publisher.WriteAsync(publisher.EncodePublish(publisher.SubjectAt(k, subjects), payload), cancel);
            }

            await publisher.SyncAsync(_settings.SetupTimeout, cancel);
        }

        if (_layout.PublisherReady is { } ready)
        {
            await ready(cancel);
        }

        var setup = Stopwatch.StartNew();
        await SubscribeAllAsync(subjects, cancel);
        var setupSeconds = setup.Elapsed.TotalSeconds;
        if (_layout.Subscribed is { } subscribed)
        {
            await subscribed(cancel);
        }

        var window = new FlowWindow(_settings.Window, _settings.Batch);
        window.Attach(_subscribers);
        var round = new List<byte>();
        for (var k = 0; k < subjects; k++)
        {
            round.AddRange(publisher.EncodePublish(publisher.SubjectAt(k, subjects), payload));
        }

        var batch = new byte[round.Count * window.Batch];
        for (var i = 0; i < window.Batch; i++)
        {
            round.CopyTo(batch, i * round.Count);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var publishing = Task.Run(() => window.PublishAsync(publisher, batch, () => Volatile.Read(ref _published), () => Interlocked.Add(ref _published, window.Batch), _settings.StallTimeout, stop.Token, cancel), cancel);

        await WhileRunningAsync(publishing, _settings.Warmup, cancel);
        var start = Snapshot();
        await WhileRunningAsync(publishing, _settings.Duration, cancel);
        var end = Snapshot();
        await stop.CancelAsync();
        await publishing; // throws if the publisher failed

        var problems = await DrainAndCheckAsync(publisher, cancel);
        var ticksPerSecond = (double)NativeMethods.ClockTicksPerSecond();
        return new ScenarioResult
        {
            Server = _server.Kind,
            Fanout = Fanout,
            PayloadBytes = PayloadBytes,
            SetupSeconds = setupSeconds,
            Seconds = end.Time - start.Time,
            Deliveries = end.Received - start.Received,
            Published = (end.Published - start.Published) * subjects,
            ServerCpuSeconds = (end.ServerTicks - start.ServerTicks) / ticksPerSecond,
            BenchCpuSeconds = (end.BenchCpu - start.BenchCpu).TotalSeconds,
            MachineCpuSeconds = (end.MachineTicks - start.MachineTicks) / ticksPerSecond,
            WindowWaits = window.Waits,
            Problems = problems,
        };
    }

    /// <summary>
    /// Connects every subscriber and subscribes it (subscriber i to subject i mod subjects),
    /// <see cref="FanoutLayout.ConnectAtOnce"/> at a time; each is kept as soon as it is connected,
    /// so that a failure leaves none open.
    /// </summary>
    private async Task SubscribeAllAsync(int subjects, CancellationToken cancel)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancel); // the first failure stops the others
        var next = -1;
        async Task WorkerAsync()
        {
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < Fanout)
                {
                    var sub = await ConnectAsync($"sub{i + 1}", failed.Token);
                    lock (_subscribers)
                    {
                        _subscribers.Add(sub);
                    }

                    await sub.SubscribeAsync(sub.SubjectAt(i % subjects, subjects), _settings.SetupTimeout, failed.Token);
                }
            }
            catch
            {
                await failed.CancelAsync();
                throw;
            }
        }

        // Workers stopped by another's failure end cancelled, so WhenAll reports the failure itself.
        await Task.WhenAll(Enumerable.Range(0, Math.Min(_layout.ConnectAtOnce, Fanout)).Select(_ => Task.Run(WorkerAsync, cancel)));
    }

    /// <summary>Waits for the interval, ending early (with its exception) if the publisher fails.</summary>
    internal static async Task WhileRunningAsync(Task publishing, TimeSpan interval, CancellationToken cancel)
    {
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        var delay = Task.Delay(interval, cancel);
        if (await Task.WhenAny(publishing, delay) == publishing)
        {
            await publishing;
            throw new BenchException("the publisher stopped early");
        }

        await delay;
    }

    /// <summary>After publishing stopped: waits until every subscriber saw every message, then checks counts.</summary>
    private async Task<List<string>> DrainAndCheckAsync(LoadClient publisher, CancellationToken cancel)
    {
        var problems = new List<string>();
        var published = Volatile.Read(ref _published);
        var (_, drained) = await Drain.WaitAsync(_subscribers, published, DrainStall, DrainLimit, cancel);
        if (publisher.Failure is not null)
        {
            problems.Add($"publisher: {publisher.Failure}");
        }

        if (drained is not null)
        {
            problems.Add(_layout.Subjects > 1 ? $"{drained}, each of its own subject" : drained);
        }

        foreach (var s in _subscribers)
        {
            if (s.Failure is not null)
            {
                problems.Add($"{s.Name}: {s.Failure}");
            }

            if (s.Anomaly is not null)
            {
                problems.Add($"{s.Name}: {s.Anomaly}");
            }
        }

        if (_server.HasExited)
        {
            problems.Add($"the server process exited: {string.Join(" | ", _server.RecentOutput())}");
        }

        // Many subscribers usually fail the same way: keep the report short.
        return problems.Count > 6 ? [.. problems.Take(5), $"... and {problems.Count - 5} more"] : problems;
    }

    private async Task<LoadClient> ConnectAsync(string name, CancellationToken cancel) => _server.Kind switch
    {
        ServerKind.StreamFarm => await RttpLoadClient.ConnectAsync(_server.Endpoint, name, _settings.SetupTimeout, cancel, _settings.Tls),
        ServerKind.Nats => await NatsLoadClient.ConnectAsync(_server.Endpoint, name, _settings.SetupTimeout, cancel, _settings.Tls),
        _ => throw new InvalidOperationException($"unknown server kind {_server.Kind}"),
    };

    private Sample Snapshot()
    {
        long received = 0;
        foreach (var s in _subscribers)
        {
            received += s.Received;
        }

        return new Sample(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, received, Volatile.Read(ref _published), _server.CpuTicks(), Environment.CpuUsage.TotalTime, MachineCpu.BusyTicks());
    }

    private ScenarioResult Failed(string error)
    {
        var detail = _server.HasExited ? $"{error} (the server process exited: {string.Join(" | ", _server.RecentOutput())})" : error;
        return new ScenarioResult { Server = _server.Kind, Fanout = Fanout, PayloadBytes = PayloadBytes, Error = detail };
    }

    private readonly record struct Sample(double Time, long Received, long Published, long ServerTicks, TimeSpan BenchCpu, long MachineTicks);
}
