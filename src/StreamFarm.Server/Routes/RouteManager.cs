using System.Buffers;
using Microsoft.Extensions.Logging;
using StreamFarm.Membership;
using StreamFarm.Protocol;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Routes;

/// <summary>
/// Routes between the servers of a farm (docs/architecture.md, "Routes"). Every subject has one
/// owner, chosen by rendezvous hashing over the active, alive servers (<see cref="Ownership"/>);
/// the owner's record is the subject's one history (epoch, sequence numbers). Other servers
/// forward publications to the owner and, while their own clients subscribe, keep a replica fed by
/// the owner over a <see cref="RouteLink"/>. When the owners change, records follow
/// (<see cref="SubjectRecord.Reassign"/>).
/// </summary>
internal sealed partial class RouteManager : IUpstream, IAsyncDisposable
{
    private readonly RttpServer _server;
    // Written under _lock, copied on write; read without a lock (records send under their own lock).
    private readonly Lock _lock = new();
    private volatile Dictionary<string, RouteLink> _links = new(StringComparer.Ordinal);
    private readonly ILogger _log;
    private volatile Ownership _ownership;
    private FarmSnapshot _table;
    // A table to apply, or null: apply the current table again (a peer was refused or reached).
    private readonly System.Threading.Channels.Channel<FarmSnapshot?> _changes = System.Threading.Channels.Channel.CreateUnbounded<FarmSnapshot?>(new() { SingleReader = true });

    // Set by the housekeeping tick when seeds are parked: the worker dispatches them (with the
    // changes, never on the tick thread, which also runs the membership's probes: dispatching
    // hundreds of thousands of seeds there once held it for seconds, the server took itself for
    // paused, re-joined owning nothing, and the farm handed every subject back and forth).
    private int _dispatchAsked;

    // Written to _changes to wake the worker for _dispatchAsked alone (not a table to apply).
    private static readonly FarmSnapshot DispatchOnly = new(-1, []);

    // Under _lock: peers whose route port refused a connection (their process is gone) and that
    // were not reached since; they own nothing, whatever the table still says.
    private readonly HashSet<string> _refused = new(StringComparer.Ordinal);
    private Task? _worker;
    private bool _applied;
    private bool _stopped;
    private long _forwarded;
    private long _seedsSent;
    private long _slowRoutes;
    private long _silentRoutes;
    private long _received;
    private long _redispatched;
    private long _refusals;
    private long _seedsParked;
    private long _seedsLost;
    private long _publicationsParked;

    // Bytes of the publications parked (see KeepIfUntold): at most MaxParkedPublicationBytes.
    private long _parkedPublicationBytes;

    // Seeds (a record's copy or hand-over) that went round between servers whose tables disagree
    // (each takes the other for the owner while a change spreads). Dropping one could lose the
    // last writes of a server (a hand-over is the only copy of them), so they wait here and are
    // dispatched again when this server's owners change, and every housekeeping tick until the
    // tables agree; only after ParkLimit are they given up (counted, logged). Seeds parked because
    // their owner's route had no room (a hand-over of hundreds of thousands of records) are not
    // lost that way: while that route is up, their wait starts again at each try (they drain as
    // the owner acknowledges), and a pass of the dispatch stops trying a route once it is full.
    private readonly Lock _parkLock = new();

    // Publications that nobody can be told about park here too (KeepIfUntold), bounded in bytes.
    private List<(byte[] Line, long Since, bool Publication)> _parked = [];

    /// <summary>How long a seed (or a publication nobody can be told about) that cannot find its owner is kept (tables that disagree longer than this are broken).</summary>
    public static readonly TimeSpan ParkLimit = TimeSpan.FromSeconds(30);

    /// <summary>What the publications parked because nobody could be told of them may hold, in bytes (beyond it they are dropped, counted).</summary>
    public const int MaxParkedPublicationBytes = 16 << 20;

    public RouteManager(RttpServer server, Keyring keys, ILogger log)
    {
        _server = server;
        _log = log;
        Auth = new RouteAuth(keys, server.Time);
        BindAddress = System.Net.IPAddress.TryParse(server.Options.Listen, out var ip) && !ip.Equals(System.Net.IPAddress.Any) && !ip.Equals(System.Net.IPAddress.IPv6Any) ? ip : null;
        _table = server.Farm.Current;
        _ownership = Ownership.From(_table, SelfId);
        ConnectionFactory = server.Context.Connections;
        server.Subjects.UseRoutes(this, OwnerOf, PredecessorOf, server.Options.Farm.StandbyCopies ? SuccessorOf : null, SelfId);

        SetMarker(_ownership);

        // Drawn from the context's random (seeded in simulations) and the start time, so that a
        // process started again under the same seed still has a life of its own.
        Life = ((ulong)server.Context.Random.NextInt64() ^ (ulong)server.Time.GetUtcNow().UtcTicks) | 1;
    }

    /// <summary>
    /// This process's life: a number drawn at start, sent in the route HELLO and WELCOME
    /// (<c>life=</c>, hexadecimal). A peer that sees another number than before under the same id
    /// knows the server was restarted, and that a route it still believes up goes to the old,
    /// dead process (<see cref="OnInboundRoute"/>).
    /// </summary>
    public ulong Life { get; }

    public RouteAuth Auth { get; }

    /// <summary>The address routes are opened from: the server's listen address, unless it listens on all.</summary>
    public System.Net.IPAddress? BindAddress { get; }

    public string SelfId => _server.Options.Id;

    public TimeProvider Time => _server.Time;

    /// <summary>Opens the routes (sockets, or an in-memory network in tests): from the server's context.</summary>
    /// <summary>Opens routes: the context's, or TLS connections the host sets before <see cref="Start"/>.</summary>
    public Transport.IConnectionFactory ConnectionFactory { get; set; }

    /// <summary>Backoff jitter: from the server's context.</summary>
    public Random Random => _server.Context.Random;

