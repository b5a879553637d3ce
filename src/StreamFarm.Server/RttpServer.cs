using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;
using StreamFarm.Membership;
using StreamFarm.Protocol;
using StreamFarm.Server.Auth;
using StreamFarm.Server.Connections;
using StreamFarm.Server.Farm;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server;

/// <summary>
/// The streaming core of one server, independent of the transport: it runs a session over any duplex
/// pipe (Kestrel TCP connection, WebSocket adapter, in-memory pipe pair), owns the subject table,
/// the session list, the housekeeping timer (hello, idle, ping, slow consumers) and the counters.
/// </summary>
public sealed partial class RttpServer : IDisposable
{
    private readonly ConcurrentDictionary<long, ClientSession> _sessions = new();

    // Counted on every accepted connection and walked every tick: in place, not a locked copy.
    private IEnumerable<ClientSession> Sessions => _sessions.ValuesInPlace();

    private readonly ITimer _housekeeping;

    // Records whose wait for a hand-over ran out are released off the tick thread: after a change of
    // owners hundreds of thousands can wait at once, and releasing them (an IMAGE or a STATUS to
    // their subscribers each) took up to 0.4 s there, where the membership's probes and the beat
    // that tells a paused process also run.
    private readonly OffTickWork _releaseDueHolds;
    private readonly Lock _farmLock = new();
    private FarmSnapshot _sentToClients; // the table as this server's clients were last sent it (under _farmLock)
    private long _usersSentAt; // when a change of user counts alone was last sent to the clients (the start, before the first)
    private volatile bool _usersPending; // a change of user counts alone waits for ClientUsersInterval
    private readonly Dictionary<ClientSession, FarmSnapshot> _welcomedAhead = []; // sessions welcomed with a newer table than _sentToClients (under _farmLock)
    private readonly ILogger _log;
    private long _nextSessionId;
    private volatile bool _stopping;
    private volatile bool _draining;
    private ITimer? _drainTimer;
    private long _messagesIn;
    private long _messagesOut;
    private long _conflationsClosed;
    private long _slowConsumerCloses;
    private long _subscriptions;
    private long _rejectedFull;
    private const int MaxRoutePortSessions = 1024;
    private long _lastHousekeep; // only the housekeeping timer reads and writes these
    private long _idleGraceFrom;
    private long _lastRebalance;
    private ITimer? _rebalanceTimer;
    private FarmStatusPublisher? _publisher;
    private Subjects.SystemSubjectPublisher? _systemSubjects;
    private long _rebalanceMoves;
    private long _rejected;
    private long _pausesSeen;
    private long _stallsSeen;
    private long _rejoinUntil; // timestamp; 0: not rejoining

    public RttpServer(ServerOptions options, TimeProvider time, ILogger<RttpServer> log, Func<RttpServer, IFarmView>? farm = null)
        : this(options, new ServerContext { Time = time }, log, farm)
    {
    }

    /// <summary>
    /// A server assembled from <paramref name="context"/>. With <see cref="ServerContext.Membership"/>
    /// and a farm key, it runs its own membership member over that transport (its farm table), its
    /// routes (when <c>farm.routes</c> is on) and its status publisher; <see cref="Start"/> starts them.
    /// Addresses come from the options (<c>listen</c> and the ports), and the host may set them later.
    /// </summary>
    public RttpServer(ServerOptions options, ServerContext context, Func<RttpServer, IFarmView>? farm = null)
        : this(options, context, context.Logging.CreateLogger<RttpServer>(), farm)
    {
    }

