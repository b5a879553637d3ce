using System.Threading.Channels;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// A client of a whole farm. It resolves the service name, connects to the first server DNS gives,
/// receives the farm table, chooses the server that will serve it, moves there (make-before-break)
/// and subscribes. When that server fails it tries it once more, then asks for the service again
/// from the start, forever by default. Subscriptions survive every move; each message says from
/// which server it came and whether an image resumed the stream, skipped updates, or began anew.
/// One owned loop does the work (<c>FarmClient.Connect.cs</c>); the application reads
/// <see cref="Messages"/> and <see cref="Steps"/> and is never called back on that loop.
/// </summary>
public sealed partial class FarmClient : IFarmClient
{
    private readonly FarmClientOptions _options;
    private readonly IReconnectPolicy _policy;
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private readonly IRttpConnectionFactory _factory;
    private readonly DeliveryQueue<FarmMessage> _messages;
    private readonly IDataSink _sink;

    // The client's own connections are read by its own loops, which never wait for the application:
    // the overflow policy applies once, to what the application reads.
    private readonly RttpConnectionOptions _ownConnection;
    private readonly Channel<ConnectionStep> _steps = Channel.CreateBounded<ConnectionStep>(new BoundedChannelOptions(1_000) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly HashSet<string> _subjects = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (ulong Epoch, ulong Seq)> _positions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _resubscribed = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _firstConnect = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _loop = Task.CompletedTask;
    private int _disposed;
    private RttpConnection? _connection;
    private FarmSnapshot _table = FarmSnapshot.Empty;

    /// <summary>Creates a client; nothing happens before <see cref="StartAsync"/>.</summary>
    public FarmClient(FarmClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var time = options.Time ?? options.Connection.Time;
        options = options with
        {
            Connection = options.Connection with { Time = time },
            Random = options.Seed is { } seed ? new Random(seed) : options.Random,
        };
        _options = options;
        _logger = (options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("StreamFarm.Client.FarmClient");
        _factory = options.ConnectionFactory ?? TcpRttpConnectionFactory.Instance;
        _policy = options.ReconnectPolicy ?? ExponentialBackoff.Default(options.Random);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxPingsOut, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.HeartbeatTimeout, TimeSpan.Zero);
        // A heartbeat period longer than the servers' default ping interval is asked of them too:
        // they ping this client no more often than its monitor looks (docs/protocol.md, "Keep-alive").
        HeartbeatPeriod = TimeSpan.FromMilliseconds(Math.Max(5, options.HeartbeatTimeout.TotalMilliseconds / options.MaxPingsOut));
        _ownConnection = options.Connection with
        {
            Overflow = OverflowPolicy.Wait,
            Overflowed = null,
            KeepAlive = options.Connection.KeepAlive ?? (HeartbeatPeriod > TimeSpan.FromSeconds(1) ? HeartbeatPeriod : null),
        };
        _messages = new DeliveryQueue<FarmMessage>(options.MessageBuffer, options.Overflow, Conflation.Instance, RaiseOverflowed);
        _sink = new Sink(this);
    }

    /// <summary>How often the heartbeat monitor looks at a connection: <c>HeartbeatTimeout / MaxPingsOut</c>.</summary>
    private TimeSpan HeartbeatPeriod { get; }

    /// <summary>
    /// The application fell behind and <see cref="Messages"/> overflowed (raised once per episode,
    /// on the thread pool, never on the client's loop); <see cref="FarmClientOptions.Overflow"/> says
    /// what was done.
    /// </summary>
    public event EventHandler<OverflowEventArgs>? Overflowed;

    /// <summary>Messages merged into waiting ones because the application fell behind (<see cref="OverflowPolicy.Conflate"/>).</summary>
    public long Conflated
    {
        get
        {
            lock (_lock)
            {
                return _messages.Conflated + _endedConflated + _streams.Values.Sum(l => l.Sum(q => q.Conflated));
            }
        }
    }

    /// <summary>Messages dropped because the application fell behind (<see cref="OverflowPolicy.DropOldest"/>).</summary>
    public long Dropped
    {
        get
        {
            lock (_lock)
            {
                return _messages.Dropped + _endedDropped + _streams.Values.Sum(l => l.Sum(q => q.Dropped));
            }
        }
    }

    /// <summary>Times the client stopped reading until the application took a message (<see cref="OverflowPolicy.Wait"/>).</summary>
    public long OverflowWaits
    {
        get
        {
            lock (_lock)
            {
                return _messages.Waits + _endedWaits + _streams.Values.Sum(l => l.Sum(q => q.Waits));
            }
        }
    }

    private void RaiseOverflowed(OverflowEventArgs e)
    {
        Step(StepKind.Overflowed, $"the application fell behind: {_messages.Capacity} messages wait; {e.Policy switch { OverflowPolicy.Conflate => "conflating per subject", OverflowPolicy.DropOldest => "dropping the oldest", _ => "waiting for the application" }} ({e.Conflated} conflated, {e.Dropped} dropped, {e.Waits} waits so far)");
        Overflowed?.Invoke(this, e);
    }

    /// <summary>Images, updates, statuses and errors, in order, across moves.</summary>
    public ChannelReader<FarmMessage> Messages => _messages.Reader;

    /// <summary>Each connection step (resolved, first server, table, chosen and why, moved, retried, rediscovered).</summary>
    public ChannelReader<ConnectionStep> Steps => _steps.Reader;

    /// <summary>The id of the server now serving this client, if connected.</summary>
    public string? ServerId => Volatile.Read(ref _connection)?.ServerId;

    /// <summary>The <c>host:port</c> of the session in use (the server's <c>tls</c> address with TLS), or null.</summary>
    public string? Endpoint => Volatile.Read(ref _connection)?.Endpoint;

    /// <summary>The connection now serving (for tests).</summary>
    internal RttpConnection? CurrentConnection => Volatile.Read(ref _connection);

    /// <summary>The latest farm table.</summary>
    public FarmSnapshot Table => Volatile.Read(ref _table);

    /// <summary>Starts the connect loop (once); completes once the client is connected and subscribed the first time.</summary>
    public async Task StartAsync(CancellationToken cancel = default)
    {
        EnsureStarted();
        await _firstConnect.Task.WaitAsync(cancel);
    }

    /// <summary>Subscribes; the messages of these subjects arrive on <see cref="Messages"/> (now if connected, and again after every move).</summary>
    public async Task SubscribeAsync(IEnumerable<string> subjects, CancellationToken cancel = default)
    {
        var list = subjects.ToList();
        list.ForEach(CheckSubject);
        List<string> added = [];
        lock (_lock)
        {
            _channelSubjects.UnionWith(list);
            added.AddRange(list.Where(_subjects.Add));
        }

        if (added.Count > 0)
        {
            await SubscribeOnServerAsync(added, cancel);
        }
    }

    /// <summary>Ends subscriptions made with <see cref="SubscribeAsync(IEnumerable{string}, CancellationToken)"/> (streams of the same subjects go on).</summary>
    public async Task UnsubscribeAsync(IEnumerable<string> subjects, CancellationToken cancel = default)
    {
        var list = subjects.ToList();
        List<string> gone = [];
        lock (_lock)
        {
            foreach (var s in list)
            {
                if (_channelSubjects.Remove(s) && !_streams.ContainsKey(s))
                {
                    Forget(s);
                    gone.Add(s);
                }
            }
        }

        if (gone.Count > 0 && Volatile.Read(ref _connection) is { } c)
        {
            await c.UnsubscribeAsync(gone, cancel);
        }
    }

    /// <summary>Waits until every line sent so far was handled by the current server.</summary>
    public Task PingAsync(CancellationToken cancel = default) =>
        (Volatile.Read(ref _connection) ?? throw new RttpConnectionException("not connected to a server")).PingAsync(cancel);

    /// <summary>Stops the loop and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return; // once (a container may hold it under two types)
        }

        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        await _standbyLoop;
        if (await TakeStandbyAsync() is { } standby)
        {
            await standby.Connection.CloseAsync("client stopping");
        }

