using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// One scenario of the routes benchmark on one cluster: a publisher on one server, the subscribers
/// split evenly over one or two servers, all on the one subject. Two runs on the same connections:
/// <list type="number">
/// <item>latency: the publisher sends stamped messages (counter and timestamp) at a fixed rate from a
/// thread of its own; every subscriber checks that the counters follow on and keeps receive time minus
/// stamp for the messages stamped inside the measured interval;</item>
/// <item>throughput: batches of identical messages, never more than the flow window ahead of the
/// slowest subscriber (as <see cref="FanoutScenario"/>), deliveries per second and the CPU the three
/// servers used.</item>
/// </list>
/// After each run the publisher stops and every subscriber must get every message; for StreamFarm
/// the servers' route counters show which way the publications went.
/// </summary>
internal sealed class RouteScenario
{
    private readonly RouteCluster _cluster;
    private readonly RouteSettings _settings;
    private readonly RouteServer _publisherServer;
    private readonly IReadOnlyList<RouteServer> _subscriberServers;
    private readonly List<LoadClient> _subscribers = [];
    private readonly List<string> _problems = [];
    private long _published;
    private string? _pacerFailure;
    private TimeSpan? _latencyDrain;
    private TimeSpan? _throughputDrain;

    /// <param name="cluster">the running servers</param>
    /// <param name="layout">which scenario this is</param>
    /// <param name="path">the way a message goes, for the report</param>
    /// <param name="publisher">the publisher's server</param>
    /// <param name="subscriberServers">the servers the subscribers are split over (in equal parts, in this order)</param>
    /// <param name="settings">subscribers, payload, timings</param>
    public RouteScenario(RouteCluster cluster, RouteLayout layout, string path, RouteServer publisher, IReadOnlyList<RouteServer> subscriberServers, RouteSettings settings)
    {
        _cluster = cluster;
        Layout = layout;
        Path = path;
        _publisherServer = publisher;
        _subscriberServers = subscriberServers;
        _settings = settings;
    }

    public RouteLayout Layout { get; }

    public string Path { get; }

    /// <summary>"publisher on r2; 5 subscribers on r1, 5 on r3".</summary>
    public string Placement
    {
        get
        {
            var parts = _subscriberServers.Select((s, k) => $"{SubscribersOn(k)} on {s.Name}");
            return $"publisher on {_publisherServer.Name}; subscribers: {string.Join(", ", parts)}";
        }
    }

    /// <summary>The same scenario with other settings (a shorter, unreported priming run).</summary>
    public RouteScenario With(RouteSettings settings) => new(_cluster, Layout, Path, _publisherServer, _subscriberServers, settings);