    private RttpServer(ServerOptions options, ServerContext context, ILogger log, Func<RttpServer, IFarmView>? farm)
    {
        options.Validate();
        Options = options;
        Context = context;
        var time = Time = context.Time;
        _log = log;
        Limits = new RttpLimits { MaxLineBytes = options.Limits.MaxLineBytes, MaxFields = options.Limits.MaxFieldsPerMessage };
        Authenticator = new Authenticator(options.Auth);
        AuthThrottle = new AuthThrottle(time, options.Auth.MaxFailuresPerAddress, options.Auth.FailureWindow);
        SessionsPerAddress = new Transport.AddressLimiter(options.Limits.MaxConnectionsPerAddress);
        HttpPerAddress = new Transport.AddressLimiter(options.Limits.MaxConnectionsPerAddress);
        Jwt = options.Auth.Jwt.Enabled ? new JwtAuthenticator(options.Auth.Jwt, time, log) : null;
        Subjects = new SubjectTable(time, EpochBits(options.Id)) { MaxLine = options.Limits.MaxLineBytes };
        if (farm is null && context.Membership is { } transport && options.Farm.Enabled)
        {
            var host = options.AdvertiseHost ?? options.Listen;
            Addresses = ($"{host}:{options.TcpPort}", $"ws://{host}:{options.HttpPort}/rttp", $"http://{host}:{options.HttpPort}");
            RouteAddress = options.Farm.Routes ? $"{host}:{options.Farm.RoutePort}" : "";
            var self = SelfRecord(options, transport.LocalAddress, time);

            // Membership draws only under its own lock: a generator of its own, seeded from the context's.
            Membership = new MembershipNode(self, options.Farm.MembershipOptions, transport, TickThread.For(time), new Random(context.Random.Next()), options.Farm.Keyring(), options.Farm.SeedAddresses);
            var node = Membership;
            farm = _ => new MembershipFarmView(node);
        }

        Farm = farm?.Invoke(this) ?? new LocalFarm(SelfMember, time);
        _sentToClients = Farm.Current;
        _usersSentAt = time.GetTimestamp(); // the first change of user counts alone waits an interval from the start too
        Farm.Changed += OnFarmChanged;
        if (Membership is not null && options.Farm.Routes)
        {
            Routes = new global::StreamFarm.Server.Routes.RouteManager(this, options.Farm.Keyring(), context.Logging.CreateLogger("StreamFarm.Routes"));
        }

        var tick = TimeSpan.FromMilliseconds(Math.Clamp(options.Limits.PingInterval.TotalMilliseconds / 4, 10, 250));
        _releaseDueHolds = new OffTickWork(time, Subjects.Clock.ReleaseDueHolds, ex => Log.HousekeepingFailed(_log, ex));
        _housekeeping = TickThread.For(time).CreateTimer(_ => Housekeep(), null, tick, tick); // on the tick thread: one wake-up per tick, not three
    }

    /// <summary>Time, chance, outbound connections and logging this server was built with.</summary>
    public ServerContext Context { get; }

    /// <summary>The membership member this server built from its context (null when the host runs membership, or none runs).</summary>
    public MembershipNode? Membership { get; }

    /// <summary>
    /// With routes: ownership terms follow this server's membership (see <see cref="Subjects.RecordClock"/>).
    /// The pause detector's limit is the shortest suspicion the farm lets run before a dead verdict
    /// (SuspicionMult probe intervals), but at least 2 s: a loaded machine delays timers by hundreds
    /// of milliseconds, and each false alarm costs subscribers an IMAGE. A dead verdict heard later
    /// (DeclaredDead) starts a new term as well, and this server re-joins.
    /// </summary>
    internal void UseOwnershipTerms(MembershipNode membership)
    {
        var m = Options.Farm.MembershipOptions;
        Subjects.Clock.PauseLimit = TimeSpan.FromTicks(Math.Max((m.ProbeInterval * m.SuspicionMult).Ticks, TimeSpan.FromSeconds(2).Ticks));
        // A dead verdict heard later (a partition that healed, a pause the detector missed) starts a
        // new term: nothing is sequenced again in a history the farm may have replaced. It does
        // not make the server re-join: after a partition every server hears it, and all of them
        // giving their subjects away at once churns owners for nothing (the histories merge
        // field by field, and a new owner waits for its predecessor's hand-over).
        membership.DeclaredDead += Subjects.Clock.Renounce;
    }

    /// <summary>Starts what the constructor assembled from the context: routes, the status publisher, membership.</summary>
    public void Start()
    {
        if (Membership is null || _publisher is not null)
        {
            return;
        }

        if (Routes is not null)
        {
            Routes.Start();
            UseOwnershipTerms(Membership);
        }

        var publisher = _publisher = new FarmStatusPublisher(this, Membership, Options.Farm.MembershipOptions.GossipInterval);
        RejoiningChanged += () => ThreadPool.QueueUserWorkItem(_ => publisher.Publish()); // joining / active at once, not at the next tick
        publisher.Publish();
        Membership.Start();
    }

    public ServerOptions Options { get; }

    public TimeProvider Time { get; }

    public IFarmView Farm { get; }