        if (Interlocked.Exchange(ref _connection, null) is { } c)
        {
            await c.CloseAsync("client stopping");
        }

        await CloseLinksAsync();
        FailUnanswered();

        _firstConnect.TrySetCanceled();
        SetState(FarmClientState.Stopped);
        _events.Writer.TryComplete();
        await _eventPump;
        CompleteStreams(null);
        _messages.Complete();
        _steps.Writer.TryComplete();
        _stop.Dispose();
    }

    private void Step(StepKind kind, string text)
    {
        _steps.Writer.TryWrite(new ConnectionStep(kind, text, _options.Connection.Time.GetUtcNow()));
        switch (kind)
        {
            case StepKind.Failed or StepKind.Overflowed or StepKind.Refused:
                Log.Trouble(_logger, kind, text);
                break;
            case StepKind.Lost or StepKind.Moved or StepKind.PassedOver:
                Log.Notable(_logger, kind, text);
                break;
            default:
                Log.Step(_logger, kind, text);
                break;
        }
    }

    /// <summary>Tracks epoch and sequence per subject and labels images after a move.</summary>
    private FarmMessage Label(RttpMessage m, string server) => new(m, server, Track(m));

    /// <summary>Tracks epoch and sequence per subject; the continuity of <paramref name="m"/>.</summary>
    private Continuity Track(RttpMessage m)
    {
        lock (_lock)
        {
            return TrackLocked(m.Kind, m.Subject, m.Epoch, m.Seq);
        }
    }

    /// <summary>As <see cref="Track(RttpMessage)"/>, under <c>_lock</c>.</summary>
    private Continuity TrackLocked(RttpMessageKind kind, string subject, ulong epoch, ulong seq)
    {
        var continuity = Continuity.Continuous;
        if (kind is RttpMessageKind.Image or RttpMessageKind.Update)
        {
            var resubscribed = kind == RttpMessageKind.Image && _resubscribed.Remove(subject);
            if (resubscribed && _positions.TryGetValue(subject, out var before))
            {
                continuity = before.Epoch != epoch || seq < before.Seq ? Continuity.Fresh : seq == before.Seq ? Continuity.Resumed : Continuity.Gap;
            }

            _positions[subject] = (epoch, seq);
        }

        return continuity;
    }
}
