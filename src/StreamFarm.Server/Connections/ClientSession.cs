using System.Buffers;
using System.IO.Pipelines;
using StreamFarm.Protocol;
using StreamFarm.Server.Auth;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Connections;

/// <summary>
/// One client connection: a read loop (parse, handle) and a write loop (drain the outbound queue),
/// each owning its own state. Commands are in <c>ClientSession.Commands.cs</c>.
/// </summary>
internal sealed partial class ClientSession : IDisposable
{
    private readonly RttpServer _server;
    private readonly IDuplexPipe _transport;
    private readonly CancellationTokenSource _writeCancel = new();
    private readonly RttpFrame _frame = new();
    private readonly Dictionary<string, SubjectRecord> _subscriptions = new(StringComparer.Ordinal);
    private readonly long _startedAt;
    private long _lastReceived;
    private int _handlingInput; // 1 while the read loop works through what it read: the client is not silent then, we are busy
    private long _lastSent;
    private long _lastPing; // only the housekeeping timer reads and writes it
    private int _closing;
    private long _closedAt; // timestamp of Close; 0 while open
    private long _routePublications; // route sessions: PUB lines handled
    private long _routeAcknowledged;  // under _ackLock
    private readonly Lock _ackLock = new();
    private SortedSet<long>? _pendingHops; // route sessions: publications passed on, not acknowledged by their owner yet
    private readonly long _stallsAtStart;
    private Permissions? _permissions;

    public ClientSession(RttpServer server, IDuplexPipe transport, string remote, long id, bool onRoutePort = false)
    {
        OnRoutePort = onRoutePort;
        _server = server;
        _transport = transport;
        Remote = remote;
        Id = id;
        _startedAt = _lastReceived = _lastSent = server.Time.GetTimestamp();
        // A connection accepted now is not from before a pause this process has not counted yet
        // (right after SIGCONT, before the housekeeping tick): count it first, so that only the
        // sessions that were open during the pause are closed for it. A connection the kernel
        // accepted during the pause, first seen by the process now, cannot be told from one made
        // just after it; its lines are applied (docs/protocol.md, "Keep-alive").
        server.Subjects.Clock.CheckStall();
        _stallsAtStart = server.Subjects.Clock.Stalls;
        Outbound = new OutboundQueue(server.Options.Limits.MaxOutboundBytes, server.Time)
        {
            HardLimitExceeded = () => CloseSlowConsumer("outbound buffer exceeded four times its limit"),
        };
    }

    public long Id { get; }

    /// <summary>The session was open before the latest silence of the process (<see cref="Subjects.RecordClock.Stalls"/> is now <paramref name="stalls"/>).</summary>
    public bool OpenBeforeStall(long stalls) => _stallsAtStart != stalls;

    public string Remote { get; }

    public OutboundQueue Outbound { get; }

    public bool IsWelcomed => _permissions is not null;

    /// <summary>Whether an answer to it can still reach its client (it is not closing or closed).</summary>
    public bool CanBeTold => Volatile.Read(ref _closing) == 0;

    /// <summary>Accepted on the route port: only a route HELLO is taken.</summary>
    public bool OnRoutePort { get; }

    /// <summary>A route from another server of the farm (not a user).</summary>
    public bool IsRoute { get; private set; }

    /// <summary>
    /// Record lines carry the stamps of their writes (<c>@clr</c> and <c>@fts</c> on images,
    /// <c>@ts</c> on updates, <c>@fts</c> on merged updates): every route, and a client that asked
    /// with <c>stamps=1</c> in HELLO, so that it can refuse to go back (docs/protocol.md, 4a).
    /// </summary>
    public bool Stamped => IsRoute || _stampsAsked;

    private bool _stampsAsked;

    /// <summary>For a route: the id of the server at its other end.</summary>
    public string? RoutePeer { get; private set; }

    public string? ClientName { get; private set; }

    /// <summary>Set under the server's farm lock once the full table was queued.</summary>
    public bool ReceivesFarmDeltas { get; set; }

    public DisconnectReason CloseReason { get; private set; }

    /// <summary>The peer ended its side of the connection (FIN, reset, or the transport failed).</summary>
    public bool InputEnded { get; private set; }

    public int SubscriptionCount => Volatile.Read(ref _subscriptionCount);

    private int _subscriptionCount;