    internal RttpLimits Limits { get; }

    internal Authenticator Authenticator { get; }

    /// <summary>Signed tokens (<c>auth.jwt</c>), when configured.</summary>
    internal JwtAuthenticator? Jwt { get; }

    /// <summary>Failed logins per client address (<c>auth.maxFailuresPerAddress</c>).</summary>
    internal AuthThrottle AuthThrottle { get; }

    internal SubjectTable Subjects { get; }

    /// <summary>
    /// Tests only: called on a session's read loop after each line it handled, outside every lock.
    /// It lets a test make one line take as long as it likes (a buffer of publications to thousands
    /// of subscribers does) without building that load. One null check per line otherwise.
    /// </summary>
    internal Action<ClientSession>? AfterLineForTesting { get; set; }

    /// <summary>Routes to the other servers of the farm, when they are on (a farm key and <c>farm.routes</c>).</summary>
    internal Routes.RouteManager? Routes { get; set; }

    /// <summary>Where other servers open routes to this one (<c>host:port</c>); set by the host once bound, empty without routes.</summary>
    public string RouteAddress { get; set; } = "";

    /// <summary>Where clients reach this server; set by the host once listeners are bound.</summary>
    public (string Tcp, string Ws, string Http) Addresses { get; set; }

    /// <summary>RTTP over TLS (<c>host:port</c>) and WebSocket over TLS (URL); empty without TLS. Set by the host.</summary>
    public (string Tls, string Wss) TlsAddresses { get; set; } = ("", "");

    /// <summary>Client connections (routes from other servers of the farm are counted in <see cref="RouteSessions"/>).</summary>
    public int Connections => Sessions.Count(s => !s.IsRoute);

    /// <summary>Routes from other servers of the farm.</summary>
    public int RouteSessions => Sessions.Count(s => s.IsRoute);

    /// <summary>Welcomed client sessions (routes from other servers are not users).</summary>
    public int Users => Sessions.Count(s => s.IsWelcomed && !s.IsRoute);

    public long MessagesIn => Interlocked.Read(ref _messagesIn);

    public long MessagesOut => Interlocked.Read(ref _messagesOut);

    public long Conflations => Interlocked.Read(ref _conflationsClosed) + Sessions.Sum(s => s.Outbound.Conflations);

    public long SlowConsumerCloses => Interlocked.Read(ref _slowConsumerCloses);

    public long Subscriptions => Interlocked.Read(ref _subscriptions);

    public long RejectedFull => Interlocked.Read(ref _rejectedFull);

    private long _originRefused;

    /// <summary>WebSocket handshakes refused for their page's origin (<c>http.allowedOrigins</c>).</summary>
    public long OriginRefused => Interlocked.Read(ref _originRefused);

    internal void CountOriginRefused() => Interlocked.Increment(ref _originRefused);

    /// <summary>RTTP sessions (TCP, TLS, WebSocket) per client address (<c>limits.maxConnectionsPerAddress</c>).</summary>
    internal Transport.AddressLimiter SessionsPerAddress { get; }

    /// <summary>HTTP connections per client address (the same limit, counted apart: a WebSocket client holds one of each).</summary>
    internal Transport.AddressLimiter HttpPerAddress { get; }

    /// <summary>Clients asked to move (MOVE REBALANCE) because this server had far more than its share.</summary>
    public long RebalanceMoves => Interlocked.Read(ref _rebalanceMoves);

    public bool IsStopping => _stopping;

    /// <summary>
    /// After a pause longer than the farm's shortest verdict, or after hearing that the farm declared
    /// it dead, a server re-joins: for <see cref="ServerOptions"/>' rejoin period it shows itself as
    /// <c>joining</c>, owns nothing (its records go to the others, newer values merged there), and
    /// serves through routes; then it is active again and takes its subjects back with the others'
    /// hand-overs. So it never serves, as current, values the farm replaced while it was away.
    /// </summary>
    public bool IsRejoining => Volatile.Read(ref _rejoinUntil) != 0;

    /// <summary>Raised when <see cref="IsRejoining"/> changes.</summary>
    public event Action? RejoiningChanged;

    /// <summary>
    /// Raised when <see cref="SelfMember"/> may have changed (a client welcomed or gone, draining,
    /// stopping, re-joining), so the farm status is published at once rather than found by polling.
    /// Handlers must be quick.
    /// </summary>
    internal event Action? StatusMayHaveChanged;

