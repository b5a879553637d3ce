using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// One RTTP session with one server over TCP: HELLO/WELCOME, subscribe, publish, and a stream of
/// <see cref="RttpMessage"/>s. It answers the server's pings and keeps the farm table it is sent.
/// The two-step farm connect (DNS, first server, chosen server) builds on this.
/// </summary>
public sealed class RttpConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly DeliveryQueue<RttpMessage> _messages;
    private readonly RttpConnectionOptions _options;
    private readonly TaskCompletionSource<RttpFrameSummary> _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<FarmMember> _farmBlock = [];
    private readonly NameCache _names = new(); // subjects and field names: one string each, not one per message (the read loop's own)
    private readonly SubjectData _received = new(); // the read loop's data line, parsed once into bytes for the sink (reused)
    private IDataSink? _sink;
    private long _queued; // messages put on _messages and not yet handed on by the client's loop (HandedOn); see Unhanded
    private int _sinkWaiting;
    private Task _readLoop = Task.CompletedTask;
    private long _pendingFarmVersion;
    private int _pendingFarmCount = -1;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> _pings = new();
    private long _nextPing;
    private int _disposed;
    private long _lastReceived;
    private long _pongs;
    private long _lastWritten; // when a line was last queued (timestamp): a plain PING is answered only after RttpKeepAlive.QuietPongAfter of this
    private long _quietPongTicks; // from WELCOME's ping= and idle=; 0 (answer every PING) until then
    private long _keepAlivePings;
    private long _keepAlivePongs;
    private Task _heartbeat = Task.CompletedTask;
    private RttpFrameSummary? _welcomeSummary;
    private FarmSnapshot _farm = FarmSnapshot.Empty;

    // Lines go out in the order they were queued: every send renders its line and queues it under
    // _outLock (with the acknowledged publications' ids and window), then whoever holds _writeLock
    // writes everything queued so far and flushes once (a burst of sends is one socket write).
    private readonly Lock _outLock = new();
    private List<byte[]> _outQueue = [];
    private long _queuedLines;
    private long _writtenLines;
    private readonly Dictionary<long, PendingAck> _pending = [];
    private readonly Queue<PendingAck> _admission = new();
    private long _nextAckId;
    private bool _ended;
    private long _nacks;

    private RttpConnection(TcpClient tcp, Stream stream, RttpConnectionOptions options, string endpoint)
    {
        _tcp = tcp;
        _stream = stream;
        _options = options;
        _token = options.Token;
        Endpoint = endpoint;
        _reader = PipeReader.Create(stream);
        _writer = PipeWriter.Create(stream);
        _lastReceived = options.Time.GetTimestamp();
        _lastWritten = _lastReceived;
        _messages = new DeliveryQueue<RttpMessage>(options.MessageBuffer, options.Overflow, Conflation.Instance, options.Overflowed);
    }

    /// <summary>The <c>host:port</c> this connection reached.</summary>
    public string Endpoint { get; }

    /// <summary>The server's id, from WELCOME.</summary>
    public string ServerId { get; private set; } = "";

    /// <summary>The server's ping interval, from WELCOME.</summary>
    public TimeSpan PingInterval { get; private set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long since anything arrived from the server (a hung server goes silent: it sends PING when idle).</summary>
    public TimeSpan Silence => _options.Time.GetElapsedTime(Volatile.Read(ref _lastReceived));

    /// <summary>The latest farm table the server sent.</summary>
    public FarmSnapshot Farm => Volatile.Read(ref _farm);

    /// <summary>
    /// Messages from the server, in order. Completes when the connection ends. At most
    /// <see cref="RttpConnectionOptions.MessageBuffer"/> wait; beyond that
    /// <see cref="RttpConnectionOptions.Overflow"/> decides (the socket is read on regardless,
    /// except under <see cref="OverflowPolicy.Wait"/>).
    /// </summary>
    public ChannelReader<RttpMessage> Messages => _messages.Reader;

    /// <summary>Messages merged into waiting ones because the application fell behind (<see cref="OverflowPolicy.Conflate"/>).</summary>
    public long Conflated => _messages.Conflated;

    /// <summary>Messages dropped because the application fell behind (<see cref="OverflowPolicy.DropOldest"/>).</summary>
    public long Dropped => _messages.Dropped;

    /// <summary>True while the connection has stopped reading until the application takes a message (<see cref="OverflowPolicy.Wait"/>).</summary>
    public bool IsWaitingForApplication => _messages.IsWriterWaiting || Volatile.Read(ref _sinkWaiting) != 0;

    /// <summary>
    /// Data lines (<c>IMAGE</c>, <c>UPDATE</c>, <c>STATUS</c>) go straight from the read loop to
    /// <paramref name="sink"/> (one hand-over, no <see cref="RttpMessage"/>) whenever nothing waits
    /// on <see cref="Messages"/> that the client has not handed on yet (<see cref="HandedOn"/>): so
    /// what the sink gets never overtakes a message still on its way. Null: every line to <see cref="Messages"/>.
    /// </summary>
    internal void SetSink(IDataSink? sink) => Volatile.Write(ref _sink, sink);

    /// <summary>Data lines the read loop handed to the sink (for tests: the direct path was taken).</summary>
    internal long DirectDeliveries { get; private set; }

    /// <summary>At most this many lines are staged on the sink before they are written (a socket read's lines are written at its end, or sooner).</summary>
    internal const int MaxStaged = 256;

    /// <summary>
    /// For tests only: the read loop leaves what it staged on the sink unwritten, as a read loop
    /// stopped between staging and writing (waiting for the application, or ended) would.
    /// </summary>
    internal bool HoldStagedForTest { get; set; }

    /// <summary>The sink's staged lines written; while that waits for the application (<see cref="OverflowPolicy.Wait"/>) the connection counts as waiting for it.</summary>
    private ValueTask WriteStagedAsync(IDataSink sink) => sink.TryWriteStaged() ? ValueTask.CompletedTask : WaitStagedAsync(sink);

    private async ValueTask WaitStagedAsync(IDataSink sink)
    {
        Volatile.Write(ref _sinkWaiting, 1); // OverflowPolicy.Wait: the application sets the pace
        try
        {
            await sink.WriteStagedAsync(_stop.Token);
        }
        finally
        {
            Volatile.Write(ref _sinkWaiting, 0);
        }
    }

    /// <summary>The client has handled one message it read from <see cref="Messages"/> (its own loops read with this; other readers need not).</summary>
    internal void HandedOn() => Interlocked.Decrement(ref _queued);

    /// <summary>
    /// Messages put on <see cref="Messages"/> that the client has not handed on yet: those queued,
    /// less those handed on, less those the buffer merged into another or dropped (never handed on;
    /// uncounted, they kept the direct path off for the connection's life). Read by the read loop,
    /// the only writer of the buffer, so every merge and drop it counts is one of its own writes.
    /// </summary>
    private long Unhanded => Interlocked.Read(ref _queued) - _messages.Conflated - _messages.Dropped;


    /// <summary>PONGs received so far (answers to <see cref="SendHeartbeat"/> and <see cref="PingAsync"/>).</summary>
    public long Pongs => Interlocked.Read(ref _pongs);

    /// <summary>When anything last arrived from the server (a timestamp of the options' clock): the heartbeat's sign of life (FarmClient's monitor).</summary>
    internal long LastReceived => Volatile.Read(ref _lastReceived);

    /// <summary>Plain keep-alive PINGs the server sent.</summary>
    public long KeepAlivePings => Interlocked.Read(ref _keepAlivePings);

    /// <summary>
    /// How many of <see cref="KeepAlivePings"/> were answered: only those that came when this
    /// connection had written nothing for <see cref="RttpKeepAlive.QuietPongAfter(TimeSpan, TimeSpan)"/> of the server's
    /// ping interval and idle timeout (2.5 s with the defaults), which is all the server needs to
    /// hear within its idle timeout (docs/protocol.md, "Keep-alive").
    /// </summary>
    public long KeepAlivePongs => Interlocked.Read(ref _keepAlivePongs);

    /// <summary>Completes when the connection has ended (faulted if it failed).</summary>
    public Task Completion => _readLoop;

    /// <summary>Acknowledged publications sent and not yet answered, plus those waiting for a slot of the window.</summary>
    public int Unacknowledged
    {
        get
        {
            lock (_outLock)
            {
                return _pending.Count + _admission.Count;
            }
        }
    }

    /// <summary>True once the connection has ended (nothing more can be sent or answered).</summary>
    public bool HasEnded
    {
        get
        {
            lock (_outLock)
            {
                return _ended;
            }
        }
    }

    /// <summary>How many acknowledged publications the server refused (<c>NACK</c>).</summary>
    public long Nacks => Interlocked.Read(ref _nacks);

    // TLS 1.2+; the certificate must be valid for the name, and chain to the trusted CAs when given
    // (only to them: the system's roots are not consulted then).
    private static async Task<Stream> AuthenticateAsync(TcpClient tcp, Stream inner, string host, int port, RttpConnectionOptions options, CancellationToken cancel)
    {
        var tls = new System.Net.Security.SslStream(inner, leaveInnerStreamOpen: false);
        var trusted = options.TrustedCertificates;
        try
        {
            await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = options.TlsServerName ?? host,
                EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13,
                RemoteCertificateValidationCallback = trusted is null ? null : (_, cert, _, errors) =>
                {
                    if (cert is null || (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) != System.Net.Security.SslPolicyErrors.None)
                    {
                        return false;
                    }

                    using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                    chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
                    chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                    return chain.Build(cert as System.Security.Cryptography.X509Certificates.X509Certificate2 ?? System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(cert.GetRawCertData()));
                },
            }, cancel);

            // The server's suite: the servers refuse anything but the modern suites, and so does the
            // client, whatever its machine's OpenSSL configuration lets through (a proxy or another
            // server that chose CBC or a static key exchange is refused here, before HELLO).
            if (!TlsSuites.IsModern(tls.NegotiatedCipherSuite))
            {
                throw new System.Security.Authentication.AuthenticationException($"the server chose {tls.NegotiatedCipherSuite}, not a modern suite (TLS 1.3, or TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305)");
            }

            return tls;
        }
        catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
        {
            await tls.DisposeAsync();
            tcp.Dispose();
            throw new RttpConnectionException($"TLS with {host}:{port} failed: {(ex is OperationCanceledException ? "timed out" : ex.Message)}", ex);
        }
    }

    /// <summary>Connects, says HELLO and waits for WELCOME. Throws <see cref="RttpConnectionException"/> when refused.</summary>
    public static async Task<RttpConnection> ConnectAsync(string host, int port, RttpConnectionOptions? options = null, CancellationToken cancel = default)
    {
        options ??= new RttpConnectionOptions();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.ConnectTimeout);
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(host, port, timeout.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            tcp.Dispose();
            throw new RttpConnectionException($"cannot connect to {host}:{port}: {(ex is OperationCanceledException ? "timed out" : ex.Message)}", ex);
        }

        Stream stream = tcp.GetStream();
        if (options.UseTls)
        {
            stream = await AuthenticateAsync(tcp, stream, host, port, options, timeout.Token);
        }

        var connection = new RttpConnection(tcp, stream, options, $"{host}:{port}");
        try
        {
            if (options.TokenProvider is { } provider)
            {
                connection._token = await provider(timeout.Token);
            }

            connection._readLoop = connection.ReadLoopAsync();
            try
            {
                await connection.SendHelloAsync(timeout.Token);
            }
            catch (RttpConnectionException)
            {
                // A server that refuses (ERR FULL, DRAINING...) may write its ERR and close before
                // our HELLO is out: that ERR, still readable, says why; the read loop reports it to
                // the WELCOME wait below (or that the connection closed without one).
            }

            var welcome = await connection._welcome.Task.WaitAsync(timeout.Token);
            connection.ServerId = welcome.ServerId;
            connection.PingInterval = TimeSpan.FromMilliseconds(welcome.PingMs);
            connection.ScheduleTokenRenewal(TokenExpiry(connection._token));
            return connection;
        }
        catch (Exception ex)
        {
            await connection.DisposeAsync();
            if (ex is RttpConnectionException)
            {
                throw;
            }

            throw new RttpConnectionException($"no WELCOME from {host}:{port}: {(ex is OperationCanceledException ? "timed out" : ex.Message)}", ex);
        }
    }

    /// <summary>Subscribes to subjects; each gets an IMAGE (or STATUS) on <see cref="Messages"/>.</summary>
    public Task SubscribeAsync(IEnumerable<string> subjects, CancellationToken cancel = default) =>
        SendAsync(w =>
        {
            RttpWriter.WriteRaw(w, "SUB"u8);
            foreach (var s in subjects)
            {
                RttpWriter.WriteRaw(w, " "u8);
                RttpWriter.WriteRaw(w, CheckSubject(s));
            }

            RttpWriter.WriteRaw(w, "\n"u8);
        }, cancel);

    /// <summary>Ends subscriptions.</summary>
    public Task UnsubscribeAsync(IEnumerable<string> subjects, CancellationToken cancel = default) =>
        SendAsync(w =>
        {
            RttpWriter.WriteRaw(w, "UNSUB"u8);
            foreach (var s in subjects)
            {
                RttpWriter.WriteRaw(w, " "u8);
                RttpWriter.WriteRaw(w, CheckSubject(s));
            }

            RttpWriter.WriteRaw(w, "\n"u8);
        }, cancel);

    /// <summary>Publishes fields (<paramref name="replace"/>: the whole record, PUBIMAGE), fire and forget: returns once written.</summary>
    public Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace = false, CancellationToken cancel = default) =>
        SendAsync(w => WritePublication(w, replace, CheckSubject(subject), default, fields), cancel);

    /// <summary>
    /// Publishes as <paramref name="options"/> say. Acknowledged (<see cref="PublishOptions.Acknowledge"/>):
    /// completes on <c>ACK</c>, throws <see cref="PublishRejectedException"/> on <c>NACK</c> and
    /// <see cref="PublishOutcomeUnknownException"/> if the connection ends before the answer. Waits
    /// for a slot when <see cref="RttpConnectionOptions.MaxUnacknowledged"/> publications are
    /// unanswered. Cancelling withdraws a publication still waiting for a slot; one already sent is
    /// not withdrawn (only the wait ends).
    /// </summary>
    public async Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, PublishOptions options, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Acknowledge)
        {
            await PublishAsync(subject, fields, options.Replace, cancel);
            return;
        }

        var receipt = Queue(subject, fields, options.Replace, out var pending);
        using var withdraw = cancel.CanBeCanceled ? cancel.Register(() => Withdraw(pending)) : default;
        await receipt.Acknowledged.WaitAsync(cancel);
    }

    /// <summary>
    /// Queues an acknowledged publication (<c>PUB|PUBIMAGE subject @ack=id fields</c>) and returns
    /// at once: lines go out in the order of the calls, each as soon as the window of unacknowledged
    /// publications has a slot. Await <see cref="PublishReceipt.Sent"/> for backpressure and
    /// <see cref="PublishReceipt.Acknowledged"/> for the outcome.
    /// </summary>
    public PublishReceipt BeginPublish(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace = false) =>
        Queue(subject, fields, replace, out _);

    private PublishReceipt Queue(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace, out PendingAck pending)
    {
        // Rendered now (the caller's fields may change after the call), in two parts around the id.
        var head = new ArrayBufferWriter<byte>(64);
        RttpWriter.WriteRaw(head, replace ? "PUBIMAGE "u8 : "PUB "u8);
        RttpWriter.WriteRaw(head, CheckSubject(subject));
        RttpWriter.WriteRaw(head, " @ack="u8);
        var tail = new ArrayBufferWriter<byte>(128);
        WriteFields(tail, fields);
        RttpWriter.WriteRaw(tail, "\n"u8);
        pending = new PendingAck(subject, head.WrittenSpan.ToArray(), tail.WrittenSpan.ToArray());
        var admitted = false;
        lock (_outLock)
        {
            if (_ended)
            {
                pending.Fail(new RttpConnectionException($"the connection to {Endpoint} is closed"), sent: false);
            }
            else if (_admission.Count == 0 && _pending.Count < _options.MaxUnacknowledged)
            {
                AdmitLocked(pending);
                admitted = true;
            }
            else
            {
                _admission.Enqueue(pending);
            }
        }

        if (admitted)
        {
            StartFlush(pending);
        }

        return new PublishReceipt(subject, pending.Sent.Task, pending.Ack.Task);
    }

    /// <summary>Waits until every acknowledged publication sent so far is answered (or the connection ended).</summary>
    public async Task WhenAcknowledgedAsync(CancellationToken cancel = default)
    {
        Task[] waits;
        lock (_outLock)
        {
            waits = [.. _pending.Values.Select(p => p.Ack.Task), .. _admission.Select(p => p.Ack.Task)];
        }

        try
        {
            await Task.WhenAll(waits).WaitAsync(cancel);
        }
        catch (Exception ex) when (ex is PublishException or RttpConnectionException)
        {
            // answered (refused) or ended: either way nothing waits any more
        }
    }

    private static void WritePublication(IBufferWriter<byte> w, bool replace, byte[] subject, ReadOnlySpan<byte> meta, IEnumerable<KeyValuePair<string, string>> fields)
    {
        RttpWriter.WriteRaw(w, replace ? "PUBIMAGE "u8 : "PUB "u8);
        RttpWriter.WriteRaw(w, subject);
        RttpWriter.WriteRaw(w, meta);
        WriteFields(w, fields);
        RttpWriter.WriteRaw(w, "\n"u8);
    }

    private static void WriteFields(IBufferWriter<byte> w, IEnumerable<KeyValuePair<string, string>> fields)
    {
        foreach (var (name, value) in fields)
        {
            var n = Encoding.UTF8.GetBytes(name);
            if (!SubjectSyntax.IsValidName(n))
            {
                throw new ArgumentException($"'{name}' is not a valid field name", nameof(fields));
            }

            RttpWriter.WriteField(w, n, value);
        }
    }

    /// <summary>Gives a publication its id and queues its line; under <c>_outLock</c>.</summary>
    private void AdmitLocked(PendingAck pending)
    {
        var id = ++_nextAckId;
        var idText = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var line = new byte[pending.Head.Length + idText.Length + pending.Tail.Length];
        pending.Head.CopyTo(line, 0);
        Encoding.ASCII.GetBytes(idText, line.AsSpan(pending.Head.Length));
        pending.Tail.CopyTo(line, pending.Head.Length + idText.Length);
        pending.Id = id;
        pending.LineNumber = QueueLocked(line);
        _pending[id] = pending;
    }

    /// <summary>Writes out what is queued up to the publication's line, in the background; its Sent completes then.</summary>
    private void StartFlush(PendingAck pending) => _ = FlushSentAsync(pending);

    private async Task FlushSentAsync(PendingAck pending)
    {
        try
        {
            await FlushThroughAsync(pending.LineNumber, _stop.Token);
            pending.Sent.TrySetResult();
        }
        catch (Exception ex)
        {
            pending.Sent.TrySetException(ex is RttpConnectionException ? ex : new RttpConnectionException($"the connection to {Endpoint} is closed", ex));
        }
    }

    private void Withdraw(PendingAck pending)
    {
        lock (_outLock)
        {
            if (pending.Id != 0 || !_admission.Contains(pending))
            {
                return; // sent already: only the wait ends
            }

            var rest = _admission.Where(p => p != pending).ToList();
            _admission.Clear();
            foreach (var p in rest)
            {
                _admission.Enqueue(p);
            }
        }

        pending.Fail(new OperationCanceledException("withdrawn before it was sent"), sent: false);
    }

    /// <summary>ACK or NACK: completes the publication, and lets the next ones waiting for the window go.</summary>
    private void Answer(long id, Exception? refusal)
    {
        PendingAck? pending;
        List<PendingAck>? admitted = null;
        lock (_outLock)
        {
            if (!_pending.Remove(id, out pending))
            {
                return; // not ours (or withdrawn)
            }

            while (_admission.Count > 0 && _pending.Count < _options.MaxUnacknowledged)
            {
                var next = _admission.Dequeue();
                AdmitLocked(next);
                (admitted ??= []).Add(next);
            }
        }

        if (refusal is null)
        {
            pending.Ack.TrySetResult();
        }
        else
        {
            Interlocked.Increment(ref _nacks);
            pending.Ack.TrySetException(refusal);
        }

        if (admitted is not null)
        {
            foreach (var p in admitted)
            {
                StartFlush(p);
            }
        }
    }

    /// <summary>
    /// Sends PING and waits for its PONG. The server handles lines in order, so when this returns every
    /// line sent before was handled, and any ERR about them is already on <see cref="Messages"/>.
    /// </summary>
    public async Task PingAsync(CancellationToken cancel = default)
    {
        var token = "p" + Interlocked.Increment(ref _nextPing).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pings[token] = done;
        try
        {
            await SendAsync(w => RttpWriter.WritePingPong(w, pong: false, Encoding.ASCII.GetBytes(token)), cancel);
            await done.Task.WaitAsync(cancel);
        }
        finally
        {
            _pings.TryRemove(token, out _);
        }
    }

    /// <summary>
    /// Sends a keep-alive <c>PING</c> without waiting for it to be written (a hung server may have
    /// stopped reading); the caller watches what arrives (its PONG, or anything else) to judge the server's liveness. A
    /// heartbeat still being written is not doubled.
    /// </summary>
    public void SendHeartbeat()
    {
        if (!_heartbeat.IsCompleted || Volatile.Read(ref _disposed) == 1)
        {
            return;
        }

        long number;
        lock (_outLock)
        {
            number = QueueLocked("PING hb\n"u8.ToArray());
        }

        _heartbeat = FlushHeartbeatAsync(number);
    }

    private async Task FlushHeartbeatAsync(long number)
    {
        try
        {
            await FlushThroughAsync(number, _stop.Token);
        }
        catch (Exception ex) when (ex is RttpConnectionException or OperationCanceledException or ObjectDisposedException)
        {
            // the connection ended: the read loop reports it
        }
    }

    /// <summary>Asks for the whole farm table again.</summary>
    public Task RequestFarmAsync(CancellationToken cancel = default) => SendAsync(w => RttpWriter.WriteRaw(w, "FARM\n"u8), cancel);

    /// <summary>Sends raw text lines (tests and tools); each must end with LF.</summary>
    public Task SendRawAsync(string lines, CancellationToken cancel = default) =>
        SendAsync(w => RttpWriter.WriteRaw(w, Encoding.UTF8.GetBytes(lines)), cancel);

    /// <summary>Says BYE and closes.</summary>
    public async Task CloseAsync(string reason = "done")
    {
        try
        {
            await SendAsync(w =>
            {
                RttpWriter.WriteRaw(w, "BYE "u8);
                RttpWriter.WriteText(w, reason);
                RttpWriter.WriteRaw(w, "\n"u8);
            }, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or RttpConnectionException)
        {
            // already closed
        }

        await DisposeAsync();
    }

    /// <summary>Closes the socket at once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync();
        _renewal?.Dispose();
        _tcp.Dispose();
        if (_stream is System.Net.Security.SslStream tls)
        {
            await tls.DisposeAsync();
        }

        await _heartbeat;
        try
        {
            await _readLoop;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or RttpConnectionException or SocketException)
        {
            // ending anyway
        }

        _writeLock.Dispose();
        _stop.Dispose();
    }

    private static byte[] CheckSubject(string subject)
    {
        var bytes = Encoding.UTF8.GetBytes(subject);
        return SubjectSyntax.IsValidSubject(bytes) ? bytes : throw new ArgumentException($"'{subject}' is not a valid subject (like /FX/GBPUSD)", nameof(subject));
    }

    // The token said in HELLO (Options.Token, or the provider's), then the last one renewed.
    private string? _token;
    private ITimer? _renewal;

    /// <summary>Signed-token renewals sent (<c>AUTH token=</c>) and taken by the server.</summary>
    public int TokenRenewals { get; private set; }

    /// <summary>The <c>exp</c> of a JWT (read, not verified: the server verifies), or null for other tokens.</summary>
    internal static DateTimeOffset? TokenExpiry(string? token)
    {
        var parts = token?.Split('.');
        if (parts is not { Length: 3 })
        {
            return null;
        }

        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
            using var json = System.Text.Json.JsonDocument.Parse(Convert.FromBase64String(payload));
            return json.RootElement.TryGetProperty("exp", out var exp) && exp.TryGetInt64(out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : null;
        }
        catch (Exception ex) when (ex is FormatException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Sets the timer that asks the token provider for a new token before <paramref name="expires"/>.</summary>
    private void ScheduleTokenRenewal(DateTimeOffset? expires)
    {
        if (_options.TokenProvider is null || expires is not { } exp)
        {
            return;
        }

        var left = exp - _options.Time.GetUtcNow();
        var due = left - TimeSpan.FromTicks(Math.Min(_options.TokenRenewBefore.Ticks, left.Ticks / 2));
        _renewal?.Dispose();
        _renewal = _options.Time.CreateTimer(_ => _ = RenewTokenAsync(), null, due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
    }

    private async Task RenewTokenAsync()
    {
        try
        {
            var token = await _options.TokenProvider!(_stop.Token);
            _token = token;
            await SendAsync(w =>
            {
                RttpWriter.WriteRaw(w, "AUTH"u8);
                RttpWriter.WriteField(w, "token"u8, token);
                RttpWriter.WriteRaw(w, "\n"u8);
            }, _stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or RttpConnectionException or ObjectDisposedException)
        {
            // closing: nothing to renew
        }
    }

    private Task SendHelloAsync(CancellationToken cancel) =>
        SendAsync(w =>
        {
            RttpWriter.WriteRaw(w, "HELLO 1"u8);
            RttpWriter.WriteField(w, "client"u8, _options.ClientName);
            if (_options.Group is not null)
            {
                RttpWriter.WriteField(w, "group"u8, _options.Group);
            }
            if (_token is not null)
            {
                RttpWriter.WriteField(w, "token"u8, _token);
            }

            if (_options.User is not null)
            {
                RttpWriter.WriteField(w, "user"u8, _options.User);
                RttpWriter.WriteField(w, "password"u8, _options.Password ?? "");
            }

            if (_options.KeepAlive is { } keepAlive)
            {
                RttpWriter.WriteField(w, "ping"u8, Math.Max(1, (long)keepAlive.TotalMilliseconds));
            }

            if (_options.Stamps)
            {
                RttpWriter.WriteRaw(w, " stamps=1"u8);
            }

            RttpWriter.WriteRaw(w, "\n"u8);
        }, cancel);

    private async Task SendAsync(Action<IBufferWriter<byte>> write, CancellationToken cancel)
    {
        var rendered = new ArrayBufferWriter<byte>(128);
        write(rendered);
        long number;
        lock (_outLock)
        {
            number = QueueLocked(rendered.WrittenSpan.ToArray());
        }

        await FlushThroughAsync(number, cancel);
    }

    /// <summary>Queues a line; its number in the connection's order. Under <c>_outLock</c>.</summary>
    private long QueueLocked(byte[] line)
    {
        Volatile.Write(ref _lastWritten, _options.Time.GetTimestamp());
        _outQueue.Add(line);
        return ++_queuedLines;
    }

    /// <summary>Returns once line <paramref name="number"/> and every line before it is written and flushed.</summary>
    private async Task FlushThroughAsync(long number, CancellationToken cancel)
    {
        if (Interlocked.Read(ref _writtenLines) >= number)
        {
            return;
        }

        try
        {
            await _writeLock.WaitAsync(cancel);
        }
        catch (ObjectDisposedException ex)
        {
            throw new RttpConnectionException($"the connection to {Endpoint} is closed", ex);
        }

        try
        {
            if (Interlocked.Read(ref _writtenLines) >= number)
            {
                return;
            }

            List<byte[]> batch;
            long upTo;
            lock (_outLock)
            {
                batch = _outQueue;
                _outQueue = [];
                upTo = _queuedLines;
            }

            foreach (var line in batch)
            {
                _writer.Write(line);
            }

            var result = await _writer.FlushAsync(cancel);
            if (result.IsCompleted)
            {
                throw new RttpConnectionException("the connection is closed");
            }

            Interlocked.Exchange(ref _writtenLines, upTo);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            throw new RttpConnectionException($"the connection to {Endpoint} is closed", ex);
        }
        finally
        {
            try
            {
                _writeLock.Release();
            }
            catch (ObjectDisposedException)
            {
                // disposed meanwhile
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        var frame = new RttpFrame();
        var limits = new RttpLimits { MaxLineBytes = _options.MaxLineBytes, MaxFields = int.MaxValue, MaxArgs = int.MaxValue };
        Exception? failure = null;
        var staged = 0; // lines staged on the sink since its staged lines were last written
        IDataSink? stagedTo = null;
        try
        {
            while (true)
            {
                var result = await _reader.ReadAsync(_stop.Token);
                var buffer = result.Buffer;
                Volatile.Write(ref _lastReceived, _options.Time.GetTimestamp());
                try
                {
                    while (true)
                    {
                        var status = RttpLineReader.TryReadLine(ref buffer, limits.MaxLineBytes, out var line);
                        if (status == OperationStatus.NeedMoreData)
                        {
                            break;
                        }

                        if (status == OperationStatus.InvalidData)
                        {
                            throw new RttpConnectionException(RttpErrorCode.LineTooLong, $"server sent a line over {limits.MaxLineBytes} bytes");
                        }

                        if (RttpParser.TryParse(line, frame, limits, out var reason) != RttpErrorCode.None)
                        {
                            throw new RttpConnectionException(RttpErrorCode.Syntax, $"server sent a malformed line: {reason}");
                        }

                        if (frame.Verb is RttpVerb.Image or RttpVerb.Update or RttpVerb.Status
                            && Volatile.Read(ref _sink) is { Accepts: true } sink
                            && Unhanded == 0
                            && _received.Load(frame, _names))
                        {
                            _received.Server = ServerId;
                            if (sink.TryStage(this, _received))
                            {
                                DirectDeliveries++;
                                stagedTo = sink;
                                if (++staged >= MaxStaged && !HoldStagedForTest)
                                {
                                    staged = 0;
                                    await WriteStagedAsync(sink);
                                }

                                continue;
                            }
                        }

                        // What this loop staged is written before anything goes the other way
                        // (Messages, to the client's loop) and before this loop waits on anything.
                        if (staged > 0 && !HoldStagedForTest)
                        {
                            staged = 0;
                            await WriteStagedAsync(stagedTo!);
                        }

                        var message = await HandleAsync(frame);
                        if (message is not null)
                        {
                            Interlocked.Increment(ref _queued);
                            if (!_messages.TryWrite(message))
                            {
                                await _messages.WriteAsync(message, _stop.Token); // OverflowPolicy.Wait, full
                            }
                        }
                    }

                    // The socket read is parsed: its staged lines become visible, one wake-up of
                    // the application for all of them.
                    if (staged > 0 && !HoldStagedForTest)
                    {
                        staged = 0;
                        await WriteStagedAsync(stagedTo!);
                    }
                }
                finally
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            failure = ex;
        }
        catch (OperationCanceledException)
        {
            // closed by us
        }

        if (staged > 0 && !HoldStagedForTest)
        {
            // Ended between staging and writing (closed, or waiting for the application): what fits
            // goes now; the rest stays staged, ahead of anything delivered later (FarmClient._staged).
            stagedTo!.TryWriteStaged();
        }

        _welcome.TrySetException(failure ?? new RttpConnectionException("connection closed before WELCOME"));
        foreach (var waiter in _pings.Values)
        {
            waiter.TrySetException(failure ?? new RttpConnectionException("connection closed"));
        }

        EndPublications(failure);
        _messages.Complete(failure is RttpConnectionException ? failure : null);
        await _reader.CompleteAsync();
    }

    private async ValueTask<RttpMessage?> HandleAsync(RttpFrame f)
    {
        switch (f.Verb)
        {
            case RttpVerb.Welcome:
                // Connect completes once the farm table that follows WELCOME has arrived.
                _welcomeSummary = new RttpFrameSummary(
                    f.TryGetField("server"u8, out var id) ? FieldEscaping.Unescape(id) : "",
                    f.TryGetField("ping"u8, out var ping) && long.TryParse(ping, out var ms) ? ms : 1000);
                Volatile.Write(ref _quietPongTicks, RttpKeepAlive.QuietPongAfter(f).Ticks);
                return null;
            case RttpVerb.Image:
            case RttpVerb.Update:
                f.TryGetUInt64(1, out var epoch);
                f.TryGetUInt64(2, out var seq);
                ulong clear = 0;
                var stamps = _options.Stamps ? SubjectData.StampsOf(f, out clear) : null;
                return new RttpMessage
                {
                    Kind = f.Verb == RttpVerb.Image ? RttpMessageKind.Image : RttpMessageKind.Update,
                    Subject = _names.Get(f.Arg(0)),
                    Epoch = epoch,
                    Seq = seq,
                    Merged = f.TryGetMeta("merged"u8, out var merged) && int.TryParse(merged, out var m) ? m : 1,
                    Fields = ReadFields(f),
                    FieldStamps = stamps,
                    Clear = clear,
                };
            case RttpVerb.Status:
                _ = SubjectStatusNames.TryParse(f.Arg(1), out var status);
                return new RttpMessage { Kind = RttpMessageKind.Status, Subject = _names.Get(f.Arg(0)), Status = status, Code = Encoding.UTF8.GetString(f.Arg(1)) };
            case RttpVerb.Farm:
                if (f.ArgCount == 2 && f.TryGetUInt64(0, out var v) && f.TryGetUInt64(1, out var count))
                {
                    _pendingFarmVersion = (long)v;
                    _pendingFarmCount = (int)Math.Min(count, 100_000);
                    _farmBlock.Clear();
                    return _pendingFarmCount == 0 ? CompleteFarmBlock() : null;
                }

                return null;
            case RttpVerb.Server:
                var member = FarmCodec.ReadServer(f);
                if (_pendingFarmCount > 0)
                {
                    _farmBlock.Add(member);
                    return _farmBlock.Count == _pendingFarmCount ? CompleteFarmBlock() : null;
                }

                f.TryGetUInt64(0, out var sv);
                return ApplyFarm(new FarmSnapshot((long)sv, [.. Farm.Members.Where(x => x.Id != member.Id), member]));
            case RttpVerb.FarmDel:
                f.TryGetUInt64(0, out var dv);
                var gone = Encoding.UTF8.GetString(f.Arg(1));
                return ApplyFarm(new FarmSnapshot((long)dv, [.. Farm.Members.Where(x => x.Id != gone)]));
            case RttpVerb.Ping when f.ArgCount > 0:
                // A token means the server waits for this answer: always given, token and all.
                var pingToken = f.Arg(0).ToArray();
                await SendAsync(w => RttpWriter.WritePingPong(w, pong: true, pingToken), _stop.Token);
                return null;
            case RttpVerb.Ping:
                Interlocked.Increment(ref _keepAlivePings);
                if (_options.Time.GetElapsedTime(Volatile.Read(ref _lastWritten)) >= TimeSpan.FromTicks(Volatile.Read(ref _quietPongTicks)))
                {
                    Interlocked.Increment(ref _keepAlivePongs);
                    await SendAsync(w => RttpWriter.WritePingPong(w, pong: true, default), _stop.Token);
                }

                return null;
            case RttpVerb.Move:
                return new RttpMessage { Kind = RttpMessageKind.Move, Code = Encoding.UTF8.GetString(f.Arg(0)), Text = f.TryGetMeta("server"u8, out var s) ? FieldEscaping.Unescape(s) : "" };
            case RttpVerb.Err:
                var code = RttpErrors.Parse(f.Arg(0));
                var text = Encoding.UTF8.GetString(f.Text);
                var error = new RttpMessage
                {
                    Kind = RttpMessageKind.Error,
                    Error = code,
                    Code = Encoding.UTF8.GetString(f.Arg(0)),
                    Text = text,
                    Subject = f.TryGetMeta("subject"u8, out var about) ? FieldEscaping.Unescape(about) : "",
                    RetryAfter = RetryAfter(f),
                };
                if (!_welcome.Task.IsCompleted && code.IsFatal())
                {
                    _welcome.TrySetException(new RttpConnectionException(code, $"{error.Code}: {text}"));
                }

                return error;
            case RttpVerb.Bye:
                var bye = new RttpMessage { Kind = RttpMessageKind.Bye, Code = f.ArgCount > 0 ? Encoding.UTF8.GetString(f.Arg(0)) : "", Text = Encoding.UTF8.GetString(f.Text) };
                _welcome.TrySetException(new RttpConnectionException($"server said BYE {bye.Code} {bye.Text}".Trim()));
                return bye;
            case RttpVerb.Ack:
                if (TryParseId(f.Arg(0), out var acked))
                {
                    Answer(acked, null);
                }

                return null;
            case RttpVerb.Nack:
                if (TryParseId(f.Arg(0), out var refused))
                {
                    var nackCode = Encoding.UTF8.GetString(f.Arg(1));
                    var subject = Subject(refused);
                    Answer(refused, new PublishRejectedException(subject, RttpErrors.Parse(f.Arg(1)), nackCode, Encoding.UTF8.GetString(f.Text), RetryAfter(f)));
                }

                return null;
            case RttpVerb.Auth when f.ArgCount == 1 && f.Arg(0).SequenceEqual("OK"u8):
                // AUTH OK exp=<unix seconds>: the renewed token was taken; renew again before it ends.
                TokenRenewals++;
                ScheduleTokenRenewal(f.TryGetField("exp"u8, out var exp) && long.TryParse(exp, out var seconds) ? DateTimeOffset.FromUnixTimeSeconds(seconds) : TokenExpiry(_token));
                return null;
            case RttpVerb.Pong:
                Interlocked.Increment(ref _pongs);
                if (f.ArgCount > 0 && _pings.TryGetValue(Encoding.ASCII.GetString(f.Arg(0)), out var waiter))
                {
                    waiter.TrySetResult();
                }

                return null;
            default:
                return null; // anything a newer server may add
        }
    }

    /// <summary>The connection ended: what was sent has an unknown outcome, what waited for the window was never sent.</summary>
    private void EndPublications(Exception? failure)
    {
        List<PendingAck> sent;
        List<PendingAck> unsent;
        lock (_outLock)
        {
            _ended = true;
            sent = [.. _pending.Values.OrderBy(p => p.Id)];
            unsent = [.. _admission];
            _pending.Clear();
            _admission.Clear();
        }

        var why = failure?.Message ?? "closed";
        foreach (var p in sent)
        {
            p.Fail(new PublishOutcomeUnknownException(p.Subject, $"{p.Subject}: the connection to {Endpoint} ended ({why}) before the publication was acknowledged: it may or may not have been applied", failure), sent: true);
        }

        foreach (var p in unsent)
        {
            p.Fail(new RttpConnectionException($"{p.Subject}: not sent, the connection to {Endpoint} ended ({why})"), sent: false);
        }
    }

    private RttpMessage CompleteFarmBlock()
    {
        _pendingFarmCount = -1;
        return ApplyFarm(new FarmSnapshot(_pendingFarmVersion, [.. _farmBlock]))!;
    }

    private RttpMessage ApplyFarm(FarmSnapshot snapshot)
    {
        snapshot = snapshot with { Members = [.. snapshot.Members.OrderBy(m => m.Id, StringComparer.Ordinal)] };
        Volatile.Write(ref _farm, snapshot);
        if (_welcomeSummary is { } summary)
        {
            _welcome.TrySetResult(summary);
        }

        return new RttpMessage { Kind = RttpMessageKind.Farm, Farm = snapshot };
    }

    private static bool TryParseId(ReadOnlySpan<byte> id, out long value) =>
        long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);

    private static TimeSpan? RetryAfter(RttpFrame f) =>
        f.TryGetMeta("after"u8, out var after) && long.TryParse(after, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) ? TimeSpan.FromMilliseconds(ms) : null;

    private string Subject(long id)
    {
        lock (_outLock)
        {
            return _pending.TryGetValue(id, out var p) ? p.Subject : "";
        }
    }

    private KeyValuePair<string, string>[] ReadFields(RttpFrame f)
    {
        var fields = new KeyValuePair<string, string>[f.FieldCount];
        for (var i = 0; i < fields.Length; i++)
        {
            fields[i] = KeyValuePair.Create(_names.Get(f.FieldName(i)), FieldEscaping.Unescape(f.FieldValue(i)));
        }

        return fields;
    }

    private readonly record struct RttpFrameSummary(string ServerId, long PingMs);

    /// <summary>An acknowledged publication: its line in two parts around the id, and its two outcomes.</summary>
    private sealed class PendingAck(string subject, byte[] head, byte[] tail)
    {
        public string Subject { get; } = subject;

        public byte[] Head { get; } = head;

        public byte[] Tail { get; } = tail;

        /// <summary>The <c>@ack</c> id, 0 until admitted.</summary>
        public long Id { get; set; }

        /// <summary>Its line's number in the connection's order.</summary>
        public long LineNumber { get; set; }

        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Ack { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fail(Exception ex, bool sent)
        {
            if (sent)
            {
                Sent.TrySetResult();
            }
            else
            {
                Sent.TrySetException(ex);
            }

            Ack.TrySetException(ex);
        }
    }
}

/// <summary>Where a connection's read loop hands data lines straight to (<see cref="RttpConnection.SetSink"/>).</summary>
internal interface IDataSink
{
    /// <summary>False when it would refuse every line (then the read loop does not parse for it).</summary>
    bool Accepts { get; }

    /// <summary>
    /// Takes a data line read on <paramref name="connection"/>, parsed into <paramref name="data"/>
    /// (the read loop's own, reused: copied if kept), and stages it: it becomes visible to the
    /// application when the read loop calls <see cref="TryWriteStaged"/> or
    /// <see cref="WriteStagedAsync"/>, which it does before it reads the socket again, before it
    /// queues anything on <see cref="RttpConnection.Messages"/>, and at least every
    /// <see cref="RttpConnection.MaxStaged"/> lines. False when it does not take it (then it goes
    /// to <see cref="RttpConnection.Messages"/>). Never waits.
    /// </summary>
    bool TryStage(RttpConnection connection, SubjectData data);

    /// <summary>Writes the staged lines as far as the buffers take them; true when none is left (false: full under <see cref="OverflowPolicy.Wait"/>).</summary>
    bool TryWriteStaged();

    /// <summary>Writes the staged lines, waiting for the application under <see cref="OverflowPolicy.Wait"/>.</summary>
    ValueTask WriteStagedAsync(CancellationToken cancel);
}