    /// <summary>Bytes a route may have queued before it is cut as slow (four times a client's limit, at least 4 MiB).</summary>
    public int RouteBufferBytes => Math.Max(4 << 20, _server.Options.Limits.MaxOutboundBytes * 4);

    public Ownership Ownership => _ownership;

    /// <summary>Publications sent to their subjects' owners.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Publications lost: no route to the owner, its buffer full, or passed around too often.</summary>
    public long Dropped => _drops.Sum(d => Interlocked.Read(ref d.Count));

    /// <summary>Of <see cref="Dropped"/>, those for one reason.</summary>
    public long DroppedFor(RouteDropReason reason) => Interlocked.Read(ref _drops[(int)reason].Count);

    private readonly DropTally[] _drops = [.. Enum.GetValues<RouteDropReason>().Select(_ => new DropTally())];

    /// <summary>The publications dropped for one reason, and what of them was logged.</summary>
    private sealed class DropTally
    {
        public long Count;
        public long LoggedCount; // Count when the last line was logged
        public long LoggedAt;    // timestamp of the last line (0: none yet)
        public string? Last;     // the subject of the last one dropped
    }

    /// <summary>A publication could not be passed on (counted in <see cref="Dropped"/>; its publisher was told).</summary>
    public void CountDropped(RouteDropReason reason, string subject)
    {
        var d = _drops[(int)reason];
        Interlocked.Increment(ref d.Count);
        Volatile.Write(ref d.Last, subject);
        LogDropped(reason, d);
    }

    /// <summary>
    /// One line per reason at most every 10 s, with how many were dropped since the last and the
    /// last one's subject (a flood logs nothing more). Called on each drop and from the housekeeping,
    /// so the end of a burst is told too.
    /// </summary>
    private void LogDropped(RouteDropReason reason, DropTally d)
    {
        var count = Interlocked.Read(ref d.Count);
        if (count == Interlocked.Read(ref d.LoggedCount))
        {
            return;
        }

        var now = _server.Time.GetTimestamp();
        var last = Interlocked.Read(ref d.LoggedAt);
        if ((last == 0 || _server.Time.GetElapsedTime(last, now) >= TimeSpan.FromSeconds(10)) && Interlocked.CompareExchange(ref d.LoggedAt, now, last) == last)
        {
            var since = count - Interlocked.Exchange(ref d.LoggedCount, count);
            Log.PublicationsDropped(_log, since, reason.ToString(), Volatile.Read(ref d.Last) ?? "", reason == RouteDropReason.Expired ? "they had been kept because nobody was left to tell" : "their publishers were told");
        }
    }

    /// <summary>
    /// How long publications wait for an owner whose route stays down while its process is not known
    /// gone (a restart takes less; a dead owner is handed over sooner, by refusal or verdict).
    /// </summary>
    public static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(5);

    /// <summary>Refuses (and tells the publishers of) what waits for owners unreachable longer than <see cref="StallLimit"/>. From the housekeeping timer.</summary>
    public void RefuseStalled()
    {
        foreach (var link in _links.Values)
        {
            link.RefuseIfStalled(StallLimit);
            link.CheckSilence();
        }

        if (SeedsWaiting > 0 && Interlocked.Exchange(ref _dispatchAsked, 1) == 0)
        {
            _changes.Writer.TryWrite(DispatchOnly);
        }

        for (var i = 0; i < _drops.Length; i++)
        {
            LogDropped((RouteDropReason)i, _drops[i]); // the end of a burst of drops
        }
    }

    /// <summary>Dispatches the parked seeds again (to their owner as this server now sees it), giving up those older than <see cref="ParkLimit"/>.</summary>
    private void DispatchParked()
    {
        List<(byte[] Line, long Since, bool Publication)> parked;
        lock (_parkLock)
        {
            if (_parked.Count == 0)
            {
                return;
            }

            parked = _parked;
            _parked = [];
        }

        HashSet<string>? full = null;
        var frame = new RttpFrame();
        foreach (var (line, since, publication) in parked)
        {
            if (publication)
            {
                Interlocked.Add(ref _parkedPublicationBytes, -line.Length); // parked again below if it still finds no way
            }

            if (full is not null && OwnerOf(SubjectOf(line)) is { } owner && full.Contains(owner))
            {
                Park(line, _links.TryGetValue(owner, out var l) && l.IsUp ? 0 : since, publication); // behind the ones before it, which found no room either
                continue;
            }

            if (_server.Time.GetElapsedTime(since) > ParkLimit)
            {
                if (publication)
                {
                    CountDropped(RouteDropReason.Expired, SubjectOf(line));
                }
                else
                {
                    Interlocked.Increment(ref _seedsLost);
                    Log.SeedLost(_log, SubjectOf(line), ParkLimit.TotalSeconds);
                }

                continue;
            }

            if (RttpParser.TryParse(new ReadOnlySequence<byte>(line.AsMemory(0, line.Length - 1)), frame, OwnLines, out _) == RttpErrorCode.None)
            {
                _parkSince = since; // kept if it has to wait again
                _noRoomAt = null;
                Apply(frame, defaultHop: 0, from: null, PubOrigin.None);
                _parkSince = 0;
                if (_noRoomAt is { } busy)
                {
                    (full ??= new(StringComparer.Ordinal)).Add(busy);
                    _noRoomAt = null;
                }
            }
        }
    }

    [ThreadStatic]
    private static long _parkSince;

    // Set by Seed when the owner's route is up but had no room (DispatchParked reads it).
    [ThreadStatic]
    private static string? _noRoomAt;

    public long SeedsSent => Interlocked.Read(ref _seedsSent);

    /// <summary>Seeds kept back because the servers' tables disagreed on their owner (see <see cref="ParkLimit"/>).</summary>
    public long SeedsParked => Interlocked.Read(ref _seedsParked);

    /// <summary>Publications kept back because nobody could be told they were not passed on (see <see cref="KeepIfUntold"/>).</summary>
    public long PublicationsParked => Interlocked.Read(ref _publicationsParked);