    /// <summary>Raised on the housekeeping tick (four times a second by default), for checks that need no timer of their own.</summary>
    internal event Action? Housekept;

    internal void AnnounceStatusChange() => StatusMayHaveChanged?.Invoke();

    /// <summary>True when this process was silent longer than <see cref="Subjects.RecordClock.StaleInputLimit"/> (paused, or starved) since <paramref name="stalls"/> was read.</summary>
    internal bool WasStalledSince(long stalls)
    {
        Subjects.Clock.CheckStall(); // counts a silence first, if this read is the first sign of life after it
        return Subjects.Clock.Stalls != stalls;
    }

    /// <summary>Starts (or extends) re-joining the farm; see <see cref="IsRejoining"/>.</summary>
    public void Rejoin(string why)
    {
        var until = Time.GetTimestamp() + (long)(Subjects.Clock.PauseLimit.TotalSeconds * Time.TimestampFrequency);
        var was = Interlocked.Exchange(ref _rejoinUntil, until);
        Log.Rejoining(_log, why, Subjects.Clock.PauseLimit.TotalSeconds);
        if (was == 0)
        {
            (Farm as LocalFarm)?.Refresh();
            RejoiningChanged?.Invoke();
        }
    }

    /// <summary>Draining: new clients are refused with ERR DRAINING, connected ones are moved away over a spread.</summary>
    public bool IsDraining => _draining;

    /// <summary>This server's row of the farm table, from its live status.</summary>
    public FarmMember SelfMember() => new()
    {
        Id = Options.Id,
        Group = Options.Group,
        State = _stopping ? "leaving" : _draining ? "draining" : IsRejoining ? "joining" : "active",
        Liveness = "alive",
        Users = Users,
        Capacity = Options.Capacity,
        Tcp = Addresses.Tcp,
        Ws = Addresses.Ws,
        Http = Addresses.Http,
        External = Options.ExternalAddress ?? "",
        Tls = TlsAddresses.Tls,
        Wss = TlsAddresses.Wss,
        Route = RouteAddress,
    };

    /// <summary>Runs one client session over <paramref name="transport"/> until it ends.</summary>
    /// <param name="transport">The connection's pipes.</param>
    /// <param name="remote">The peer's address, for logs.</param>
    /// <param name="connectionClosed">Fires when the transport closes (for Kestrel: the receive side
    /// ended, by the peer's FIN or reset, or the socket was closed after the last send).</param>
    /// <param name="routePort">True on the route port: only other servers of the farm (route HELLO),
    /// never refused for draining or capacity, which concern clients.</param>
    /// <param name="abort">Cuts the transport at once (the socket closed with a reset). Called when the
    /// transport has not finished sending the last lines within the closing grace period
    /// (<see cref="ClientSession.CloseGrace"/>): a peer that does not read would otherwise hold the
    /// socket, its buffers and its descriptor for ever. Null: the transport ends by itself.</param>
    public async Task RunSessionAsync(IDuplexPipe transport, string remote, CancellationToken connectionClosed, bool routePort = false, Action? abort = null)
    {
        var (graceLeft, peerEnded, cut) = await RunSessionCoreAsync(transport, remote, routePort, abort);
        if (abort is null)
        {
            return;
        }

        if (cut)
        {
            abort(); // done already, before the session completed its pipes (see ClientSession.RunAsync)
            return;
        }

        // The session completed its pipes. Unless the peer ended its side first, connectionClosed
        // fires once the transport has sent everything and closed the socket. After the peer's FIN
        // (a half-close) it has fired already while the transport may still be sending: it gets the
        // rest of the grace period. Either way, a transport still open then is cut.
        if (graceLeft > TimeSpan.Zero && !(connectionClosed.IsCancellationRequested && !peerEnded))
        {
            using var stop = new CancellationTokenSource();
            var closed = peerEnded ? Task.Delay(Timeout.Infinite, stop.Token) : Task.Delay(Timeout.Infinite, connectionClosed);
            await Task.WhenAny(closed, Task.Delay(graceLeft, Time, stop.Token));
            await stop.CancelAsync();
        }

        if (peerEnded || !connectionClosed.IsCancellationRequested)
        {
            abort();
        }
    }

