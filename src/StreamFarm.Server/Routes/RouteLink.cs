using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using StreamFarm.Protocol;
using StreamFarm.Server.Connections;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Routes;

/// <summary>
/// This server's route to one other server: an RTTP connection to the peer's client port, opened
/// with a route HELLO (farm-key credentials), over which this server sends the publications and
/// the interests (SUB/UNSUB) for subjects the peer owns, and receives their IMAGEs, UPDATEs and
/// STATUSes. It reconnects with backoff for as long as the peer is in the table. Outgoing lines go
/// through a bounded <see cref="OutboundQueue"/> (one socket write per batch); a route that stays
/// full is cut like a slow client and opened again, so one slow peer stalls nobody else.
/// </summary>
internal sealed partial class RouteLink : IAsyncDisposable
{
    /// <summary>Publications kept until the peer acknowledges them, at most (beyond that they are refused and their publishers told).</summary>
    public const long MaxPendingBytes = 8L << 20;

    /// <summary>Publications the peer acknowledged, kept a while longer (bytes at most) in case it dies before its subscribers got them.</summary>
    public const long MaxRecentBytes = 1L << 20;

    private const int MaxRecentCount = 4096;

    /// <summary>Limits on lines between servers (both ways): the servers' own lines, larger than a client's (stamps, whole records).</summary>
    private static readonly byte[] PongLine = "PONG\n"u8.ToArray();
    internal static readonly RttpLimits PeerLimits = new() { MaxLineBytes = 64 << 20, MaxFields = int.MaxValue };
    private readonly RouteManager _manager;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();

    // Under _lock. Every publication (and seed) sent to the peer stays in _unacked, in order, until
    // the peer's ACK says it was applied (ACK n: the first n publications of this connection), then
    // in _recent for a while: if the peer dies, the new owners get both again (a field never goes
    // back to an older write, so what they already have is ignored). While the route is down,
    // _unacked is what waits; when it is up again, _recent and _unacked are sent again in order.
    private readonly LinkedList<Entry> _unacked = new();
    private readonly Queue<Entry> _recent = new();
    private long _unackedBytes;
    private long _recentBytes;
    private long _sent;        // publications sent on the current connection
    private Dictionary<string, List<Entry>>? _sealed; // the peer lost its subjects: publications wait here for their new owners
    private readonly ILogger _log;
    private bool _closed;
    private OutboundQueue? _out;
    private Task? _run;

    // After a route that was up ends: how long, and how often, a failed connection is retried at
    // once rather than after the backoff (see RunAsync).
    private static readonly TimeSpan FastRetryWindow = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan FastRetryDelay = TimeSpan.FromMilliseconds(5);

    // When the link was last up (or made): how long what waits for the peer has waited (RefuseIfStalled).
    private long _downSince;

    // Set while the run loop waits out a backoff: completing it ends the wait (RetryNow).
    private TaskCompletionSource? _nudge;

    // Whether the current (or last) connection was welcomed; only the run loop's task touches it.
    private bool _welcomed;

    // The connection CheckSilence gave up on: it ends with a reset, so that what it had written into a
    // partition is not delivered when the partition heals (after what waited was refused).
    private CancellationTokenSource? _silenced;

    // The current connection (cancelled by Reconnect), and the peer's life from its last WELCOME.
    private CancellationTokenSource? _connection;
    private long _lastReceived;   // timestamp of the current connection's last read
    private long _silenceTicks;   // how long the current connection may stay silent
    private long _lastWritten;    // timestamp of the current connection's last write
    private long _quietPongTicks; // a plain PING is answered only once the connection has written nothing this long (RttpKeepAlive.QuietPongAfter): the peer's session pings a quiet route every interval so that this side hears from it (CheckSilence); the peer only needs to hear from this side within its idle timeout. Answering every PING made a farm at rest two keep-alive lines per route and second (docs/benchmarks.md, "Membership ... at rest"); a peer without idle= in its WELCOME is answered always
    private long _keepAlivePings;
    private long _keepAlivePongs;
    private ulong _peerLife;
    private bool _peerStandby; // the peer's WELCOME said standby=1: it keeps standby copies (STANDBY)
    private string _address;

    public RouteLink(RouteManager manager, string peer, string address, ILogger log)
    {
        _manager = manager;
        Peer = peer;
        _address = address;
        _log = log;
        _downSince = manager.Time.GetTimestamp();
    }