    /// <summary>Seeds given up after <see cref="ParkLimit"/> without finding their owner.</summary>
    public long SeedsLost => Interlocked.Read(ref _seedsLost);

    /// <summary>Seeds (and publications nobody can be told about) waiting for the tables to agree on their owner, or for room on its route.</summary>
    public int SeedsWaiting
    {
        get
        {
            lock (_parkLock)
            {
                return _parked.Count;
            }
        }
    }

    public long SlowRoutes => Interlocked.Read(ref _slowRoutes);

    /// <summary>IMAGE, UPDATE and STATUS messages received from owners over this server's routes.</summary>
    public long Received => Interlocked.Read(ref _received);

    public int RoutesUp => _links.Values.Count(l => l.IsUp);

    /// <summary>Plain keep-alive PINGs the peers sent on this server's route links, and how many were answered (<see cref="RttpKeepAlive.QuietPongAfter(TimeSpan, TimeSpan)"/>).</summary>
    public (long Pings, long Pongs) KeepAlive => (_links.Values.Sum(l => l.KeepAlivePings), _links.Values.Sum(l => l.KeepAlivePongs));

    /// <summary>Route links kept (up or not).</summary>
    public int Links => _links.Count;

    /// <summary>The link to <paramref name="peer"/>, if the table has it (for tests).</summary>
    internal RouteLink? LinkTo(string peer) => _links.TryGetValue(peer, out var link) ? link : null;

    /// <summary>Connections the route links opened so far (one per link while nothing fails).</summary>
    public int LinkConnects => _links.Values.Sum(l => l.Connects);

    /// <summary>Whether the route to <paramref name="peer"/> is up.</summary>
    public bool IsUpTo(string peer) => _links.TryGetValue(peer, out var link) && link.IsUp;

    /// <summary>Publications passed on again to a subject's new owner after the old one was lost.</summary>
    public long Redispatched => Interlocked.Read(ref _redispatched);

    /// <summary>Times a peer's route port refused a connection and its subjects moved without waiting for the membership's verdict.</summary>
    public long Refusals => Interlocked.Read(ref _refusals);

    /// <summary>Publications sent to owners and not acknowledged yet, over every route.</summary>
    public int Unacknowledged => _links.Values.Sum(l => l.Unacknowledged);

    public IReadOnlyList<string> Peers => [.. _links.Keys];

    public void Start()
    {
        _server.Farm.Changed += OnFarmChanged;
        _server.RejoiningChanged += () => _changes.Writer.TryWrite(null);
        Apply(_server.Farm.Current);
        _worker = Task.Run(WorkAsync);
    }

    // Farm changes are applied on a worker of their own, not on the thread that announces them
    // (membership holds its lock there): reassigning a large subject table must not delay gossip.
    private void OnFarmChanged(FarmSnapshot previous, FarmSnapshot current) => _changes.Writer.TryWrite(current);