    /// <summary>How long a closing connection has to deliver its last lines before its transport is cut.</summary>
    public static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Runs the session: reads and handles every line until the input ends (the peer's FIN or
    /// reset, a fatal error, BYE, a cut), then lets the writer deliver the last lines within
    /// <see cref="CloseGrace"/> of the close and completes both pipes. Returns what is left of the
    /// grace period: the host cuts a transport that has not finished sending by then.
    /// </summary>
    /// <param name="cutTransport">Resets the transport (see <see cref="RttpServer.RunSessionAsync"/>):
    /// called for a cut session at the end of its grace period, before its pipes complete.</param>
    public async Task<TimeSpan> RunAsync(Action? cutTransport = null)
    {
        var writer = Outbound.RunWriterAsync(_transport.Output, _server.CountOut, () => Volatile.Write(ref _lastSent, _server.Time.GetTimestamp()), _writeCancel.Token);
        try
        {
            // The end of input (a half-close) is not the end of the session: every line already
            // received is handled, and its replies are sent, before the connection closes.
            await ReadLoopAsync();
        }
        catch (RttpProtocolException ex)
        {
            CloseWithError(ex.Code, ex.Message, DisconnectReason.ProtocolError);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            InputEnded = true;
            Close(DisconnectReason.TransportError, null);
        }

        Close(DisconnectReason.ClientClosed, null);

        // Give the writer a bounded time to deliver the last lines (BYE, ERR); a client that does not
        // read does not hold the server.
        var left = GraceLeft;
        if (left > TimeSpan.Zero)
        {
            using var stopDelay = new CancellationTokenSource();
            var grace = Task.Delay(left, _server.Time, stopDelay.Token);
            var first = await Task.WhenAny(writer, grace);
            await stopDelay.CancelAsync();
            if (first != writer)
            {
                await _writeCancel.CancelAsync();
            }
        }
        else
        {
            await _writeCancel.CancelAsync();
        }

        try
        {
            await writer;
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException or ObjectDisposedException)
        {
            // the transport is gone or the grace period ended
        }

        if (IsCut)
        {
            // A client that does not keep up: the ERR is in the transport, maybe behind what its
            // buffers hold. It gets the whole grace period to read it; then the transport is cut.
            // (Closing it gracefully would leave the kernel sending the rest to a client that does
            // not read, after the server let go of the socket.) The cut comes before the pipes
            // complete: a completed output lets Kestrel close the socket gracefully at once, and a
            // reset asked for after that finds the socket gone and the kernel keeping it (seen: the
            // socket of a cut client still there a minute later, now and then).
            var toRead = GraceLeft;
            if (toRead > TimeSpan.Zero)
            {
                await Task.Delay(toRead, _server.Time);
            }

            cutTransport?.Invoke();
        }

        Cleanup();
        await _transport.Output.CompleteAsync();
        await _transport.Input.CompleteAsync();
        return GraceLeft;
    }

    /// <summary>Cut for not keeping up (SLOW_CONSUMER): the host aborts the transport at the end of the grace period.</summary>
    public bool IsCut => CloseReason == DisconnectReason.SlowConsumer;

    /// <summary>What is left of <see cref="CloseGrace"/> since the session began to close (all of it while open).</summary>
    public TimeSpan GraceLeft
    {
        get
        {
            var since = Volatile.Read(ref _closedAt);
            var left = since == 0 ? CloseGrace : CloseGrace - _server.Time.GetElapsedTime(since);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    public void Dispose() => _writeCancel.Dispose();

    /// <summary>Ends the session: queues the last lines (if any), stops reading, lets the writer drain.</summary>
    public void Close(DisconnectReason reason, byte[]? finalLines, bool discardPending = false)
    {
        if (Interlocked.Exchange(ref _closing, 1) == 1)
        {
            return;
        }

        CloseReason = reason;
        Volatile.Write(ref _closedAt, Math.Max(1, _server.Time.GetTimestamp()));
        Outbound.Complete(finalLines, discardPending);
        try
        {
            _transport.Input.CancelPendingRead();
        }
        catch (InvalidOperationException)
        {
            // reader already completed
        }
    }

    /// <summary>Called by the server's timer: hello timeout, idle timeout, ping, slow consumer.</summary>
    /// <param name="idleGrace">The server was paused lately: nobody is cut as idle yet.</param>
    public void Housekeep(bool idleGrace = false)
    {
        if (Volatile.Read(ref _closing) == 1)
        {
            return;
        }

        var limits = _server.Options.Limits;
        var time = _server.Time;
        if (!IsWelcomed)
        {
            if (time.GetElapsedTime(_startedAt) > limits.HelloTimeout)
            {
                CloseWithError(RttpErrorCode.HelloTimeout, $"no HELLO within {limits.HelloTimeout.TotalSeconds:0.#} s", DisconnectReason.HelloTimeout);
            }

            return;
        }

        if (!TokenStillGood())
        {
            return;
        }

        if (Outbound.OverLimitFor > limits.SlowConsumerTimeout)
        {
            CloseSlowConsumer($"outbound buffer over {limits.MaxOutboundBytes} bytes for more than {limits.SlowConsumerTimeout.TotalSeconds:0.#} s");
            return;
        }

        var (pingInterval, idleTimeout) = KeepAlive;
        if (!idleGrace && Volatile.Read(ref _handlingInput) == 0 && time.GetElapsedTime(Volatile.Read(ref _lastReceived)) > idleTimeout)
        {
            CloseWithError(RttpErrorCode.Idle, $"nothing received for {idleTimeout.TotalSeconds:0.#} s", DisconnectReason.IdleTimeout);
            return;
        }

        // PING when we have sent nothing for a ping interval (the client learns we are alive), or
        // received nothing for half the idle timeout (a subscriber that only reads gets something to
        // answer before its idle timeout, and more chances at each interval after that), at most
        // once per interval. Not at every interval of input silence: a farm's subscribers mostly
        // only read, and a PING and its PONG each second for each of them was as many system calls
        // as the updates themselves at 10,000 subscribers. A route (its peer pings on its own) keeps
        // the interval.
        var inputSilence = IsRoute ? pingInterval : TimeSpan.FromTicks(Math.Max(pingInterval.Ticks, idleTimeout.Ticks / 2));
        var quiet = time.GetElapsedTime(Volatile.Read(ref _lastSent)) >= pingInterval
            || time.GetElapsedTime(Volatile.Read(ref _lastReceived)) >= inputSilence;
        if (quiet && time.GetElapsedTime(_lastPing) >= pingInterval)
        {
            _lastPing = time.GetTimestamp();
            Outbound.EnqueueControl(PingLine);
        }
    }

    private static readonly byte[] PingLine = "PING\n"u8.ToArray();

    private async Task ReadLoopAsync()
    {
        var input = _transport.Input;
        while (Volatile.Read(ref _closing) == 0)
        {
            var result = await input.ReadAsync();
            if (result.IsCanceled)
            {
                return;
            }

            var buffer = result.Buffer;
            Volatile.Write(ref _lastReceived, _server.Time.GetTimestamp());
            if (!IsRoute && _server.WasStalledSince(_stallsAtStart))
            {
                // This process was paused while these bytes waited: they may be seconds old, and
                // the farm may have moved on (other owners, newer values). Nothing of it is applied;
                // the client reconnects and sends again what it still means.
                var pause = _server.Subjects.Clock.LastPause.TotalSeconds;
                Close(DisconnectReason.ServerPaused, System.Text.Encoding.UTF8.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"BYE PAUSED server {_server.Options.Id} was paused for {pause:0.0} s: what you sent meanwhile was not applied; reconnect\n")));
                input.AdvanceTo(buffer.End);
                return;
            }

            Volatile.Write(ref _handlingInput, 1);
            var backPressure = false;
            var wakes = WakeBatch.Begin(); // the subscribers' writers wake once per buffer, not per line
            try
            {
                while (Volatile.Read(ref _closing) == 0)
                {
                    // A route's lines are the servers' own: a client's longest PUB with the stamps and hop
                    // count added, a record's copy with every field's stamp. They are read with the peers'
                    // limits (Routes.RouteLink.PeerLimits), never the clients': a route that refused one
                    // would be cut, reconnect, send it again, and be cut again, for every publication after it.
                    var maxLine = IsRoute ? Routes.RouteLink.PeerLimits.MaxLineBytes : _server.Limits.MaxLineBytes;
                    if (IsRoute && Outbound.IsOverLimit)
                    {
                        // Back-pressure on a route: what its lines ask for (an IMAGE per SUB, after
                        // a restart or a change of owners: hundreds of thousands at once with large
                        // tables) waits in the peer's socket until this server's answers drain,
                        // instead of growing the queue past its hard limit: the route was cut, came
                        // back, subscribed to everything again and was cut again, for ever.
                        backPressure = true;
                        break;
                    }

                    var status = RttpLineReader.TryReadLine(ref buffer, maxLine, out var line);
                    if (status == OperationStatus.Done)
                    {
                        HandleLine(line);
                        _server.AfterLineForTesting?.Invoke(this);
                    }
                    else if (status == OperationStatus.InvalidData)
                    {
                        CloseWithError(RttpErrorCode.LineTooLong, $"line longer than {maxLine} bytes", DisconnectReason.ProtocolError);
                        return;
                    }
                    else
                    {
                        break;
                    }
                }
            }
            finally
            {
                wakes.End();
                input.AdvanceTo(buffer.Start, backPressure ? buffer.Start : buffer.End); // held back: the rest is read again without waiting for more

                // The silence the idle timeout measures starts when we wait for input again: a
                // buffer of publications to thousands of subscribers can take longer to apply than
                // the idle timeout, and its sender was not idle meanwhile (cutting it there also
                // dropped the rest of what it had sent).
                Volatile.Write(ref _lastReceived, _server.Time.GetTimestamp());
                Volatile.Write(ref _handlingInput, 0);
            }

            if (IsRoute)
            {
                // A route: every publication read so far was applied, or is acknowledged once its
                // owner applied it: one ACK for the batch (see SendRouteAck).
                SendRouteAck();
                if (backPressure)
                {
                    await Outbound.WaitBelowHalfAsync();
                    continue;
                }
            }

            if (result.IsCompleted)
            {
                InputEnded = true;
                return;
            }
        }
    }

    private void HandleLine(in ReadOnlySequence<byte> line)
    {
        var error = RttpParser.TryParse(line, _frame, IsRoute ? Routes.RouteLink.PeerLimits : _server.Limits, out var reason);
        if (error != RttpErrorCode.None)
        {
            if (!IsWelcomed && !StartsWithHelloVerb(line))
            {
                // Before HELLO only a HELLO is taken: anything else (an unknown verb, a lower-case
                // "hello", a PUB with a bad escape) is HELLO_REQUIRED, as for a well-formed SUB. A
                // malformed HELLO gets its own error and may be sent again within the hello timeout.
                SendError(RttpErrorCode.HelloRequired, "send HELLO <versions> first");
                return;
            }

            SendError(error, reason);
            return;
        }

        if (_frame.Verb == RttpVerb.None)
        {
            return; // empty line
        }

        _server.CountIn();
        Dispatch(_frame);
    }

    /// <summary>The line's first token is the verb HELLO (whatever follows it).</summary>
    private static bool StartsWithHelloVerb(in ReadOnlySequence<byte> line)
    {
        Span<byte> head = stackalloc byte[6];
        var n = (int)Math.Min(line.Length, head.Length);
        line.Slice(0, n).CopyTo(head);
        return head[..n] is [(byte)'H', (byte)'E', (byte)'L', (byte)'L', (byte)'O'] or [(byte)'H', (byte)'E', (byte)'L', (byte)'L', (byte)'O', (byte)' '];
    }

    internal void SendError(RttpErrorCode code, string? text, string? meta = null)
    {
        if (code.IsFatal())
        {
            CloseWithError(code, text, DisconnectReason.ProtocolError, meta);
            return;
        }

        Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteError(w, code, text, meta)));
    }

    private void CloseWithError(RttpErrorCode code, string? text, DisconnectReason reason, string? meta = null) =>
        Close(reason, RttpServer.Render(w => RttpWriter.WriteError(w, code, text, meta)));

    private void CloseSlowConsumer(string text)
    {
        if (Volatile.Read(ref _closing) == 0)
        {
            _server.CountSlowConsumerClose();
        }

        // What waits would never be read in time: drop it and send only the reason.
        Close(DisconnectReason.SlowConsumer, RttpServer.Render(w => RttpWriter.WriteError(w, RttpErrorCode.SlowConsumer, text)), discardPending: true);
    }

    private void Cleanup()
    {
        foreach (var record in _subscriptions.Values)
        {
            _server.Subjects.Unsubscribe(record, this);
        }

        _server.CountSubscriptions(-_subscriptions.Count);
        _subscriptions.Clear();
        Volatile.Write(ref _subscriptionCount, 0);
    }
}