    public string Peer { get; }

    public string Address
    {
        get => Volatile.Read(ref _address);
        set => Volatile.Write(ref _address, value);
    }

    public bool IsUp
    {
        get
        {
            lock (_lock)
            {
                return _out is not null;
            }
        }
    }

    public int Connects { get; private set; }

    /// <summary>Plain (untokened) PINGs the peer sent on this link's connections.</summary>
    public long KeepAlivePings => Interlocked.Read(ref _keepAlivePings);

    /// <summary>How many of <see cref="KeepAlivePings"/> were answered (the others came while the link had written lately).</summary>
    public long KeepAlivePongs => Interlocked.Read(ref _keepAlivePongs);

    /// <summary>The life (<see cref="RouteManager.Life"/>) of the peer process this route last reached; 0 before.</summary>
    public ulong PeerLife => Volatile.Read(ref _peerLife);

    /// <summary>The peer keeps standby copies (its route WELCOME said <c>standby=1</c>): it may be sent <c>STANDBY</c>.</summary>
    public bool PeerKeepsStandby => Volatile.Read(ref _peerStandby);

    /// <summary>Ends the current connection (its peer process is gone); the run loop opens the route again at once.</summary>
    public void Reconnect()
    {
        try
        {
            Volatile.Read(ref _connection)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Start() => _run = Task.Run(RunAsync);

    /// <summary>
    /// A peer that is cut off (a partition, a frozen process) sends nothing, and TCP would take
    /// minutes to notice. The peer PINGs a quiet route every ping interval (1 s by default, from
    /// WELCOME), so a route silent for three intervals (at least 3 s) is taken as down: its subjects
    /// turn STALE here and the route is opened again. From the housekeeping tick.
    /// </summary>
    public void CheckSilence()
    {
        var connection = Volatile.Read(ref _connection);
        var silence = TimeSpan.FromTicks(Volatile.Read(ref _silenceTicks));
        if (connection is null || connection.IsCancellationRequested || _manager.Time.GetElapsedTime(Volatile.Read(ref _lastReceived)) <= silence)
        {
            return;
        }

        Log.RouteSilent(_log, Peer, silence.TotalSeconds);
        _manager.CountSilentRoute();
        Volatile.Write(ref _silenced, connection); // ends with a reset (ConnectOnceAsync)
        try
        {
            _ = connection.CancelAsync(); // its callbacks run on the thread pool, not on the housekeeping tick
        }
        catch (ObjectDisposedException)
        {
            // that connection ended meanwhile
        }
    }

    /// <summary>Publications waiting for the peer's acknowledgement.</summary>
    public int Unacknowledged
    {
        get
        {
            lock (_lock)
            {
                return _unacked.Count;
            }
        }
    }

    /// <summary>
    /// The owners changed: from now on publications for the peer wait here, by subject, with the
    /// ones it did not acknowledge yet (and, when it is gone, the ones it acknowledged lately), until
    /// <see cref="TakeFor"/> hands each subject's to its current owner under the record's lock (so
    /// nothing published later overtakes them, whichever way it goes) and <see cref="Unseal"/> ends it.
    /// </summary>
    /// <param name="withRecent">Also the publications it acknowledged lately (the peer is gone: its subscribers may not have had them).</param>
    public void Seal(bool withRecent)
    {
        lock (_lock)
        {
            _sealed ??= new Dictionary<string, List<Entry>>(StringComparer.Ordinal);
            if (withRecent)
            {
                foreach (var e in _recent)
                {
                    AddSealed(e);
                }

                _recent.Clear();
                _recentBytes = 0;
            }

            foreach (var e in _unacked)
            {
                AddSealed(e);
            }

            _unacked.Clear();
            _unackedBytes = 0;
        }
    }

    /// <summary>The sealed publications of one subject, oldest first (null if none).</summary>
    public List<Entry>? TakeFor(string subject)
    {
        lock (_lock)
        {
            return _sealed is not null && _sealed.Remove(subject, out var list) ? list : null;
        }
    }

    /// <summary>
    /// Ends the seal. What waits for subjects the peer owns (<paramref name="ownedByPeer"/>) is queued
    /// for it, in order, before anything sent later; the rest (subjects without a record here) is
    /// returned, to be published again.
    /// </summary>
    public List<Entry> Unseal(Func<string, bool> ownedByPeer)
    {
        lock (_lock)
        {
            var left = new List<Entry>();
            foreach (var (subject, list) in _sealed ?? [])
            {
                if (!ownedByPeer(subject) || _closed)
                {
                    left.AddRange(list);
                    continue;
                }

                foreach (var e in list)
                {
                    e.Number = 0;
                    _unacked.AddLast(e);
                    _unackedBytes += e.Line.Length;
                    if (_out is not null)
                    {
                        e.Number = ++_sent;
                        _out.EnqueueControl(e.Line);
                    }
                }
            }

            _sealed = null;
            return left;
        }
    }

    /// <summary>The link stops for good (the peer left the table): nothing more is taken.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
        }
    }