    private async Task WorkAsync()
    {
        while (await _changes.Reader.WaitToReadAsync())
        {
            FarmSnapshot? latest = null;
            var apply = false;
            while (_changes.Reader.TryRead(out var next))
            {
                if (ReferenceEquals(next, DispatchOnly))
                {
                    continue;
                }

                apply = true;
                latest = next ?? latest; // only the newest table matters; null asks to apply again
            }

            try
            {
                if (apply)
                {
                    Apply(latest);
                }

                if (Interlocked.Exchange(ref _dispatchAsked, 0) == 1)
                {
                    DispatchParked();
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log.ApplyFailed(_log, e);
            }
        }
    }

    /// <summary>
    /// The peer's route port refused a connection: its process is gone (a paused or cut-off process
    /// keeps its port open, so this never moves subjects away from a live owner's process). Its
    /// subjects move now, without waiting for the membership's verdict.
    /// </summary>
    public void OnPeerRefused(RouteLink link)
    {
        lock (_lock)
        {
            if (_stopped || !_links.ContainsKey(link.Peer) || !_refused.Add(link.Peer))
            {
                return;
            }

            RecomputeSynced(); // a peer known gone no longer holds the owners barrier back
        }

        Interlocked.Increment(ref _refusals);
        Log.PeerRefused(_log, link.Peer);
        _changes.Writer.TryWrite(null);
    }

    // The owners before the last change, when it happened, and who could hand over (alive, or
    // leaving: a stopping server hands its records over before it closes its routes).
    private Ownership? _previous;
    private long _changedAt;
    private HashSet<string> _handsOver = new(StringComparer.Ordinal);

    /// <summary>
    /// For a subject this server owns since the last change (less than a hold limit ago): the live
    /// previous owner, whose hand-over a record created now waits for, or "" when that owner is gone
    /// (the record waits for any server's copy); otherwise null.
    /// </summary>
    public string? PredecessorOf(string subject)
    {
        var previous = _previous;
        if (previous is null || _allSynced || _server.Time.GetElapsedTime(Volatile.Read(ref _changedAt)) > SubjectRecord.HoldLimit)
        {
            return null;
        }

        var before = previous.OwnerOf(subject);
        if (before == SelfId)
        {
            // Alone before (just started, perhaps restarted): the others' copies are on their way.
            return previous.Owners.Count == 1 ? "" : null;
        }

        return _handsOver.Contains(before) ? before : "";
    }

    /// <summary>The server next in line for a subject (it keeps a standby copy), by this server's owners; null when there is none.</summary>
    public string? SuccessorOf(string subject) => _ownership.SuccessorOf(subject);

    /// <summary>STANDBY lines sent (owner side): successors asked to keep a copy.</summary>
    public long StandbyAsked => Interlocked.Read(ref _standbyAsked);

    private long _standbyAsked;

    /// <summary>The owner of a subject given by its UTF-8 name, or null when it is this server (no allocation).</summary>
    public string? OwnerOf(ReadOnlySpan<byte> subjectUtf8)
    {
        var owner = _ownership.OwnerOf(subjectUtf8);
        return owner == SelfId ? null : owner;
    }

    /// <summary>The owner of a subject, or null when it is this server.</summary>
    public string? OwnerOf(string subject)
    {
        var owner = _ownership.OwnerOf(subject);
        return owner == SelfId ? null : owner;
    }

    public void CountSlowRoute() => Interlocked.Increment(ref _slowRoutes);

    /// <summary>Routes closed because nothing came from the peer for their silence limit.</summary>
    public long SilentRoutes => Interlocked.Read(ref _silentRoutes);

    public void CountSilentRoute() => Interlocked.Increment(ref _silentRoutes);

    /// <summary>A peer's clock reading: this server's stamps stay ahead of it.</summary>
    public void ObserveClock(ulong stamp) => _server.Subjects.Clock.Observe(stamp);

    private void Apply(FarmSnapshot? current)
    {
        List<RouteLink>? gone = null;
        List<string>? lostPeers = null;
        var ownersChanged = false;
        lock (_lock)
        {
            if (_stopped || (current is not null && _applied && current.Version <= _table.Version))
            {
                return; // stopped, or an older table than the one applied
            }

            _applied = true;
            _table = current ??= _table;

            // A route to every other server that is alive (or only suspected) and takes routes.
            var wanted = current.Members.Where(m => m.Id != SelfId && m.Liveness != "dead" && m.Route.Length > 0).ToDictionary(m => m.Id, m => m.Route, StringComparer.Ordinal);
            foreach (var (id, link) in _links)
            {
                if (wanted.TryGetValue(id, out var address))
                {
                    link.Address = address;
                }
                else
                {
                    (gone ??= []).Add(link);
                }
            }

            // Most changes of the table are users counts: the set of routes is copied only when it changes.
            var added = wanted.Keys.Where(id => !_links.ContainsKey(id)).ToList();
            // Links to servers that left the table stay in _links until their publications are
            // handed over (below): a record not reassigned yet still forwards to its old owner, and
            // that publication must land in the sealed link, not be dropped for want of a link.
            if (added.Count > 0)
            {
                var links = new Dictionary<string, RouteLink>(_links, StringComparer.Ordinal);
                foreach (var id in added)
                {
                    var link = new RouteLink(this, id, wanted[id], _log);
                    links[id] = link;
                    link.Start();
                }

                _links = links;
            }

            // A server that re-joins (after a pause, or a dead verdict) owns nothing until it is back.
            var exclude = _server.IsRejoining ? new HashSet<string>(_refused, StringComparer.Ordinal) { SelfId } : _refused;
            var next = Ownership.From(current, SelfId, exclude);
            var changed = !next.SameOwners(_ownership);
            if (changed && _log.IsEnabled(LogLevel.Information))
            {
                var before = string.Join(",", _ownership.Owners);
                var after = string.Join(",", next.Owners);
                Log.OwnersChanged(_log, before, after);
            }

            // Alive: a server that will hand over (and takes an UNSUB): alive, not refused; a leaving
            // server hands its records over before it closes its routes, so it counts too.
            var alive = current.Members.Where(m => m.Liveness == "alive" && !_refused.Contains(m.Id)).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);

            // When the owners change, the publications on their way to any server are taken out
            // and published again under their records' locks as the records get their owners, so
            // each subject's publications reach its owner in order whatever path they took (a
            // server that lost a subject would pass them on, one hop behind later ones sent
            // straight to the new owner). A server that is gone (removed, dead, refused, or not
            // reachable) also gives up those it acknowledged lately: its subscribers may not have
            // had them. A write that arrives twice is ignored the second time (same stamp).
            var sealedLinks = new List<RouteLink>();
            foreach (var link in gone ?? [])
            {
                link.Close();
                link.Seal(withRecent: true);
                sealedLinks.Add(link);
            }

            if (changed)
            {
                foreach (var (peer, link) in _links)
                {
                    if (gone?.Contains(link) == true)
                    {
                        continue; // sealed above
                    }

                    var lost = !next.Owners.Contains(peer, StringComparer.Ordinal) && _ownership.Owners.Contains(peer, StringComparer.Ordinal);
                    var unreachable = !alive.Contains(peer) || !link.IsUp;
                    link.Seal(withRecent: lost && unreachable);
                    sealedLinks.Add(link);
                    if (lost && unreachable)
                    {
                        (lostPeers ??= []).Add(peer);
                    }
                }
            }

            if (changed || sealedLinks.Count > 0)
            {
                if (changed)
                {
                    ownersChanged = true;
                    _previous = _ownership;
                    SetMarker(next);
                    _handsOver = current.Members.Where(m => m.Liveness is "alive" or "suspect" && !_refused.Contains(m.Id)).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
                    Volatile.Write(ref _changedAt, _server.Time.GetTimestamp());
                }

                _ownership = next;
                _server.Subjects.Reassign(OwnerOf, alive.Contains, sealedLinks.Count == 0 ? null : record =>
                {
                    foreach (var link in sealedLinks)
                    {
                        foreach (var entry in link.TakeFor(record.Name) ?? [])
                        {
                            Redispatch(entry);
                        }
                    }
                });
                foreach (var link in sealedLinks)
                {
                    foreach (var entry in link.Unseal(subject => next.OwnerOf(subject) == link.Peer))
                    {
                        Redispatch(entry);
                    }
                }

                if (changed)
                {
                    foreach (var link in _links.Values)
                    {
                        link.SendInterest(_markerLine); // behind the copies and hand-overs just queued (a route that is down sends it when it comes up)
                    }
                }
            }

            if (gone is not null)
            {
                var links = new Dictionary<string, RouteLink>(_links, StringComparer.Ordinal);
                foreach (var link in gone)
                {
                    links.Remove(link.Peer);
                    _refused.Remove(link.Peer);
                }

                _links = links;
            }

            RecomputeSynced();
        }

        foreach (var link in gone ?? [])
        {
            _ = link.StopAsync(TimeSpan.Zero);
        }

        if (ownersChanged)
        {
            DispatchParked(); // seeds that went round may have an owner now
        }

        ReleaseIfSynced();

        // Subjects whose last publisher was at a server that is gone wait for a publisher to come back.
        foreach (var peer in (gone?.Select(l => l.Peer) ?? []).Concat(lostPeers ?? []))
        {
            foreach (var record in _server.Subjects.All)
            {
                record.SourceLost(peer);
            }
        }
    }