    /// <summary>
    /// Runs the session; returns what is left of its closing grace period (see
    /// <see cref="ClientSession.RunAsync"/>), whether the peer ended its side (FIN or reset), and
    /// whether the session was cut for not keeping up (the host then aborts the transport at once).
    /// </summary>
    internal async Task<(TimeSpan GraceLeft, bool PeerEnded, bool Cut)> RunSessionCoreAsync(IDuplexPipe transport, string remote, bool routePort = false, Action? cutTransport = null)
    {
        if (_stopping)
        {
            await RefuseAsync(transport, "BYE SHUTDOWN server stopping\n"u8.ToArray());
            return (ClientSession.CloseGrace, false, false);
        }

        if (routePort)
        {
            // Other servers only; an unauthenticated flood is bounded here and by the hello timeout.
            if (Sessions.Count(s => s.OnRoutePort) >= MaxRoutePortSessions)
            {
                await RefuseAsync(transport, Render(w => RttpWriter.WriteError(w, RttpErrorCode.Full, $"server {Options.Id} has {MaxRoutePortSessions} connections on its route port")));
                return (ClientSession.CloseGrace, false, false);
            }
        }
        else if (_draining)
        {
            await RefuseAsync(transport, Render(w => RttpWriter.WriteError(w, RttpErrorCode.Draining, $"server {Options.Id} is draining: choose another server", "@after=0")));
            return (ClientSession.CloseGrace, false, false);
        }
        else if (_sessions.Count >= Options.Capacity && Sessions.Count(s => !s.IsRoute) >= Options.Capacity)
        {
            Interlocked.Increment(ref _rejectedFull);
            await RefuseAsync(transport, Render(w => RttpWriter.WriteError(w, RttpErrorCode.Full, $"server {Options.Id} is full ({Options.Capacity} connections)", "@after=1000")));
            return (ClientSession.CloseGrace, false, false);
        }

        var address = routePort ? null : Transport.AddressLimiter.AddressOf(remote);
        if (!SessionsPerAddress.TryAcquire(address))
        {
            await RefuseAsync(transport, Render(w => RttpWriter.WriteError(w, RttpErrorCode.Full, $"too many connections from {address} (at most {SessionsPerAddress.Limit} per address): close some, or use another server", "@after=1000")));
            return (ClientSession.CloseGrace, false, false);
        }

        try
        {
            return await RunCountedSessionAsync(transport, remote, routePort, cutTransport);
        }
        finally
        {
            SessionsPerAddress.Release(address);
        }
    }

    private async Task<(TimeSpan GraceLeft, bool PeerEnded, bool Cut)> RunCountedSessionAsync(IDuplexPipe transport, string remote, bool routePort, Action? cutTransport)
    {
        var id = Interlocked.Increment(ref _nextSessionId);
        using var session = new ClientSession(this, transport, remote, id, routePort);
        _sessions[id] = session;
        Log.SessionStarted(_log, id, remote);
        try
        {
            return (await session.RunAsync(cutTransport), session.InputEnded, session.IsCut);
        }
        finally
        {
            _sessions.TryRemove(id, out _);
            if (session.IsWelcomed && !session.IsRoute)
            {
                AnnounceStatusChange(); // one user fewer
            }

            Interlocked.Add(ref _conflationsClosed, session.Outbound.Conflations);
            Log.SessionEnded(_log, id, remote, session.CloseReason);
        }
    }

    /// <summary>Stops taking sessions and asks every client to leave (BYE SHUTDOWN, or MOVE when the farm has another server).</summary>
    public void BeginShutdown()
    {
        _stopping = true;
        AnnounceStatusChange();
        var others = Farm.Current.Members.Any(m => m.Id != Options.Id && m.State == "active" && m.Liveness == "alive");
        var goodbye = others ? "MOVE SHUTDOWN\n"u8.ToArray() : "BYE SHUTDOWN server stopping\n"u8.ToArray();
        foreach (var s in Sessions)
        {
            s.Close(DisconnectReason.ServerShutdown, goodbye);
        }
    }

    /// <summary>
    /// Lame-duck mode: the farm table shows this server as draining (DNS and clients stop choosing
    /// it), new connections are refused with ERR DRAINING, and connected clients get MOVE DRAINING
    /// spread evenly over <paramref name="spread"/>, so they do not all land elsewhere at once.
    /// </summary>
    public void BeginDrain(TimeSpan spread)
    {
        if (_draining || _stopping)
        {
            return;
        }

        _draining = true;
        AnnounceStatusChange();
        (Farm as LocalFarm)?.Refresh();
        _drainTimer = SendMoves(Sessions.Where(s => !s.IsRoute), "MOVE DRAINING\n"u8.ToArray(), spread);
    }