    /// <summary>
    /// Queues a publication (or a seed) for the peer; kept until acknowledged, up to
    /// <see cref="MaxPendingBytes"/>. False when refused (closed, or too much waits): the caller
    /// tells the publisher.
    /// </summary>
    public bool SendPublication(byte[] line, PubOrigin origin)
    {
        lock (_lock)
        {
            var entry = new Entry(line, origin);
            if (_sealed is not null)
            {
                AddSealed(entry); // handed to the subject's current owner when the seal ends (even for a closing link)
                return true;
            }

            if (_closed)
            {
                return false;
            }

            if (_unackedBytes + line.Length > MaxPendingBytes)
            {
                return false;
            }

            _unacked.AddLast(entry);
            _unackedBytes += line.Length;
            if (_out is not null)
            {
                entry.Number = ++_sent;
                _out.EnqueueControl(line);
            }
            else
            {
                entry.QueuedAt = _manager.Time.GetTimestamp(); // see RefuseIfStalled (no clock read while the route is up)
            }

            return true;
        }
    }

    /// <summary>The peer applied the first <paramref name="count"/> publications of the connection behind <paramref name="queue"/>.</summary>
    private void Acknowledged(OutboundQueue queue, long count)
    {
        List<PubOrigin>? told = null;
        lock (_lock)
        {
            if (_out != queue)
            {
                return; // an older connection's
            }

            while (_unacked.First is { } first && first.Value.Number != 0 && first.Value.Number <= count)
            {
                var e = first.Value;
                _unacked.RemoveFirst();
                _unackedBytes -= e.Line.Length;
                if (e.Origin.Session is not null && (e.Origin.AckId is not null || e.Origin.RouteIndex != 0))
                {
                    (told ??= []).Add(e.Origin);
                }

                e.Origin = PubOrigin.None;
                _recent.Enqueue(e);
                _recentBytes += e.Line.Length;
                while (_recent.Count > MaxRecentCount || _recentBytes > MaxRecentBytes)
                {
                    _recentBytes -= _recent.Dequeue().Line.Length;
                }
            }
        }

        foreach (var origin in told ?? [])
        {
            if (origin.RouteIndex != 0)
            {
                origin.Session!.HopAcknowledged(origin.RouteIndex); // a route's publication this server passed on
            }
            else
            {
                origin.Session!.Acknowledge(origin.AckId!);
            }
        }
    }

    /// <summary>The peer will not apply the <paramref name="number"/>-th publication of this connection (it could not pass it on): its publisher is told.</summary>
    private void Refused(OutboundQueue queue, long number, RttpErrorCode code, string line)
    {
        Entry? refused = null;
        lock (_lock)
        {
            if (_out != queue)
            {
                return;
            }

            for (var node = _unacked.First; node is not null; node = node.Next)
            {
                if (node.Value.Number == number)
                {
                    refused = node.Value;
                    _unacked.Remove(node);
                    _unackedBytes -= refused.Line.Length;
                    break;
                }
            }
        }

        if (refused is not null)
        {
            var subject = RouteManager.SubjectOf(refused.Line);
            if (code == RttpErrorCode.Unavailable)
            {
                // The peer could not pass it on (its route to the owner stalled, no room, the tables
                // disagreed). Refused to a publisher that has gone (or to a route that closed), it
                // was lost without anyone knowing, one hop away from where the same loss was fixed
                // (RefuseIfStalled): the peer cannot know whether this server's publisher is still
                // there, so this server decides. Kept, it goes to whoever owns the subject next.
                if (_manager.KeepIfUntold(refused.Origin, RouteManager.Unhopped(refused.Line), RouteDropReason.Peer, Peer))
                {
                    return;
                }

                _manager.CountDropped(RouteDropReason.Peer, subject);
            }

            ClientSession.Reject(refused.Origin, Encoding.UTF8.GetBytes(subject), code == RttpErrorCode.Unavailable ? $"{Peer} could not pass it on ({line})" : $"refused by {Peer}, the subject's owner ({line})", code);
        }
    }