    internal static string SubjectOf(byte[] line)
    {
        var span = line.AsSpan();
        var start = span.IndexOf((byte)' ') + 1;
        var length = span[start..].IndexOfAny((byte)' ', (byte)'\n');
        return System.Text.Encoding.UTF8.GetString(span.Slice(start, length));
    }

    // Lines this server rendered or already accepted: no limits to enforce again.
    private static readonly RttpLimits OwnLines = new() { MaxLineBytes = int.MaxValue, MaxFields = int.MaxValue };

    /// <summary>A publication that waited for a server that lost its subjects: published again here (to the new owner, or applied).</summary>
    private void Redispatch(RouteLink.Entry entry)
    {
        var frame = new RttpFrame();
        var line = entry.Line;
        if (RttpParser.TryParse(new ReadOnlySequence<byte>(line.AsMemory(0, line.Length - 1)), frame, OwnLines, out _) == RttpErrorCode.None)
        {
            Interlocked.Increment(ref _redispatched);
            var outcome = Apply(frame, defaultHop: 0, from: null, entry.Origin);
            if (entry.Origin.RouteIndex != 0)
            {
                Connections.ClientSession.Settle(entry.Origin, outcome, frame.Arg(0));
            }
        }
    }

    /// <summary>
    /// A PUB or PUBIMAGE that came over a route (from a server that took us for the owner): applied,
    /// or passed on to the owner (<see cref="PublishOutcome.Forwarded"/>: <paramref name="origin"/>
    /// then waits for its acknowledgement), or refused here (<see cref="PublishOutcome.TooLarge"/>:
    /// the route session tells the sender). The route session settles the outcome itself.
    /// </summary>
    internal PublishOutcome OnRoutedPublication(RttpFrame frame, string from, PubOrigin origin) => Apply(frame, defaultHop: 1, from, origin);

    private PublishOutcome Apply(RttpFrame frame, int defaultHop, string? from, PubOrigin origin)
    {
        var hop = frame.TryGetMeta("hop"u8, out var h) && int.TryParse(h, out var n) ? n : defaultHop;
        if (frame.TryGetMeta("seed"u8, out var seed) && TryParseSeed(seed, out var epoch, out _))
        {
            var kind = frame.TryGetMeta("handover"u8, out _) ? SeedKind.Handover : frame.TryGetMeta("copy"u8, out _) ? SeedKind.Copy : SeedKind.Orphan;
            _server.Subjects.Seed(frame.Arg(0), frame, epoch, kind, hop);
            return PublishOutcome.Applied;
        }

        var stamp = frame.TryGetMeta("ts"u8, out var ts) && ulong.TryParse(ts, out var t) ? t : 0;
        var outcome = _server.Subjects.Publish(frame.Arg(0), frame, frame.Verb == RttpVerb.PubImage, hop, from, stamp, origin);
        if (origin.RouteIndex == 0)
        {
            Connections.ClientSession.Settle(origin, outcome, frame.Arg(0)); // the route session settles its own
        }

        return outcome;
    }

    private static bool TryParseSeed(ReadOnlySpan<byte> text, out ulong epoch, out ulong seq)
    {
        var dot = text.IndexOf((byte)'.');
        seq = 0;
        return ulong.TryParse(dot < 0 ? text : text[..dot], out epoch) & dot >= 0 && ulong.TryParse(text[(dot + 1)..], out seq);
    }

    /// <summary>A message from a subject's owner over our route to it.</summary>
    public void OnRouteMessage(string peer, RttpFrame frame)
    {
        Interlocked.Increment(ref _received);
        var record = _server.Subjects.Find(frame.Arg(0));
        if (record is null)
        {
            return; // nobody here wants it any more
        }

        switch (frame.Verb)
        {
            case RttpVerb.Image when frame.TryGetUInt64(1, out var epoch) && frame.TryGetUInt64(2, out var seq):
                record.ApplyImage(peer, frame, epoch, seq, this);
                break;
            case RttpVerb.Update when frame.TryGetUInt64(1, out var epoch) && frame.TryGetUInt64(2, out var seq):
                record.ApplyUpdate(peer, frame, epoch, seq);
                break;
            case RttpVerb.Status when SubjectStatusNames.TryParse(frame.Arg(1), out var status):
                record.ApplyStatus(peer, status, this);
                break;
            default:
                break;
        }
    }

    /// <summary>
    /// A peer opened a route to this server: it is up, so the route to it need not wait out a
    /// backoff. If it tells another life than the process the route to it is connected to, that
    /// process is gone (killed and started again faster than silence or the membership would
    /// tell): the route is opened again now, so that the new process gets this server's copies and
    /// the publications it may have lost within a round trip, while it still holds its new records
    /// for them, instead of seconds later into records that started from nothing.
    /// </summary>
    public void OnInboundRoute(string peer, ulong life)
    {
        RouteLink? link;
        lock (_lock)
        {
            _links.TryGetValue(peer, out link);
        }

        if (link is null)
        {
            return;
        }

        if (link.IsUp && life != 0 && link.PeerLife != 0 && link.PeerLife != life)
        {
            Interlocked.Increment(ref _restartsSeen);
            Log.PeerRestarted(_log, peer);
            link.Reconnect();
        }
        else if (!link.IsUp)
        {
            link.RetryNow();
        }
    }

    private long _restartsSeen;