    /// <summary>Queues <paramref name="move"/> to the sessions in random order, spread evenly over <paramref name="spread"/>.</summary>
    private ITimer SendMoves(IEnumerable<ClientSession> sessions, byte[] move, TimeSpan spread)
    {
        var queue = new Queue<ClientSession>(sessions.OrderBy(_ => Context.Random.Next()));
        var ticks = Math.Max(1, (int)(spread.TotalMilliseconds / 100));
        var perTick = Math.Max(1, (int)Math.Ceiling(queue.Count / (double)ticks));
        return Time.CreateTimer(_ =>
        {
            lock (queue)
            {
                for (var i = 0; i < perTick && queue.TryDequeue(out var s); i++)
                {
                    s.Outbound.EnqueueControl(move);
                }
            }
        }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(100));
    }

    /// <summary>Moves clients away when this server holds far more than its share (see <see cref="RebalanceOptions"/>).</summary>
    private void MaybeRebalance(long now)
    {
        var o = Options.Rebalance;
        if (!o.Enabled || _draining || _stopping || (_lastRebalance != 0 && Time.GetElapsedTime(_lastRebalance, now) < o.Interval))
        {
            return;
        }

        var members = Farm.Current.Members.Where(m => m.State == "active" && m.Liveness == "alive" && m.Capacity > 0).ToList();
        if (members.Count < 2 || !members.Any(m => m.Id == Options.Id))
        {
            return;
        }

        var users = Users;
        var total = members.Sum(m => m.Id == Options.Id ? users : m.Users);
        var share = total * (double)Options.Capacity / members.Sum(m => (double)m.Capacity);
        var excess = users - share;
        if (users <= share * o.Threshold || excess < o.MinExcess)
        {
            return;
        }

        // Half the excess at a time: the others' tables lag, and several servers may be moving
        // clients at once; halving converges without overshooting.
        var count = (int)Math.Ceiling(excess / 2);
        _lastRebalance = now;
        Interlocked.Add(ref _rebalanceMoves, count);
        Log.Rebalancing(_log, users, share, count);
        var old = _rebalanceTimer;
        _rebalanceTimer = SendMoves(Sessions.Where(s => s.IsWelcomed && !s.IsRoute).Take(count), "MOVE REBALANCE\n"u8.ToArray(), TimeSpan.FromSeconds(1));
        old?.Dispose();
    }

