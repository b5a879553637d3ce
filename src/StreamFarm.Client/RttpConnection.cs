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
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Channel<RttpMessage> _messages;
    private readonly RttpConnectionOptions _options;
    private readonly TaskCompletionSource<RttpFrameSummary> _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<FarmMember> _farmBlock = [];
    private Task _readLoop = Task.CompletedTask;
    private long _pendingFarmVersion;
    private int _pendingFarmCount = -1;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> _pings = new();
    private long _nextPing;
    private int _disposed;
    private long _lastReceived;
    private RttpFrameSummary? _welcomeSummary;
    private FarmSnapshot _farm = FarmSnapshot.Empty;

    private RttpConnection(TcpClient tcp, RttpConnectionOptions options, string endpoint)
    {
        _tcp = tcp;
        _options = options;
        Endpoint = endpoint;
        var stream = tcp.GetStream();
        _reader = PipeReader.Create(stream);
        _writer = PipeWriter.Create(stream);
        _lastReceived = options.Time.GetTimestamp();
        _messages = Channel.CreateBounded<RttpMessage>(new BoundedChannelOptions(options.MessageBuffer) { SingleReader = true, SingleWriter = true });
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

    /// <summary>Messages from the server, in order. Completes when the connection ends.</summary>
    public ChannelReader<RttpMessage> Messages => _messages.Reader;

    /// <summary>Completes when the connection has ended (faulted if it failed).</summary>
    public Task Completion => _readLoop;

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

        var connection = new RttpConnection(tcp, options, $"{host}:{port}");
        try
        {
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

    /// <summary>Publishes fields (<paramref name="replace"/>: the whole record, PUBIMAGE).</summary>
    public Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace = false, CancellationToken cancel = default) =>
        SendAsync(w =>
        {
            RttpWriter.WriteRaw(w, replace ? "PUBIMAGE "u8 : "PUB "u8);
            RttpWriter.WriteRaw(w, CheckSubject(subject));
            foreach (var (name, value) in fields)
            {
                var n = Encoding.UTF8.GetBytes(name);
                if (!SubjectSyntax.IsValidName(n))
                {
                    throw new ArgumentException($"'{name}' is not a valid field name", nameof(fields));
                }

                RttpWriter.WriteField(w, n, value);
            }

            RttpWriter.WriteRaw(w, "\n"u8);
        }, cancel);

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
        _tcp.Dispose();
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

    private Task SendHelloAsync(CancellationToken cancel) =>
        SendAsync(w =>
        {
            RttpWriter.WriteRaw(w, "HELLO 1"u8);
            RttpWriter.WriteField(w, "client"u8, _options.ClientName);
            if (_options.Group is not null)
            {
                RttpWriter.WriteField(w, "group"u8, _options.Group);
            }
            if (_options.Token is not null)
            {
                RttpWriter.WriteField(w, "token"u8, _options.Token);
            }

            if (_options.User is not null)
            {
                RttpWriter.WriteField(w, "user"u8, _options.User);
                RttpWriter.WriteField(w, "password"u8, _options.Password ?? "");
            }

            RttpWriter.WriteRaw(w, "\n"u8);
        }, cancel);

    private async Task SendAsync(Action<IBufferWriter<byte>> write, CancellationToken cancel)
    {
        await _writeLock.WaitAsync(cancel);
        try
        {
            write(_writer);
            var result = await _writer.FlushAsync(cancel);
            if (result.IsCompleted)
            {
                throw new RttpConnectionException("the connection is closed");
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            throw new RttpConnectionException($"the connection to {Endpoint} is closed", ex);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var frame = new RttpFrame();
        var limits = new RttpLimits { MaxLineBytes = _options.MaxLineBytes, MaxFields = int.MaxValue, MaxArgs = int.MaxValue };
        Exception? failure = null;
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

                        var message = await HandleAsync(frame);
                        if (message is not null)
                        {
                            await _messages.Writer.WriteAsync(message, _stop.Token);
                        }
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

        _welcome.TrySetException(failure ?? new RttpConnectionException("connection closed before WELCOME"));
        foreach (var waiter in _pings.Values)
        {
            waiter.TrySetException(failure ?? new RttpConnectionException("connection closed"));
        }

        _messages.Writer.TryComplete(failure is RttpConnectionException ? failure : null);
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
                return null;
            case RttpVerb.Image:
            case RttpVerb.Update:
                f.TryGetUInt64(1, out var epoch);
                f.TryGetUInt64(2, out var seq);
                return new RttpMessage
                {
                    Kind = f.Verb == RttpVerb.Image ? RttpMessageKind.Image : RttpMessageKind.Update,
                    Subject = Encoding.UTF8.GetString(f.Arg(0)),
                    Epoch = epoch,
                    Seq = seq,
                    Merged = f.TryGetMeta("merged"u8, out var merged) && int.TryParse(merged, out var m) ? m : 1,
                    Fields = ReadFields(f),
                };
            case RttpVerb.Status:
                _ = SubjectStatusNames.TryParse(f.Arg(1), out var status);
                return new RttpMessage { Kind = RttpMessageKind.Status, Subject = Encoding.UTF8.GetString(f.Arg(0)), Status = status, Code = Encoding.UTF8.GetString(f.Arg(1)) };
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
            case RttpVerb.Ping:
                await SendAsync(w => RttpWriter.WritePingPong(w, pong: true, default), _stop.Token);
                return null;
            case RttpVerb.Move:
                return new RttpMessage { Kind = RttpMessageKind.Move, Code = Encoding.UTF8.GetString(f.Arg(0)), Text = f.TryGetMeta("server"u8, out var s) ? FieldEscaping.Unescape(s) : "" };
            case RttpVerb.Err:
                var code = RttpErrors.Parse(f.Arg(0));
                var text = Encoding.UTF8.GetString(f.Text);
                var error = new RttpMessage { Kind = RttpMessageKind.Error, Error = code, Code = Encoding.UTF8.GetString(f.Arg(0)), Text = text };
                if (!_welcome.Task.IsCompleted && code.IsFatal())
                {
                    _welcome.TrySetException(new RttpConnectionException(code, $"{error.Code}: {text}"));
                }

                return error;
            case RttpVerb.Bye:
                var bye = new RttpMessage { Kind = RttpMessageKind.Bye, Code = f.ArgCount > 0 ? Encoding.UTF8.GetString(f.Arg(0)) : "", Text = Encoding.UTF8.GetString(f.Text) };
                _welcome.TrySetException(new RttpConnectionException($"server said BYE {bye.Code} {bye.Text}".Trim()));
                return bye;
            case RttpVerb.Pong:
                if (f.ArgCount > 0 && _pings.TryGetValue(Encoding.ASCII.GetString(f.Arg(0)), out var waiter))
                {
                    waiter.TrySetResult();
                }

                return null;
            default:
                return null; // anything a newer server may add
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

    private static KeyValuePair<string, string>[] ReadFields(RttpFrame f)
    {
        var fields = new KeyValuePair<string, string>[f.FieldCount];
        for (var i = 0; i < fields.Length; i++)
        {
            fields[i] = KeyValuePair.Create(Encoding.UTF8.GetString(f.FieldName(i)), FieldEscaping.Unescape(f.FieldValue(i)));
        }

        return fields;
    }

    private readonly record struct RttpFrameSummary(string ServerId, long PingMs);
}