    // The owners barrier. After this server applied a change of owners (its records reassigned, its
    // copies and hand-overs queued on the routes), it sends every peer `PING owners-<fingerprint>`
    // on the route, behind them; when a route comes up, after what it sends first. A route's lines
    // are handled in order, so a peer that received the PING with the fingerprint of its own owners
    // has received every copy this server had for the subjects it now owns. Once every peer not
    // known gone has sent the current fingerprint since the last change here, the records that
    // hold for a hand-over or a copy stop waiting (they would wait HoldLimit, 1 s, when nobody has
    // a copy: an owner killed with nobody else subscribed). Under _lock.
    private string _marker = "";
    private byte[] _markerLine = [];
    private readonly Dictionary<string, string> _synced = new(StringComparer.Ordinal);
    private readonly HashSet<string> _answered = new(StringComparer.Ordinal);
    private volatile bool _allSynced;

    /// <summary>The owners barrier's line for the current owners (<c>PING owners-&lt;hex&gt;</c>): a route sends it after what it sends first when it comes up.</summary>
    public byte[] MarkerLine => Volatile.Read(ref _markerLine);

    /// <summary>True while every peer not known gone has confirmed the current owners since they last changed here.</summary>
    public bool AllSynced => _allSynced;

    private void SetMarker(Ownership owners)
    {
        _marker = $"owners-{owners.Fingerprint:x16}";
        Volatile.Write(ref _markerLine, System.Text.Encoding.ASCII.GetBytes($"PING {_marker}\n"));
        _synced.Clear();
        _answered.Clear();
        _allSynced = false;
    }

    // Under _lock.
    private void RecomputeSynced()
    {
        foreach (var (peer, _) in _links)
        {
            if (!_refused.Contains(peer) && (!_synced.TryGetValue(peer, out var token) || token != _marker))
            {
                _allSynced = false;
                return;
            }
        }

        _allSynced = true;
    }

    /// <summary>
    /// A peer's route sent <c>PING owners-&lt;hex&gt;</c>: its owners, and everything it sent before.
    /// The first time since the last change here that it names this server's own owners, this
    /// server answers with its own (so each side hears the other after its own change); when every
    /// peer has, the holds end.
    /// </summary>
    public void OnPeerSynced(string peer, string token)
    {
        lock (_lock)
        {
            _synced[peer] = token;
            if (token == _marker && _answered.Add(peer) && _links.TryGetValue(peer, out var link))
            {
                link.SendInterest(_markerLine);
            }

            RecomputeSynced();
        }

        ReleaseIfSynced();
    }

    private void ReleaseIfSynced()
    {
        if (_allSynced)
        {
            _server.Subjects.Clock.ReleaseAllHolds();
        }
    }

    /// <summary>The life of the peer process this server's route to <paramref name="peer"/> last reached (0: none yet).</summary>
    public ulong PeerLifeOf(string peer) => _links.TryGetValue(peer, out var link) ? link.PeerLife : 0; // _links is replaced whole, never changed in place


    /// <summary>Peers found started again while a route to their old process was still up.</summary>
    public long RestartsSeen => Interlocked.Read(ref _restartsSeen);

    /// <summary>
    /// The copies this server's replicas of the peer's subjects send it when a route to it comes up
    /// (before anything else on the route, see <see cref="RouteLink"/>'s Up): a restarted owner
    /// gets them before the publications that go again, and so starts its new records from them.
    /// </summary>
    public List<byte[]> CopiesFor(string peer)
    {
        var copies = new List<byte[]>();
        foreach (var record in _server.Subjects.All)
        {
            if (record.Upstream == peer && record.CopyForOwner(peer) is { } copy)
            {
                copies.Add(copy);
            }
        }

        Interlocked.Add(ref _seedsSent, copies.Count);
        return copies;
    }

    public void OnLinkUp(RouteLink link)
    {
        bool reached;
        lock (_lock)
        {
            reached = _refused.Remove(link.Peer);
        }

        if (reached)
        {
            _changes.Writer.TryWrite(null); // a restarted process: it owns its subjects again
        }

        foreach (var record in _server.Subjects.All)
        {
            if (record.Upstream == link.Peer)
            {
                record.Resubscribe(link.Peer, this); // its copy went first (CopiesFor)
            }
            else if (record.Upstream is null)
            {
                record.TellSuccessor(this, again: link.Peer); // a restarted successor forgot its standby copies
            }
        }
    }

    public void OnLinkDown(RouteLink link)
    {
        foreach (var record in _server.Subjects.All)
        {
            if (record.Upstream == link.Peer)
            {
                record.UpstreamLost(link.Peer);
            }
        }
    }

    bool IUpstream.Forward(string owner, RttpFrame frame, ulong stamp, int hop, PubOrigin origin)
    {
        if (frame.TryGetMeta("seed"u8, out _))
        {
            // A seed (a hand-over, a copy: perhaps the only copy of some writes) is never refused:
            // this server's own (hop 0: one parked earlier and dispatched again), or one another
            // server sent here because its table took this server for the owner, passed on with its
            // hop count. If the owner's route has no room, or is gone, it waits with the parked ones
            // (a relayed one used to be dropped there, and the server that sent it keeps nothing a
            // route took). One that went round three times waits until the tables agree. A parked
            // seed's hop count is reset; the route that brought one is acknowledged as for a seed applied.
            if (hop >= 3)
            {
                Park(RenderForward(frame, stamp, 0));
            }
            else
            {
                SeedTo(owner, RenderForward(frame, stamp, hop == 0 ? 0 : hop + 1), hop == 0 ? null : frame, stamp);
            }

            return true;
        }

        // hop >= 3: the owners' tables disagree (a change is still spreading); passing it on
        // further could loop.
        _links.TryGetValue(owner, out var link);
        if (hop < 3 && link is not null && link.SendPublication(RenderForward(frame, stamp, hop == 0 ? 0 : hop + 1), origin))
        {
            if (origin.Session is not null)
            {
                // Publications of clients (or passed on from other servers); a server's own system
                // subjects (/~sys, published every second) are not counted.
                Interlocked.Increment(ref _forwarded);
            }

            return true;
        }

        var reason = hop >= 3 ? RouteDropReason.Hops : link is null ? RouteDropReason.NoRoute : RouteDropReason.Full;
        if (KeepIfUntold(origin, RenderForward(frame, stamp, 0), reason, owner))
        {
            return true;
        }

        CountDropped(reason, System.Text.Encoding.UTF8.GetString(frame.Arg(0)));
        Connections.ClientSession.Reject(origin, frame.Arg(0), reason switch
        {
            RouteDropReason.Hops => "passed between servers too often: the farm's tables disagree; publish again",
            RouteDropReason.NoRoute => $"no route to {owner}, the subject's owner",
            _ => $"too much waits for {owner}, the subject's owner (unreachable); publish again later",
        });
        return false;
    }