    /// <summary>Runs both measurements; failures end up in <see cref="RouteResult.Error"/>, not as exceptions.</summary>
    public async Task<RouteResult> RunAsync(CancellationToken cancel)
    {
        LoadClient? publisher = null;
        try
        {
            var before = _cluster.Kind == ServerKind.StreamFarm ? await _cluster.MetricsAsync(cancel) : null;
            return await MeasureAsync(p => publisher = p, before, cancel);
        }
        catch (Exception e) when (e is BenchException or IOException or System.Net.Sockets.SocketException or TimeoutException)
        {
            var detail = _cluster.Exited() is { } exited ? $"{e.Message} ({exited})" : e.Message;
            return new RouteResult { Server = _cluster.Kind, Layout = Layout, Path = Path, Placement = Placement, Error = detail };
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

    /// <summary>Subscriber i goes to server i × servers / subscribers: how many go to server k.</summary>
    private int SubscribersOn(int k) => Enumerable.Range(0, _settings.Subscribers).Count(i => i * _subscriberServers.Count / _settings.Subscribers == k);

    private async Task<RouteResult> MeasureAsync(Action<LoadClient> keepPublisher, Dictionary<string, Dictionary<string, double>>? before, CancellationToken cancel)
    {
        for (var i = 0; i < _settings.Subscribers; i++)
        {
            var server = _subscriberServers[i * _subscriberServers.Count / _settings.Subscribers];
            var sub = await ConnectAsync(server, $"sub{i + 1}@{server.Name}", cancel);
            _subscribers.Add(sub);
            await sub.SubscribeAsync(_settings.SetupTimeout, cancel);
            if (sub is NatsLoadClient nats)
            {
                await nats.SubscribeProbeAsync(_settings.SetupTimeout, cancel);
            }
        }

        var publisher = await ConnectAsync(_publisherServer, $"pub@{_publisherServer.Name}", cancel);
        keepPublisher(publisher);
        if (_cluster.Kind == ServerKind.Nats)
        {
            await WaitForInterestAsync(publisher, cancel);
        }

        var (atRate, atRateCores, latency, latencyByServer) = await RateRunAsync(publisher, cancel);
        var (throughput, cores) = _settings.LatencyOnly ? (null, new Dictionary<string, double>()) : await ThroughputRunAsync(publisher, cancel);
        foreach (var s in _subscribers.Append(publisher))
        {
            if (s.Failure is not null)
            {
                _problems.Add($"{s.Name}: {s.Failure}");
            }

            if (s.Anomaly is not null)
            {
                _problems.Add($"{s.Name}: {s.Anomaly}");
            }
        }

        var routes = new Dictionary<string, RouteCounters>(StringComparer.Ordinal);
        if (before is not null)
        {
            await Task.Delay(100, cancel); // the last route messages are counted when they arrive
            var after = await _cluster.MetricsAsync(cancel);
            foreach (var s in _cluster.Servers)
            {
                double Delta(string name) => after[s.Name].GetValueOrDefault(name) - before[s.Name].GetValueOrDefault(name);
                routes[s.Name] = new RouteCounters(Delta("streamfarm_route_forwarded_total"), Delta("streamfarm_route_dropped_total"), Delta("streamfarm_messages_in_total"), Delta("streamfarm_messages_out_total"));
            }

            CheckPath(routes);
        }

        if (_cluster.Exited() is { } exited)
        {
            _problems.Add(exited);
        }

        return new RouteResult
        {
            Server = _cluster.Kind,
            Layout = Layout,
            Path = Path,
            Placement = Placement,
            Throughput = throughput,
            ThroughputCoresByServer = cores,
            AtRate = atRate,
            AtRateCoresByServer = atRateCores,
            Latency = latency,
            LatencyBySubscriberServer = latencyByServer,
            Published = Interlocked.Read(ref _published),
            LatencyDrain = _latencyDrain,
            ThroughputDrain = _throughputDrain,
            Routes = routes,
            Problems = _problems.Count > 12 ? [.. _problems.Take(11), $"... and {_problems.Count - 11} more"] : [.. _problems],
        };
    }

    /// <summary>
    /// NATS: publishes probes until each subscriber has one. A subscriber subscribed to the bench
    /// subject before the probe subject, and a route passes interests on in order, so once a probe has
    /// reached every subscriber the publisher's server knows every interest in the bench subject.
    /// </summary>
    private async Task WaitForInterestAsync(LoadClient publisher, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        while (_subscribers.Any(s => ((NatsLoadClient)s).Probes == 0))
        {
            if (clock.Elapsed > _settings.SetupTimeout)
            {
                throw new BenchException($"the subscriptions did not reach {_publisherServer.Name} within {_settings.SetupTimeout.TotalSeconds:0} s: {_subscribers.Count(s => ((NatsLoadClient)s).Probes == 0)} subscriber(s) got no probe");
            }

            await publisher.WriteAsync(NatsLoadClient.ProbeMessage, cancel);
            await Task.Delay(20, cancel);
        }
    }

    /// <summary>Stamped messages at the fixed rate; deliveries and CPU over the measured interval, and the latency of every delivery stamped in it.</summary>
    private async Task<(ScenarioResult Result, Dictionary<string, double> Cores, LatencySummary Latency, Dictionary<string, LatencySummary> ByServer)> RateRunAsync(LoadClient publisher, CancellationToken cancel)
    {
        var capacity = (int)Math.Min(50_000_000, (_settings.Rate * _settings.Duration.TotalSeconds * 1.25) + 1000);
        var recorders = _subscribers.Select(_ => new LatencyRecorder(capacity)).ToArray();
        for (var i = 0; i < recorders.Length; i++)
        {
            _subscribers[i].Attach(recorders[i]);
        }

        var payload = FanoutScenario.Payload(_settings.PayloadBytes);
        var perWrite = Math.Max(1, _settings.Rate / 50); // at most 20 ms worth at once, after a stall
        var buffer = new byte[publisher.MaxStampedLength(payload.Length) * perWrite];
        var rate = (double)_settings.Rate;
        var sent = 0L;
        var clock = Stopwatch.StartNew();

        // On the metronome's thread: sends what is due by now, all stamped with the time of the write.
        void Tick()
        {
            if (Volatile.Read(ref _pacerFailure) is not null)
            {
                return;
            }

            try
            {
                var due = (long)(clock.Elapsed.TotalSeconds * rate) - sent;
                if (due <= 0)
                {
                    return;
                }

                var count = (int)Math.Min(due, perWrite);
                var stamp = Stopwatch.GetTimestamp();
                var length = 0;
                for (var k = 1; k <= count; k++)
                {
                    length += publisher.EncodeStamped(buffer.AsSpan(length), sent + k, stamp, payload);
                }

                publisher.WriteAsync(buffer.AsMemory(0, length), CancellationToken.None).AsTask().GetAwaiter().GetResult();
                sent += count;
                Interlocked.Add(ref _published, count);
            }
            catch (Exception e) when (e is BenchException or IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
            {
                Volatile.Write(ref _pacerFailure, $"{publisher.Name}: {e.Message}");
            }
        }

        Sample start, end;
        var metronome = new FailoverMetronome(TimeSpan.FromMilliseconds(1), Tick, "bench-route-publisher");
        try
        {
            metronome.Start();
            await Task.Delay(_settings.Warmup, cancel);
            var from = Stopwatch.GetTimestamp();
            foreach (var r in recorders)
            {
                r.StartWindow(from);
            }

            start = Snapshot();
            await Task.Delay(_settings.Duration, cancel);
            end = Snapshot();
            var to = Stopwatch.GetTimestamp();
            foreach (var r in recorders)
            {
                r.EndWindow(to);
            }
        }
        finally
        {
            metronome.Dispose();
        }

        if (Volatile.Read(ref _pacerFailure) is { } failure)
        {
            throw new BenchException($"the publisher failed: {failure}");
        }

        _latencyDrain = await DrainAsync("latency run", cancel);
        var latencies = new List<double>(recorders.Length * capacity / 2);
        var byServer = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        for (var i = 0; i < recorders.Length; i++)
        {
            var r = recorders[i];
            _subscribers[i].Attach((LatencyRecorder?)null);
            var server = _subscriberServers[i * _subscriberServers.Count / _settings.Subscribers].Name;
            if (!byServer.TryGetValue(server, out var own))
            {
                byServer[server] = own = [];
            }

            r.CopyMicroseconds(own);
            if (r.Anomaly is { } anomaly)
            {
                _problems.Add($"{_subscribers[i].Name}, latency run: {anomaly}");
            }

            if (r.Last != sent)
            {
                _problems.Add($"{_subscribers[i].Name}, latency run: last counter n={r.Last}, the publisher sent up to n={sent}");
            }

            if (r.Overflow > 0)
            {
                _problems.Add($"{_subscribers[i].Name}, latency run: {r.Overflow} sample(s) did not fit (rate well above --rate?)");
            }
        }

        foreach (var own in byServer.Values)
        {
            latencies.AddRange(own);
        }

        var split = byServer.Count > 1 ? byServer.ToDictionary(b => b.Key, b => LatencySummary.Of(b.Value), StringComparer.Ordinal) : [];
        return (Result(start, end, 0), CoresByServer(start, end), LatencySummary.Of(latencies), split);
    }

    /// <summary>As fast as the slowest subscriber allows (flow window): deliveries and CPU over the measured interval.</summary>
    private async Task<(ScenarioResult? Result, Dictionary<string, double> Cores)> ThroughputRunAsync(LoadClient publisher, CancellationToken cancel)
    {
        var window = new FlowWindow(_settings.Window, _settings.Batch);
        window.Attach(_subscribers);
        var message = publisher.EncodePublish(FanoutScenario.Payload(_settings.PayloadBytes));
        var batch = new byte[message.Length * window.Batch];
        for (var i = 0; i < window.Batch; i++)
        {
            message.CopyTo(batch, i * message.Length);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var publishing = Task.Run(() => window.PublishAsync(publisher, batch, () => Volatile.Read(ref _published), () => Interlocked.Add(ref _published, window.Batch), _settings.StallTimeout, stop.Token, cancel), cancel);
        await FanoutScenario.WhileRunningAsync(publishing, _settings.Warmup, cancel);
        var start = Snapshot();
        await FanoutScenario.WhileRunningAsync(publishing, _settings.Duration, cancel);
        var end = Snapshot();
        await stop.CancelAsync();
        await publishing; // throws if the publisher failed
        _throughputDrain = await DrainAsync("throughput run", cancel);
        return (Result(start, end, window.Waits), CoresByServer(start, end));
    }

    private Dictionary<string, double> CoresByServer(Sample start, Sample end)
    {
        var ticksPerSecond = (double)NativeMethods.ClockTicksPerSecond();
        var seconds = end.Time - start.Time;
        var cores = new Dictionary<string, double>(StringComparer.Ordinal);
        for (var i = 0; i < _cluster.Servers.Count; i++)
        {
            cores[_cluster.Servers[i].Name] = (end.ServerTicks[i] - start.ServerTicks[i]) / ticksPerSecond / seconds;
        }

        return cores;
    }

    /// <summary>
    /// How long the subscribers may go without any of them making progress once publishing stopped
    /// before the drain gives up: a server still delivering is slow, not stuck. (A fixed deadline of
    /// 10 s plus 1 s per million deliveries in flight cut 1:10,000 throughput passes short while the
    /// server was still applying the publisher's last batches at 450,000 deliveries/s.)
    /// </summary>
    private static readonly TimeSpan DrainStall = TimeSpan.FromSeconds(10);

    /// <summary>The longest a drain may take in all, however steady the progress.</summary>
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(180);

    /// <summary>
    /// After a run: waits until every subscriber has every message published so far, and notes those
    /// that do not (<see cref="Drain"/>). Returns how long it took.
    /// </summary>
    private async Task<TimeSpan> DrainAsync(string run, CancellationToken cancel)
    {
        var (took, problem) = await Drain.WaitAsync(_subscribers, Interlocked.Read(ref _published), DrainStall, DrainLimit, cancel);
        if (problem is not null)
        {
            _problems.Add($"{run}: {problem}");
        }

        return took;
    }

    /// <summary>StreamFarm: the route counters must show the path the layout means, and nothing dropped.</summary>
    private void CheckPath(Dictionary<string, RouteCounters> routes)
    {
        var published = Interlocked.Read(ref _published);
        foreach (var (name, c) in routes)
        {
            var expected = Layout == RouteLayout.ThreeHops && name == _publisherServer.Name ? published : 0;
            if (Math.Abs(c.Forwarded - expected) > 0.5)
            {
                _problems.Add($"{name} forwarded {c.Forwarded:0} publication(s) to an owner, expected {expected} for this layout");
            }

            if (c.Dropped > 0)
            {
                _problems.Add($"{name} dropped {c.Dropped:0} publication(s) on the way to an owner");
            }
        }
    }

    private ScenarioResult Result(Sample start, Sample end, long waits)
    {
        var ticksPerSecond = (double)NativeMethods.ClockTicksPerSecond();
        long serverTicks = 0;
        for (var i = 0; i < start.ServerTicks.Length; i++)
        {
            serverTicks += end.ServerTicks[i] - start.ServerTicks[i];
        }

        return new ScenarioResult
        {
            Server = _cluster.Kind,
            Fanout = _settings.Subscribers,
            PayloadBytes = _settings.PayloadBytes,
            Seconds = end.Time - start.Time,
            Deliveries = end.Received - start.Received,
            Published = end.Published - start.Published,
            ServerCpuSeconds = serverTicks / ticksPerSecond,
            BenchCpuSeconds = (end.BenchCpu - start.BenchCpu).TotalSeconds,
            MachineCpuSeconds = (end.MachineTicks - start.MachineTicks) / ticksPerSecond,
            WindowWaits = waits,
        };
    }

    private async Task<LoadClient> ConnectAsync(RouteServer server, string name, CancellationToken cancel) => _cluster.Kind switch
    {
        ServerKind.StreamFarm => await RttpLoadClient.ConnectAsync(server.Endpoint, name, _settings.SetupTimeout, cancel),
        ServerKind.Nats => await NatsLoadClient.ConnectAsync(server.Endpoint, name, _settings.SetupTimeout, cancel),
        _ => throw new InvalidOperationException($"unknown server kind {_cluster.Kind}"),
    };

    private Sample Snapshot()
    {
        long received = 0;
        foreach (var s in _subscribers)
        {
            received += s.Received;
        }

        return new Sample(Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, received, Interlocked.Read(ref _published), _cluster.CpuTicks(), Environment.CpuUsage.TotalTime, MachineCpu.BusyTicks());
    }

    private readonly record struct Sample(double Time, long Received, long Published, long[] ServerTicks, TimeSpan BenchCpu, long MachineTicks);
}
