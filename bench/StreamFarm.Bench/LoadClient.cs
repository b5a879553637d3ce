using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Bench;

/// <summary>
/// One raw-socket connection of the load generator (System.Net.Sockets + System.IO.Pipelines). A
/// background loop reads what the server sends and hands it to the protocol's parser, which counts
/// deliveries and queues replies (PONG); all writes go through one lock so a publisher's batches and
/// the reader's replies never interleave.
/// </summary>
public abstract class LoadClient : IAsyncDisposable
{
    private static readonly long KeepAliveTicks = Stopwatch.Frequency * 3; // well inside RTTP's 10 s idle timeout
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly ArrayBufferWriter<byte> _replies = new(256);
    private Task _readLoop = Task.CompletedTask;
    private FlowWindow? _window;
    private LatencyRecorder? _latency;
    private long _received;
    private long _progress;
    private long _lastWrite;
    private string? _failure;
    private volatile bool _closing;

    /// <summary>A connection over <paramref name="stream"/> (a TLS stream over <paramref name="socket"/>).</summary>
    protected LoadClient(Socket socket, Stream stream, string name)
    {
        _socket = socket;
        Name = name;
        _stream = stream;
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        _lastWrite = Stopwatch.GetTimestamp();
    }

    public string Name { get; }

    /// <summary>Messages delivered to this connection (RTTP UPDATE/IMAGE after the subscription, NATS MSG).</summary>
    public long Received => Volatile.Read(ref _received);

    /// <summary>Publications these deliveries stand for: <see cref="Received"/> plus what conflation merged away.</summary>
    public long Progress => Volatile.Read(ref _progress);

    /// <summary>The first thing that went wrong on this connection, or null.</summary>
    public string? Failure => Volatile.Read(ref _failure);

    /// <summary>Anomalies seen in the stream that did not break it (gaps, merges), or null.</summary>
    public virtual string? Anomaly => null;

    /// <summary>The subject this protocol's scenarios use.</summary>
    public abstract string Subject { get; }

    /// <summary>Subject <paramref name="index"/> of a scenario with <paramref name="count"/> subjects: <see cref="Subject"/> when there is one, else <see cref="Subject"/> followed by the index.</summary>
    public string SubjectAt(int index, int count) => count == 1 ? Subject : Subject + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Subscribes to <see cref="Subject"/> and returns once the server confirmed it.</summary>
    public Task SubscribeAsync(TimeSpan timeout, CancellationToken cancel) => SubscribeAsync(Subject, timeout, cancel);

    /// <summary>Subscribes to <paramref name="subject"/> (one subscription per connection) and returns once the server confirmed it.</summary>
    public abstract Task SubscribeAsync(string subject, TimeSpan timeout, CancellationToken cancel);

    /// <summary>Sends PING and returns at its PONG: the server has applied everything sent before it.</summary>
    public abstract Task SyncAsync(TimeSpan timeout, CancellationToken cancel);

    /// <summary>One publish message to <see cref="Subject"/> on the wire, ready to be repeated in a batch.</summary>
    public byte[] EncodePublish(ReadOnlySpan<byte> payload) => EncodePublish(Subject, "v", payload);

    /// <summary>
    /// One publish message to <paramref name="subject"/> on the wire; RTTP puts the payload in
    /// <paramref name="field"/> (publishers on different servers that write the same field of a subject
    /// race: the later stamp wins and the other publication may never be shown); NATS has no fields.
    /// </summary>
    public abstract byte[] EncodePublish(string subject, string field, ReadOnlySpan<byte> payload);

    /// <summary>The subject number <paramref name="index"/> of the many-subject scenarios (<see cref="SubscribeManyAsync"/>).</summary>
    public abstract string ManySubject(int index);

    /// <summary>
    /// Subscribes to the subjects <see cref="ManySubject"/> of <paramref name="indexes"/> (none below 0
    /// or at <paramref name="subjects"/> or above) instead of <see cref="Subject"/>, and returns once the
    /// server confirmed them all. Call it once, and not together with <see cref="SubscribeAsync(string, TimeSpan, CancellationToken)"/> or <see cref="SubscribeAsync(TimeSpan, CancellationToken)"/>.
    /// </summary>
    public abstract Task SubscribeManyAsync(IReadOnlyList<int> indexes, int subjects, TimeSpan timeout, CancellationToken cancel);

    /// <summary>One publish message to <paramref name="subject"/> on the wire (RTTP: field <c>v</c>).</summary>
    public byte[] EncodePublish(string subject, ReadOnlySpan<byte> payload) => EncodePublish(subject, "v", payload);

    /// <summary>Reports progress to the publisher's window from now on.</summary>
    public void Attach(FlowWindow window) => _window = window;

    /// <summary>Checks and times stamped messages (<see cref="EncodeStamped"/>) from now on; null stops it.</summary>
    public void Attach(LatencyRecorder? recorder) => Volatile.Write(ref _latency, recorder);

    /// <summary>Most bytes <see cref="EncodeStamped"/> writes for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public abstract int MaxStampedLength(int payloadLength);

    /// <summary>
    /// Writes one publish message that carries the publisher's counter <paramref name="n"/> and a
    /// <see cref="Stopwatch"/> timestamp besides the payload; returns the bytes written. A subscriber
    /// with a <see cref="LatencyRecorder"/> attached reads both back.
    /// </summary>
    public abstract int EncodeStamped(Span<byte> destination, long n, long stamp, ReadOnlySpan<byte> payload);