    /// <summary>
    /// Whether the publisher of a publication (a client, or the server that passed it on here) can
    /// still be told that it was not applied. One that cannot (it closed after publishing, as a
    /// script does; a server's own /~sys publications; one passed on again after an owner change)
    /// is kept rather than refused: refused, it would be lost without anyone knowing.
    /// </summary>
    internal static bool CanBeTold(PubOrigin origin) => origin.Session is { CanBeTold: true };

    /// <summary>
    /// Keeps a publication that could not be passed on when its publisher cannot be told
    /// (<see cref="CanBeTold"/>): parked with the seeds, and dispatched again on the next
    /// housekeeping ticks to whoever owns its subject then (values merge by stamp, so arriving late
    /// changes nothing but the time; a newer value is never overwritten by it). False when its
    /// publisher can be told, or what is parked is already <see cref="MaxParkedPublicationBytes"/>:
    /// the caller refuses it (counted, and its publisher told if it can be).
    /// </summary>
    /// <param name="origin">Who published it.</param>
    /// <param name="line">The publication as it goes to an owner, without a hop count.</param>
    /// <param name="reason">Why it could not be passed on (<see cref="RouteDropReason.Full"/>: the owner's route is up but has no room).</param>
    /// <param name="owner">The owner it could not reach.</param>
    internal bool KeepIfUntold(PubOrigin origin, byte[] line, RouteDropReason reason, string owner)
    {
        if (CanBeTold(origin) || Interlocked.Read(ref _parkedPublicationBytes) + line.Length > MaxParkedPublicationBytes)
        {
            return false;
        }

        Interlocked.Increment(ref _publicationsParked);
        if (reason == RouteDropReason.Full && _links.TryGetValue(owner, out var link) && link.IsUp)
        {
            _noRoomAt = owner; // no room on a route that is up: it drains; the wait starts again
            Park(line, 0, publication: true);
        }
        else
        {
            Park(line, _parkSince, publication: true);
        }

        return true;
    }

    /// <summary>A publication line as it went over a route, rendered again without its hop count (to be parked).</summary>
    internal static byte[] Unhopped(byte[] line)
    {
        var frame = new RttpFrame();
        return RttpParser.TryParse(new ReadOnlySequence<byte>(line.AsMemory(0, line.Length - 1)), frame, OwnLines, out _) == RttpErrorCode.None
            ? RenderForward(frame, 0, 0)
            : line;
    }

    void IUpstream.Seed(string owner, byte[] line) => SeedTo(owner, line, relayed: null, 0);

    /// <summary>
    /// Sends a seed to its owner, or parks it. <paramref name="relayed"/>: the frame of a seed that
    /// came from another server (<paramref name="line"/> carries its hop count; parked, it is
    /// rendered again without one, as this server's own).
    /// </summary>
    private void SeedTo(string owner, byte[] line, RttpFrame? relayed, ulong stamp)
    {
        // A seed (a hand-over, a copy) can be the only copy of a server's last writes: never
        // refused. When the owner's route has no room (a hand-over of hundreds of thousands of
        // records at once is larger than what a route keeps unacknowledged) or is gone, it is
        // parked and dispatched again on the next housekeeping ticks, to whoever owns it then
        // (values merge by stamp, so arriving later changes nothing but the time).
        if (_links.TryGetValue(owner, out var link) && link.SendPublication(line, PubOrigin.None))
        {
            if (relayed is null)
            {
                Interlocked.Increment(ref _seedsSent);
            }

            return;
        }

        var parked = relayed is null ? line : RenderForward(relayed, stamp, 0);
        if (link is not null && link.IsUp)
        {
            _noRoomAt = owner; // no room on a route that is up: it drains; the wait starts again
            Park(parked, 0);
        }
        else
        {
            Park(parked);
        }
    }

    private void Park(byte[] line) => Park(line, _parkSince);

    /// <param name="line">The seed, or the publication (see <see cref="KeepIfUntold"/>).</param>
    /// <param name="since">When it started waiting (0: now).</param>
    /// <param name="publication">A publication (counted in <see cref="MaxParkedPublicationBytes"/>), not a seed.</param>
    private void Park(byte[] line, long since, bool publication = false)
    {
        if (publication)
        {
            Interlocked.Add(ref _parkedPublicationBytes, line.Length);
        }
        else
        {
            Interlocked.Increment(ref _seedsParked);
        }

        lock (_parkLock)
        {
            _parked.Add((line, since != 0 ? since : _server.Time.GetTimestamp(), publication));
        }
    }

    void IUpstream.Subscribe(string owner, byte[] subjectUtf8) => Interest(owner, "SUB "u8, subjectUtf8);

    void IUpstream.Unsubscribe(string owner, byte[] subjectUtf8) => Interest(owner, "UNSUB "u8, subjectUtf8);

    void IUpstream.Standby(string successor, byte[] subjectUtf8)
    {
        // Only to a peer that said it keeps standby copies (its route WELCOME; an older build does
        // not know the verb). A route that is down drops it: OnLinkUp tells the successor again.
        if (_links.TryGetValue(successor, out var link) && link.PeerKeepsStandby)
        {
            Interlocked.Increment(ref _standbyAsked);
            Interest(link, "STANDBY "u8, subjectUtf8);
        }
    }