    /// <summary>
    /// The peer has been unreachable for longer than <paramref name="limit"/> while its process is
    /// not known gone (its route port does not refuse, the membership still has it): what has waited
    /// for it that long is refused, and its publishers told, rather than kept for as long as it stays away. Each
    /// refused publication is dropped here for good, and the connection it was written on ended with
    /// a reset (CheckSilence), so it is not applied later, unless the peer had received it before the
    /// cut (its ACK lost with the route: protocol.md says so). What no publisher can be told about
    /// any more is kept (see below).
    /// </summary>
    public void RefuseIfStalled(TimeSpan limit)
    {
        List<Entry>? refused = null;

        // From the housekeeping tick, which must never wait: a link busy with a bulk of lines (a
        // route coming up with its copies, a change of owners sealing what waits) is checked on a
        // later tick (it is not stalled while something holds it anyway).
        if (!_lock.TryEnter())
        {
            return;
        }

        try
        {
            if (_out is not null || _sealed is not null || _closed || _unacked.Count == 0 || _manager.Time.GetElapsedTime(_downSince) <= limit)
            {
                return;
            }

            // Only what a publisher can still be told about is refused. A publication whose
            // publisher has gone (it closed after publishing, as a script does), or that has no
            // publisher here any more (passed on again after an owner change), is kept: refused, it
            // was lost without anyone knowing (in one million-subject restart 210,186 were refused
            // while the restarted owner's route stayed down, and 23,912 subjects were lost). It goes
            // when the route is up again, or to the subject's next owner if the peer is declared
            // gone; the route's 8 MiB bound still holds, so it cannot pile up.
            for (var node = _unacked.First; node is not null;)
            {
                var next = node.Next;
                // Each publication waits the stall limit itself: refused as soon as it came (the
                // route having been down for long), a publication of a script that closes right
                // after publishing was "told" on a connection that was about to close, and lost
                // (real processes, a partition: 8 of 40 such publications).
                if (RouteManager.CanBeTold(node.Value.Origin) && _manager.Time.GetElapsedTime(node.Value.QueuedAt) > limit)
                {
                    (refused ??= []).Add(node.Value);
                    _unacked.Remove(node);
                    _unackedBytes -= node.Value.Line.Length;
                }

                node = next;
            }
        }
        finally
        {
            _lock.Exit();
        }

        foreach (var e in refused ?? [])
        {
            _manager.CountDropped(RouteDropReason.Stalled, RouteManager.SubjectOf(e.Line));
            ClientSession.Reject(e.Origin, Encoding.UTF8.GetBytes(RouteManager.SubjectOf(e.Line)), $"no route to {Peer}, the subject's owner, for {limit.TotalSeconds:0} s; publish again later");
        }
    }

    private void AddSealed(Entry e)
    {
        var subject = RouteManager.SubjectOf(e.Line);
        if (!_sealed!.TryGetValue(subject, out var list))
        {
            _sealed[subject] = list = [];
        }

        list.Add(e);
    }

    /// <summary>Queues SUB or UNSUB; dropped while the route is down (interests are sent afresh when it comes up).</summary>
    public void SendInterest(byte[] line)
    {
        lock (_lock)
        {
            _out?.EnqueueControl(line);
        }
    }