    /// <summary>Writes bytes (and flushes them) under the write lock.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        await _writeLock.WaitAsync(cancel);
        try
        {
            Volatile.Write(ref _lastWrite, Stopwatch.GetTimestamp());
            var result = await _output.WriteAsync(data, cancel);
            if (result.IsCompleted)
            {
                throw new BenchException($"{Name}: connection closed while writing");
            }
        }
        catch (IOException e)
        {
            Fail($"write failed: {e.Message}");
            throw new BenchException($"{Name}: write failed: {e.Message}", e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Says goodbye (if the protocol has a way), closes the socket and ends the read loop.</summary>
    public async Task CloseAsync()
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        var goodbye = Goodbye;
        if (goodbye.Length > 0 && Failure is null)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await WriteAsync(goodbye, timeout.Token);
            }
            catch (Exception e) when (e is BenchException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                // closing anyway
            }
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // already gone
        }

        await _stop.CancelAsync();
        await _readLoop;
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        try
        {
            await _input.CompleteAsync();
            await _output.CompleteAsync();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // the connection is gone already
        }

        await _stream.DisposeAsync();
        _stop.Dispose();
        _writeLock.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Opens a TCP connection (Nagle off: the publisher batches by itself).</summary>
    /// <summary>A connected socket and the stream to speak over: the socket's own, or TLS when <paramref name="tls"/> is given.</summary>
    protected static async Task<(Socket Socket, Stream Stream)> ConnectStreamAsync(IPEndPoint endpoint, BenchTls? tls, bool natsInfoFirst, CancellationToken cancel)
    {
        var socket = await ConnectSocketAsync(endpoint, cancel);
        if (tls is null)
        {
            return (socket, new NetworkStream(socket, ownsSocket: true));
        }

        try
        {
            return (socket, await tls.AuthenticateAsync(socket, endpoint, natsInfoFirst, cancel));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    protected static async Task<Socket> ConnectSocketAsync(IPEndPoint endpoint, CancellationToken cancel)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancel);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Starts the read loop; the subclass calls it once the socket is open.</summary>
    protected void StartReading() => _readLoop = Task.Run(ReadLoopAsync);

    /// <summary>
    /// Parses as many complete messages as the buffer holds and returns where it stopped. Counts go
    /// into <paramref name="tally"/>; replies are written to <paramref name="replies"/>.
    /// </summary>
    protected abstract SequencePosition Parse(in ReadOnlySequence<byte> buffer, IBufferWriter<byte> replies, ref Tally tally);

    /// <summary>The recorder stamped messages go to, or null (then the parser need not look for stamps).</summary>
    protected LatencyRecorder? Latency => Volatile.Read(ref _latency);

    /// <summary>When the bytes being parsed were read (a <see cref="Stopwatch"/> timestamp).</summary>
    protected long ReadTimestamp { get; private set; }

    /// <summary>A line to send when nothing was written for a few seconds, or empty (the server pings us).</summary>
    protected virtual ReadOnlyMemory<byte> KeepAlive => ReadOnlyMemory<byte>.Empty;

    /// <summary>What to send before closing, or empty.</summary>
    protected virtual ReadOnlyMemory<byte> Goodbye => ReadOnlyMemory<byte>.Empty;

    /// <summary>Waits for a protocol step, turning a timeout into a <see cref="BenchException"/> that names it.</summary>
    protected async Task AwaitAsync(Task step, string what, TimeSpan timeout, CancellationToken cancel)
    {
        try
        {
            await step.WaitAsync(timeout, cancel);
        }
        catch (TimeoutException)
        {
            throw new BenchException($"{Name}: no {what} within {timeout.TotalSeconds:0.#} s");
        }
    }

    /// <summary>Records the first failure and wakes whoever waits on this connection.</summary>
    protected void Fail(string reason)
    {
        if (Interlocked.CompareExchange(ref _failure, reason, null) is null)
        {
            OnFailed(reason);
            _window?.Abort($"{Name}: {reason}");
        }
    }

    /// <summary>Called once, on the first failure: fault pending waits.</summary>
    protected virtual void OnFailed(string reason)
    {
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_stop.Token);
                ReadTimestamp = Stopwatch.GetTimestamp();
                var buffer = result.Buffer;
                var tally = default(Tally);
                var consumed = Parse(buffer, _replies, ref tally);
                _input.AdvanceTo(consumed, buffer.End);
                if (tally.Deliveries > 0)
                {
                    Interlocked.Add(ref _received, tally.Deliveries);
                }

                if (tally.Progress > 0)
                {
                    var progress = Interlocked.Add(ref _progress, tally.Progress);
                    _window?.OnProgress(progress);
                }

                if (!KeepAlive.IsEmpty && Stopwatch.GetTimestamp() - Volatile.Read(ref _lastWrite) > KeepAliveTicks)
                {
                    _replies.Write(KeepAlive.Span);
                }

                if (_replies.WrittenCount > 0)
                {
                    await WriteAsync(_replies.WrittenMemory, _stop.Token);
                    _replies.ResetWrittenCount();
                }

                if (result.IsCompleted)
                {
                    if (!_closing)
                    {
                        Fail("the server closed the connection");
                    }

                    return;
                }
            }
        }
        catch (OperationCanceledException) when (_closing)
        {
            // closed by us
        }
        catch (Exception e) when (e is IOException or SocketException or BenchException or ObjectDisposedException or OperationCanceledException)
        {
            if (!_closing)
            {
                Fail($"connection broken: {e.Message}");
            }
        }
        catch (Exception e)
        {
            Fail($"read loop fault: {e}");
        }
    }

    /// <summary>What one parse pass counted.</summary>
    protected struct Tally
    {
        public long Deliveries { get; set; }

        public long Progress { get; set; }
    }
}