    private void Interest(string owner, ReadOnlySpan<byte> verb, byte[] subjectUtf8)
    {
        if (_links.TryGetValue(owner, out var link))
        {
            Interest(link, verb, subjectUtf8);
        }
    }

    private static void Interest(RouteLink link, ReadOnlySpan<byte> verb, byte[] subjectUtf8)
    {
        var line = new byte[verb.Length + subjectUtf8.Length + 1];
        verb.CopyTo(line);
        subjectUtf8.CopyTo(line, verb.Length);
        line[^1] = (byte)'\n';
        link.SendInterest(line);
    }

    /// <summary>
    /// <c>PUB|PUBIMAGE subject [@ts=stamp] [@hop=n] [other meta] fields</c>: a publication as it goes
    /// to the owner, with the stamp it got here (a seed keeps its own stamps). A client's
    /// <c>@ack</c> stays here: the owner acknowledges the route, this server the client.
    /// </summary>
    private static byte[] RenderForward(RttpFrame frame, ulong stamp, int hop)
    {
        var w = new ArrayBufferWriter<byte>(frame.Line.Length + 48);
        RttpWriter.WriteRaw(w, frame.Verb == RttpVerb.PubImage ? "PUBIMAGE "u8 : "PUB "u8);
        RttpWriter.WriteRaw(w, frame.Arg(0));
        if (stamp != 0)
        {
            RttpWriter.WriteRaw(w, " @ts="u8);
            RttpWriter.WriteNumber(w, stamp);
        }

        if (hop > 0)
        {
            RttpWriter.WriteRaw(w, " @hop="u8);
            RttpWriter.WriteNumber(w, (ulong)hop);
        }

        for (var i = 0; i < frame.MetaCount; i++)
        {
            var name = frame.MetaName(i);
            if (name.SequenceEqual("hop"u8) || name.SequenceEqual("ack"u8) || (stamp != 0 && name.SequenceEqual("ts"u8)))
            {
                continue;
            }

            RttpWriter.WriteRaw(w, " @"u8);
            RttpWriter.WriteRaw(w, name);
            RttpWriter.WriteRaw(w, "="u8);
            RttpWriter.WriteRaw(w, frame.MetaValue(i));
        }

        if (frame.FieldsSectionIsClean)
        {
            if (frame.FieldCount > 0)
            {
                RttpWriter.WriteRaw(w, " "u8);
                RttpWriter.WriteRaw(w, frame.FieldsSection);
            }
        }
        else
        {
            for (var i = 0; i < frame.FieldCount; i++)
            {
                RttpWriter.WriteRaw(w, " "u8);
                RttpWriter.WriteRaw(w, frame.FieldName(i));
                RttpWriter.WriteRaw(w, "="u8);
                RttpWriter.WriteRaw(w, frame.FieldValue(i));
            }
        }

        RttpWriter.WriteRaw(w, "\n"u8);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Stops every route, giving queued lines (a stopping owner's handover) up to <paramref name="flush"/> to leave.</summary>
    public async Task StopAsync(TimeSpan flush)
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }
        }

        // The changes announced so far (this server leaving: its hand-over) are applied first.
        _server.Farm.Changed -= OnFarmChanged;
        _changes.Writer.TryComplete();
        if (_worker is not null)
        {
            await _worker;
        }

        List<RouteLink> links;
        lock (_lock)
        {
            _stopped = true;
            links = [.. _links.Values];
            _links = new(StringComparer.Ordinal);
        }

        await Task.WhenAll(links.Select(l => l.StopAsync(flush)));
    }

    public async ValueTask DisposeAsync() => await StopAsync(TimeSpan.Zero);

    private static partial class Log
    {
        [LoggerMessage(EventId = 3011, Level = LogLevel.Error, Message = "applying a farm table to the routes failed")]
        public static partial void ApplyFailed(ILogger logger, Exception ex);

        [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "route to {Peer} refused: its process is gone; its subjects move now")]
        public static partial void PeerRefused(ILogger logger, string peer);

        [LoggerMessage(EventId = 3013, Level = LogLevel.Warning, Message = "{Peer} was started again while the route to its old process looked up: opening it again")]
        public static partial void PeerRestarted(ILogger logger, string peer);

        [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "subject owners changed from [{Before}] to [{After}]")]
        public static partial void OwnersChanged(ILogger logger, string before, string after);

        [LoggerMessage(EventId = 3021, Level = LogLevel.Warning, Message = "{Count} publication(s) not passed on to their owner ({Reason}), the last of {Subject}; {Told}")]
        public static partial void PublicationsDropped(ILogger logger, long count, string reason, string subject, string told);

        [LoggerMessage(EventId = 3020, Level = LogLevel.Warning, Message = "a copy of {Subject} found no owner for {Seconds} s (the servers' tables disagree): given up")]
        public static partial void SeedLost(ILogger logger, string subject, double seconds);
    }
}

/// <summary>Why a publication was not passed on to its owner (<c>streamfarm_route_dropped_reasons_total</c>).</summary>
internal enum RouteDropReason
{
    /// <summary>No route to the owner in this server's table.</summary>
    NoRoute,

    /// <summary>8 MiB already waited for the owner (unreachable, or not acknowledging).</summary>
    Full,

    /// <summary>Passed between servers three times: their tables disagreed on the owner.</summary>
    Hops,

    /// <summary>The server it was sent to could not pass it on (its NACK UNAVAILABLE).</summary>
    Peer,

    /// <summary>The owner's route stayed down for the stall limit while its process was not known gone.</summary>
    Stalled,

    /// <summary>Kept because its publisher could not be told (see <see cref="RouteManager.KeepIfUntold"/>), then given up: it found no owner for <see cref="RouteManager.ParkLimit"/>.</summary>
    Expired,
}