    /// <summary>Waits until every session has ended, or the timeout passes; true if all ended.</summary>
    public async Task<bool> WaitForSessionsAsync(TimeSpan timeout)
    {
        var deadline = Time.GetTimestamp();
        while (!_sessions.IsEmpty)
        {
            if (Time.GetElapsedTime(deadline) > timeout)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), Time);
        }

        return true;
    }

    /// <summary>This server's first record in the membership: joining, at an incarnation above any of a previous life (the time in ms).</summary>
    internal static MemberInfo SelfRecord(ServerOptions options, string gossipAddress, TimeProvider time) => new()
    {
        Id = options.Id,
        Gossip = gossipAddress,
        Group = options.Group,
        Capacity = options.Capacity,
        State = "joining",
        Incarnation = (ulong)time.GetUtcNow().ToUnixTimeMilliseconds(),
    };

    /// <summary>Ten stable bits of the server id (FNV-1a), mixed into epochs so servers' epochs differ.</summary>
    private static int EpochBits(string id)
    {
        var h = 2166136261u;
        foreach (var c in id)
        {
            h = (h ^ c) * 16777619u;
        }

        return (int)(h & 1023);
    }

    internal void CountIn() => Interlocked.Increment(ref _messagesIn);

    internal void CountOut(int n) => Interlocked.Add(ref _messagesOut, n);

    internal void CountSubscriptions(int delta) => Interlocked.Add(ref _subscriptions, delta);

    internal void CountSlowConsumerClose() => Interlocked.Increment(ref _slowConsumerCloses);

    internal void CountRejected() => Interlocked.Increment(ref _rejected);

    /// <summary>Publications this server accepted from its clients and then had to refuse (NACK or ERR UNAVAILABLE).</summary>
    public long RejectedPublications => Interlocked.Read(ref _rejected);

    /// <summary>Queues WELCOME's farm table for a session and enrols it for deltas, atomically with respect to deltas.</summary>
    internal void SendFarmTable(ClientSession session)
    {
        lock (_farmLock)
        {
            var table = Farm.Current;
            session.Outbound.EnqueueControl(Render(w => FarmCodec.WriteTable(w, table)));
            session.ReceivesFarmDeltas = true;
            if (table.Version != _sentToClients.Version)
            {
                // Newer than what the other clients were sent (user counts waiting): the next delta
                // is rendered from this table for this session.
                _welcomedAhead[session] = table;
            }
        }
    }

    internal static byte[] Render(Action<ArrayBufferWriter<byte>> write)
    {
        var w = new ArrayBufferWriter<byte>(128);
        write(w);
        return w.WrittenSpan.ToArray();
    }

    private void OnFarmChanged(FarmSnapshot previous, FarmSnapshot current) => SendFarmDelta();

    /// <summary>
    /// Sends the clients the lines from the table they were last sent to the current one (the newest:
    /// two changes' events may run in either order; a table is never sent after a newer one).
    /// A change of user counts alone waits until <see cref="FarmOptions.ClientUsersInterval"/> has
    /// passed since the last one sent (<see cref="Housekeep"/> sends it then); any other change goes
    /// at once and takes the waiting counts with it. A client welcomed meanwhile got the whole
    /// current table, so its next lines are rendered from that table (from the others' it could
    /// keep a row that changed and changed back while the counts waited).
    /// </summary>
    private void SendFarmDelta()
    {
        lock (_farmLock)
        {
            var current = Farm.Current;
            if (current.Version <= _sentToClients.Version)
            {
                _usersPending = false; // already sent
                return;
            }

            var usersOnly = OnlyUsersDiffer(_sentToClients, current);
            var now = Time.GetTimestamp();
            if (usersOnly && Time.GetElapsedTime(_usersSentAt, now) < Options.Farm.ClientUsersInterval)
            {
                _usersPending = true;
                return;
            }

            var sent = _sentToClients;
            var delta = Render(w => FarmCodec.WriteDelta(w, sent, current));
            _sentToClients = current;
            _usersPending = false;
            if (usersOnly)
            {
                _usersSentAt = now;
            }

            foreach (var s in Sessions)
            {
                if (!s.ReceivesFarmDeltas)
                {
                    continue;
                }

                var own = _welcomedAhead.Count > 0 && _welcomedAhead.TryGetValue(s, out var table) ? Render(w => FarmCodec.WriteDelta(w, table, current)) : delta;
                if (own.Length > 0)
                {
                    s.Outbound.EnqueueControl(own);
                }
            }

            _welcomedAhead.Clear();
        }
    }

    /// <summary>The same servers, differing at most in their user counts (and in at least one of them).</summary>
    private static bool OnlyUsersDiffer(FarmSnapshot sent, FarmSnapshot current)
    {
        if (sent.Members.Count != current.Members.Count)
        {
            return false;
        }

        var differ = false;
        for (var i = 0; i < current.Members.Count; i++)
        {
            var m = current.Members[i];
            var old = sent.Find(m.Id);
            if (old is null)
            {
                return false;
            }

            if (old != m)
            {
                if (old with { Users = m.Users } != m)
                {
                    return false;
                }

                differ = true;
            }
        }

        return differ;
    }

    private void Housekeep()
    {
        try
        {
            // A tick far later than due means this process was paused (SIGSTOP, a long GC pause, a
            // starved VM): its clients were silent because it did not ping them, so nobody is cut
            // as idle until they have had an idle period to speak again.
            var now = Time.GetTimestamp();
            if (_lastHousekeep != 0 && Time.GetElapsedTime(_lastHousekeep, now) > Options.Limits.PingInterval * 2)
            {
                _idleGraceFrom = now;
            }

            _lastHousekeep = now;
            Subjects.Clock.Beat(); // a sign of life: a pause longer than the farm's fastest verdict starts a new ownership term
            _releaseDueHolds.Start();
            var stalls = Subjects.Clock.Stalls;
            if (stalls != _stallsSeen)
            {
                // Silent long enough that clients may have given up and published elsewhere: their
                // waiting lines are not applied late (RecordClock.StaleInputLimit). Sessions that
                // connected after the silence (before this tick) are not among them.
                _stallsSeen = stalls;
                var closed = 0;
                foreach (var s in Sessions)
                {
                    if (!s.IsRoute && s.OpenBeforeStall(stalls))
                    {
                        closed++;
                        s.Close(DisconnectReason.ServerPaused, System.Text.Encoding.UTF8.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"BYE PAUSED server {Options.Id} was paused for {Subjects.Clock.LastPause.TotalSeconds:0.0} s; reconnect\n")), discardPending: true);
                    }
                }

                Log.Stalled(_log, Subjects.Clock.LastPause.TotalSeconds, Subjects.Clock.LastPauseInGc.TotalSeconds, closed);
            }

            var pauses = Subjects.Clock.Pauses;
            if (pauses != _pausesSeen)
            {
                _pausesSeen = pauses;
                if (Routes is not null)
                {
                    Rejoin(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"paused for {Subjects.Clock.LastPause.TotalSeconds:0.0} s, {Subjects.Clock.LastPauseInGc.TotalSeconds:0.0} s of it in garbage collection"));
                }
            }

            var rejoin = Volatile.Read(ref _rejoinUntil);
            if (rejoin != 0 && now > rejoin && Interlocked.CompareExchange(ref _rejoinUntil, 0, rejoin) == rejoin)
            {
                Log.Rejoined(_log);
                (Farm as LocalFarm)?.Refresh();
                RejoiningChanged?.Invoke();
            }
            var idleGrace = _idleGraceFrom != 0 && Time.GetElapsedTime(_idleGraceFrom, now) < Options.Limits.IdleTimeout;
            foreach (var s in Sessions)
            {
                s.Housekeep(idleGrace);
            }

            if (_usersPending)
            {
                SendFarmDelta();
            }

            MaybeRebalance(now);
            Routes?.RefuseStalled();
            AuthThrottle.Forget();
            Housekept?.Invoke();
        }
        catch (Exception ex)
        {
            Log.HousekeepingFailed(_log, ex);
        }
    }

    private static async Task RefuseAsync(IDuplexPipe transport, byte[] line)
    {
        try
        {
            await transport.Output.WriteAsync(line);
            await transport.Output.CompleteAsync();
            await transport.Input.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException)
        {
            // the client is already gone: nothing to tell it
        }
    }

    /// <summary>Starts publishing this server's system subjects (<c>/~sys/...</c>); nodes do, bare test servers need not.</summary>
    public void StartSystemSubjects() => _systemSubjects ??= new Subjects.SystemSubjectPublisher(this);

    public void Dispose()
    {
        _housekeeping.Dispose();
        Jwt?.Dispose();
        _systemSubjects?.Dispose();
        _drainTimer?.Dispose();
        _rebalanceTimer?.Dispose();
        if (Membership is not null)
        {
            // Assembled from the context: this server owns its routes, publisher and membership.
            _publisher?.Dispose();
            _ = Routes?.StopAsync(TimeSpan.Zero);
            Membership.Dispose();
        }

        Farm.Changed -= OnFarmChanged;
        (Farm as IDisposable)?.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Debug, Message = "session {Id} from {Remote} started")]
        public static partial void SessionStarted(ILogger logger, long id, string remote);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "session {Id} from {Remote} ended: {Reason}")]
        public static partial void SessionEnded(ILogger logger, long id, string remote, DisconnectReason reason);

        [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "rebalancing: {Users} users against a share of {Share:0}; asking {Count} to move")]
        public static partial void Rebalancing(ILogger logger, int users, double share, int count);

        [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "re-joining the farm ({Why}): shown as joining, owning nothing, for {Seconds} s")]
        public static partial void Rejoining(ILogger logger, string why, double seconds);

        [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "this process did not run its housekeeping for {Seconds:0.0} s ({GcSeconds:0.0} s of it in garbage collection): {Clients} clients connected before it were sent BYE PAUSED")]
        public static partial void Stalled(ILogger logger, double seconds, double gcSeconds, int clients);

        [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "re-joined the farm: active again")]
        public static partial void Rejoined(ILogger logger);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "housekeeping failed")]
        public static partial void HousekeepingFailed(ILogger logger, Exception ex);
    }
}