    /// <summary>Stops the route (what it still holds was handed to new owners when the peer left the table).</summary>
    public async Task StopAsync(TimeSpan flush)
    {
        OutboundQueue? q;
        lock (_lock)
        {
            q = _out;
        }

        if (q is not null && flush > TimeSpan.Zero)
        {
            // Let what is queued (seeds of a handover, last publications) reach the peer first.
            var started = _manager.Time.GetTimestamp();
            while (q.QueuedBytes > 0 && _manager.Time.GetElapsedTime(started) < flush)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10), _manager.Time);
            }
        }

        await _stop.CancelAsync();
        if (_run is not null)
        {
            try
            {
                await _run;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero);
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        var delay = TimeSpan.FromMilliseconds(50);
        var retriedAtOnce = false;
        var fastUntil = 0L;
        while (!_stop.IsCancellationRequested)
        {
            var started = _manager.Time.GetTimestamp();
            var refused = false;
            _welcomed = false;
            try
            {
                await ConnectOnceAsync();
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException or RttpProtocolException or InvalidOperationException)
            {
                if (!_stop.IsCancellationRequested)
                {
                    Log.RouteFailed(_log, Peer, Address, ex.Message);
                    if (ex is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
                    {
                        // Nothing listens on the peer's route port: its process is gone (a paused or
                        // cut-off process still has its port open). Its subjects can move at once.
                        refused = true;
                        _manager.OnPeerRefused(this);
                    }
                }
            }

            if (_stop.IsCancellationRequested)
            {
                break;
            }

            // Welcomed whether the connection then ended cleanly (the peer closed) or with an error
            // (a write to a killed peer fails with a reset): both are a route that was up and ended.
            var welcomed = _welcomed;
            if (welcomed && (!retriedAtOnce || _manager.Time.GetElapsedTime(started) > TimeSpan.FromSeconds(1)))
            {
                // A route that was up just ended: try again at once, so that a peer that died is
                // known (refused) within a round trip, not after a backoff. Once: a peer that
                // welcomes and drops routes again and again gets the backoff.
                retriedAtOnce = true;
                delay = TimeSpan.FromMilliseconds(50);
                fastUntil = _manager.Time.GetTimestamp() + (long)(FastRetryWindow.TotalSeconds * _manager.Time.TimestampFrequency);
                continue;
            }

            if (!welcomed && !refused && _manager.Time.GetTimestamp() < fastUntil)
            {
                // Just after a route ended, a killed peer's kernel can still accept a connection (its
                // listening socket closes a few milliseconds after the routes' sockets) and then reset
                // it. Try again every few milliseconds for a short while, not after a backoff, so the
                // refusal that proves the process gone is seen as soon as it can be.
                try
                {
                    await Task.Delay(FastRetryDelay, _manager.Time, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                continue;
            }

            fastUntil = 0;
            retriedAtOnce = false;

            delay = welcomed ? TimeSpan.FromMilliseconds(50) : TimeSpan.FromMilliseconds(Math.Min(2000, delay.TotalMilliseconds * 2));
            var nudge = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _nudge, nudge);
            await Task.WhenAny(Task.Delay(delay * (0.5 + _manager.Random.NextDouble()), _manager.Time, _stop.Token), nudge.Task);
            Volatile.Write(ref _nudge, null);
            if (nudge.Task.IsCompleted)
            {
                delay = TimeSpan.FromMilliseconds(50); // the peer is back: start the backoff afresh
            }
        }
    }

    /// <summary>
    /// Evidence that the peer is up (it opened a route to this server): a connection waiting out its
    /// backoff (grown while the peer was down, up to 2 s) is tried now.
    /// </summary>
    public void RetryNow() => Volatile.Read(ref _nudge)?.TrySetResult();

    /// <summary>One connection's life; true if it was welcomed (also kept in <see cref="_welcomed"/>, which an error ending the connection does not lose).</summary>
    private async Task<bool> ConnectOnceAsync()
    {
        var transport = await _manager.ConnectionFactory.ConnectAsync(Address, _manager.BindAddress, _stop.Token);
        var reader = transport.Input;
        var writer = transport.Output;
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        Volatile.Write(ref _lastReceived, _manager.Time.GetTimestamp()); // before the connection is published: CheckSilence reads them in the other order
        Volatile.Write(ref _silenceTicks, TimeSpan.FromSeconds(3).Ticks);
        Volatile.Write(ref _quietPongTicks, 0); // every PING is answered until the peer's WELCOME says how long it waits
        Volatile.Write(ref _peerStandby, false); // until this connection's WELCOME says so (the peer may be another build now)
        Volatile.Write(ref _connection, connection);
        var queue = new OutboundQueue(_manager.RouteBufferBytes, _manager.Time)
        {
            // What this queue holds is bounded by this server's own state, not by the peer: the
            // publications waiting for an ACK (refused past their own limit), a copy or a request
            // per subject (seeds, SUB, STANDBY; at a restart or a change of owners, one per subject
            // at once). Cut at four times the limit, a farm with large tables cut its routes on its
            // own bursts, opened them again, sent everything again and was cut again, for ever
            // (400,000 subjects, a server restarted: millions of cuts). The cap is a last guard.
            HardLimitBytes = 64L * _manager.RouteBufferBytes,
            HardLimitExceeded = () =>
            {
                _manager.CountSlowRoute();
                connection.Cancel();
            },
        };
        var hello = Encoding.UTF8.GetBytes($"HELLO 1 client=route life={_manager.Life:x} {_manager.Auth.Credentials(_manager.SelfId, Peer)}\n");
        queue.EnqueueControl(hello);
        var writing = queue.RunWriterAsync(writer, _ => { }, () => Volatile.Write(ref _lastWritten, _manager.Time.GetTimestamp()), connection.Token);
        var welcomed = false;
        var frame = new RttpFrame();

        // A silent peer is noticed by CheckSilence, from the server's housekeeping tick (a quarter of
        // the ping interval): one timer for every route rather than a timer per route waking twice a
        // second.
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(connection.Token);
                Volatile.Write(ref _lastReceived, _manager.Time.GetTimestamp());
                var buffer = result.Buffer;
                try
                {
                    while (RttpLineReader.TryReadLine(ref buffer, PeerLimits.MaxLineBytes, out var line) == OperationStatus.Done)
                    {
                        var error = RttpParser.TryParse(line, frame, PeerLimits, out var reason);
                        if (error != RttpErrorCode.None)
                        {
                            throw new RttpProtocolException(error, $"route from {Peer}: {reason}");
                        }

                        switch (frame.Verb)
                        {
                            case RttpVerb.Welcome:
                                welcomed = true;
                                _welcomed = true;
                                if (frame.TryGetField("ping"u8, out var ping) && int.TryParse(ping, out var pingMs) && pingMs > 0)
                                {
                                    Volatile.Write(ref _silenceTicks, TimeSpan.FromMilliseconds(Math.Max(3000, 3L * pingMs)).Ticks);
                                }

                                Volatile.Write(ref _quietPongTicks, RttpKeepAlive.QuietPongAfter(frame).Ticks);

                                if (frame.TryGetField("life"u8, out var life) && ulong.TryParse(life, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var peerLife))
                                {
                                    Volatile.Write(ref _peerLife, peerLife);
                                }

                                Volatile.Write(ref _peerStandby, frame.TryGetField("standby"u8, out var standby) && standby.SequenceEqual("1"u8));

                                Up(queue, _manager.CopiesFor(Peer));
                                break;
                            case RttpVerb.Image or RttpVerb.Update or RttpVerb.Status:
                                _manager.OnRouteMessage(Peer, frame);
                                break;
                            case RttpVerb.Ack when frame.TryGetUInt64(0, out var count):
                                if (frame.TryGetMeta("ts"u8, out var ts) && ulong.TryParse(ts, out var stamp))
                                {
                                    _manager.ObserveClock(stamp);
                                }

                                Acknowledged(queue, (long)count);
                                break;
                            case RttpVerb.Nack when frame.ArgCount > 0 && long.TryParse(frame.Arg(0), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var refused):
                                Refused(queue, refused, frame.ArgCount > 1 && RttpErrors.Parse(frame.Arg(1)) is var code and not RttpErrorCode.None ? code : RttpErrorCode.Unavailable, Encoding.UTF8.GetString(frame.Line.Span));
                                break;
                            case RttpVerb.Ping when frame.ArgCount > 0:
                                // A token (the owners barrier, a peer's probe) is always answered: the peer waits for it.
                                queue.EnqueueControl(RttpServer.Render(w => RttpWriter.WritePingPong(w, pong: true, frame.Arg(0))));
                                break;
                            case RttpVerb.Ping:
                                Interlocked.Increment(ref _keepAlivePings);
                                if (_manager.Time.GetElapsedTime(Volatile.Read(ref _lastWritten)) >= TimeSpan.FromTicks(Volatile.Read(ref _quietPongTicks)))
                                {
                                    Interlocked.Increment(ref _keepAlivePongs);
                                    Volatile.Write(ref _lastWritten, _manager.Time.GetTimestamp()); // queued now: the next PINGs of this burst are not answered too
                                    queue.EnqueueControl(PongLine);
                                }

                                break;
                            case RttpVerb.Err:
                                Log.RouteError(_log, Peer, Encoding.UTF8.GetString(frame.Line.Span));
                                if (!welcomed || RttpErrors.Parse(frame.Arg(0)).IsFatal())
                                {
                                    return welcomed;
                                }

                                break;
                            case RttpVerb.Bye:
                                return welcomed;
                            default:
                                break; // FARM, SERVER, MOVE, PONG: membership is the route's source of truth
                        }
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted)
                {
                    return welcomed;
                }
            }
        }
        finally
        {
            Down(queue, welcomed);
            await connection.CancelAsync();
            try
            {
                await writing;
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException or ObjectDisposedException or SocketException)
            {
            }

            if (ReferenceEquals(Volatile.Read(ref _silenced), connection) && transport is Transport.IResettableConnection resettable)
            {
                resettable.Reset();
            }

            await reader.CompleteAsync();
            try
            {
                await writer.CompleteAsync();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
            {
                // what it still held could not be written: the connection was reset
            }
        }
    }

    private void Up(OutboundQueue queue, List<byte[]> copies)
    {
        lock (_lock)
        {
            // First this server's copies of the peer's subjects (a restarted peer starts its records
            // from them, and they are kept until acknowledged like a publication), then what the
            // peer acknowledged lately (a restarted peer lost it; a peer that has it ignores it:
            // a field never goes back to an older write), then what it never acknowledged, in order.
            _sent = 0;
            var first = copies.ConvertAll(c => new Entry(c, PubOrigin.None));
            foreach (var e in first)
            {
                e.Number = ++_sent;
                queue.EnqueueControl(e.Line);
            }

            foreach (var e in _recent)
            {
                queue.EnqueueControl(e.Line);
                _sent++;
            }

            foreach (var e in _unacked)
            {
                e.Number = ++_sent;
                queue.EnqueueControl(e.Line);
            }

            for (var i = first.Count - 1; i >= 0; i--)
            {
                _unacked.AddFirst(first[i]);
                _unackedBytes += first[i].Line.Length;
            }

            queue.EnqueueControl(_manager.MarkerLine); // the owners barrier: everything above came first

            _out = queue;
            _downSince = 0;
            Connects++;
        }

        Log.RouteUp(_log, Peer, Address);
        _manager.OnLinkUp(this);
    }

    private void Down(OutboundQueue queue, bool welcomed)
    {
        lock (_lock)
        {
            if (_out == queue)
            {
                _out = null;
                _downSince = _manager.Time.GetTimestamp();
                foreach (var e in _unacked)
                {
                    e.Number = 0; // not sent on any connection now
                }
            }
        }

        queue.Complete(null, discardPending: true);
        if (welcomed)
        {
            Log.RouteDown(_log, Peer);
            _manager.OnLinkDown(this);
        }
    }

    /// <summary>A publication on its way to the peer: its line (stamped), who to tell, and its number on the current connection (0: not sent).</summary>
    internal sealed class Entry(byte[] line, PubOrigin origin)
    {
        public byte[] Line { get; } = line;

        public PubOrigin Origin { get; set; } = origin;

        public long Number { get; set; }

        /// <summary>
        /// When it was queued for this peer while the route was down; 0 when the route was up then
        /// (so it has waited at least as long as the route has been down since), or for a copy.
        /// </summary>
        public long QueuedAt { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "route to {Peer} at {Address} is up")]
        public static partial void RouteUp(ILogger logger, string peer, string address);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "route to {Peer} is down")]
        public static partial void RouteDown(ILogger logger, string peer);

        [LoggerMessage(EventId = 3003, Level = LogLevel.Debug, Message = "route to {Peer} at {Address}: {Reason}")]
        public static partial void RouteFailed(ILogger logger, string peer, string address, string reason);

        [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "route to {Peer}: nothing received for {Seconds} s; closing it")]
        public static partial void RouteSilent(ILogger logger, string peer, double seconds);

        [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "route to {Peer}: {Line}")]
        public static partial void RouteError(ILogger logger, string peer, string line);
    }
}
