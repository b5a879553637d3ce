using System.Buffers;
using System.Buffers.Text;
using System.Net;

namespace StreamFarm.Bench;

/// <summary>
/// An RTTP connection of the load generator: <c>HELLO 1 client=bench</c>, then <c>SUB /bench/s</c> for
/// a subscriber or <c>PUB /bench/s v=...</c> batches for the publisher (or numbered subjects,
/// <c>/bench/s7</c>, one per subscriber connection). It counts UPDATE lines, checks
/// that their sequence numbers follow on (and notes any conflation), answers PING with PONG and sends
/// a PING of its own when it has been silent for a few seconds (the server's idle timeout counts
/// only what it receives); its own <c>PING sync</c>, answered with <c>PONG sync</c>, confirms that the
/// server has applied everything sent before it. Stamped publications are <c>PUB /bench/s n=COUNTER t=TIMESTAMP v=...</c>.
/// </summary>
public sealed class RttpLoadClient : LoadClient
{
    public const string BenchSubject = "/bench/s";
    private const string ManyPrefix = "/bench/m/";
    private const byte ManyAwaited = 1;
    private const byte ManyActive = 2;
    private static readonly byte[] HelloLine = "HELLO 1 client=bench\n"u8.ToArray();
    private static readonly byte[] PingLine = "PING\n"u8.ToArray();
    private static readonly byte[] SyncLine = "PING sync\n"u8.ToArray();
    private static readonly byte[] ByeLine = "BYE done\n"u8.ToArray();
    private readonly TaskCompletionSource _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _pong;
    private bool _active;
    private ulong _lastSeq;
    private long _mergedMessages;
    private long _mergedAway;
    private long _gaps;
    private long _images;
    private string? _firstGap;
    private ulong[]? _manySeq; // many subjects: the last seq of each
    private byte[]? _manyState; // many subjects: 0 not subscribed, ManyAwaited, ManyActive
    private int _manyPending;

    private RttpLoadClient(System.Net.Sockets.Socket socket, Stream stream, string name)
        : base(socket, stream, name)
    {
    }

    public override string Subject => BenchSubject;

    public override string? Anomaly
    {
        get
        {
            var notes = new List<string>();
            if (Volatile.Read(ref _mergedMessages) > 0)
            {
                notes.Add($"{_mergedMessages} conflated UPDATE(s) standing for {_mergedAway + _mergedMessages} publications");
            }

            if (Volatile.Read(ref _images) > 0)
            {
                notes.Add($"{_images} IMAGE(s) after the first");
            }

            if (Volatile.Read(ref _gaps) > 0)
            {
                notes.Add($"{_gaps} sequence gap(s), first: {_firstGap}");
            }

            return notes.Count == 0 ? null : string.Join("; ", notes);
        }
    }

    /// <summary>Connects, sends HELLO and waits for WELCOME.</summary>
    public static async Task<RttpLoadClient> ConnectAsync(IPEndPoint endpoint, string name, TimeSpan timeout, CancellationToken cancel, BenchTls? tls = null)
    {
        var (socket, stream) = await ConnectStreamAsync(endpoint, tls, natsInfoFirst: false, cancel);
        var client = new RttpLoadClient(socket, stream, name);
        try
        {
            client.StartReading();
            await client.WriteAsync(HelloLine, cancel);
            await client.AwaitAsync(client._welcome.Task, "WELCOME", timeout, cancel);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    public override async Task SubscribeAsync(string subject, TimeSpan timeout, CancellationToken cancel)
    {
        await WriteAsync(System.Text.Encoding.ASCII.GetBytes($"SUB {subject}\n"), cancel);
        await AwaitAsync(_subscribed.Task, $"the IMAGE or STATUS of {subject}", timeout, cancel);
    }

    public override async Task SyncAsync(TimeSpan timeout, CancellationToken cancel)
    {
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _pong, pong);
        if (Failure is { } failure)
        {
            throw new BenchException($"{Name}: {failure}");
        }

        await WriteAsync(SyncLine, cancel);
        await AwaitAsync(pong.Task, "PONG sync", timeout, cancel);
    }

    public override byte[] EncodePublish(string subject, string field, ReadOnlySpan<byte> payload)
    {
        var prefix = System.Text.Encoding.ASCII.GetBytes($"PUB {subject} {field}=");
        var line = new byte[prefix.Length + payload.Length + 1];
        prefix.CopyTo(line, 0);
        payload.CopyTo(line.AsSpan(prefix.Length));
        line[^1] = (byte)'\n';
        return line;
    }

    public override string ManySubject(int index) => ManyPrefix + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public override async Task SubscribeManyAsync(IReadOnlyList<int> indexes, int subjects, TimeSpan timeout, CancellationToken cancel)
    {
        if (_manySeq is not null || _active || indexes.Count == 0)
        {
            throw new InvalidOperationException($"{Name}: subscribe to many subjects once, to at least one, and not with SUB {BenchSubject}");
        }

        _manySeq = new ulong[subjects];
        _manyState = new byte[subjects];
        foreach (var i in indexes)
        {
            _manyState[i] = ManyAwaited;
        }

        _manyPending = indexes.Distinct().Count();
        var lines = new System.Text.StringBuilder();
        foreach (var chunk in indexes.Chunk(100))
        {
            lines.Append("SUB");
            foreach (var i in chunk)
            {
                lines.Append(' ').Append(ManySubject(i));
            }

            lines.Append('\n');
        }

        await WriteAsync(System.Text.Encoding.ASCII.GetBytes(lines.ToString()), cancel);
        await AwaitAsync(_subscribed.Task, $"the IMAGE or STATUS of {_manyPending} of {indexes.Count} subjects", timeout, cancel);
    }

    public override int MaxStampedLength(int payloadLength) => "PUB /bench/s n= t= v=\n"u8.Length + (2 * 20) + payloadLength;

    public override int EncodeStamped(Span<byte> destination, long n, long stamp, ReadOnlySpan<byte> payload)
    {
        var w = new SpanCursor(destination);
        w.Write("PUB /bench/s n="u8);
        w.Write(n);
        w.Write(" t="u8);
        w.Write(stamp);
        w.Write(" v="u8);
        w.Write(payload);
        w.Write("\n"u8);
        return w.Written;
    }

    protected override ReadOnlyMemory<byte> KeepAlive => PingLine;

    protected override ReadOnlyMemory<byte> Goodbye => ByeLine;

    protected override void OnFailed(string reason)
    {
        var e = new BenchException($"{Name}: {reason}");
        _welcome.TrySetException(e);
        _subscribed.TrySetException(e);
        Interlocked.Exchange(ref _pong, null)?.TrySetException(e);
    }

    protected override SequencePosition Parse(in ReadOnlySequence<byte> buffer, IBufferWriter<byte> replies, ref Tally tally)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryReadTo(out ReadOnlySpan<byte> line, (byte)'\n'))
        {
            if (line.Length > 0 && line[^1] == (byte)'\r')
            {
                line = line[..^1];
            }

            HandleLine(line, replies, ref tally);
        }

        return reader.Position;
    }

    private void HandleLine(ReadOnlySpan<byte> line, IBufferWriter<byte> replies, ref Tally tally)
    {
        if (_manySeq is not null && HandleMany(line, ref tally))
        {
            return;
        }

        if (line.StartsWith("UPDATE "u8))
        {
            if (_active)
            {
                Record(line["UPDATE "u8.Length..], ref tally);
            }
        }
        else if (line.StartsWith("IMAGE "u8))
        {
            if (_active)
            {
                if (_lastSeq != 0)
                {
                    _images++; // the first publication after STATUS NOT_FOUND comes as an IMAGE: expected
                }

                Record(line["IMAGE "u8.Length..], ref tally);
            }
            else
            {
                _lastSeq = ParseSeq(line["IMAGE "u8.Length..], out _);
                _active = true;
                _subscribed.TrySetResult();
            }
        }
        else if (line.StartsWith("PING"u8))
        {
            replies.Write("PONG"u8);
            replies.Write(line[4..]);
            replies.Write("\n"u8);
        }
        else if (line.SequenceEqual("PONG sync"u8))
        {
            Interlocked.Exchange(ref _pong, null)?.TrySetResult();
        }
        else if (line.StartsWith("STATUS "u8))
        {
            if (line.EndsWith(" NOT_FOUND"u8) || line.EndsWith(" OK"u8))
            {
                if (!_active)
                {
                    _lastSeq = 0;
                    _active = true;
                    _subscribed.TrySetResult();
                }
            }
            else
            {
                Fail($"unexpected status: {Text(line)}");
            }
        }
        else if (line.StartsWith("WELCOME "u8))
        {
            _welcome.TrySetResult();
        }
        else if (line.StartsWith("ERR "u8) || line.StartsWith("BYE"u8) || line.StartsWith("MOVE "u8))
        {
            Fail($"server said: {Text(line)}");
        }
    }

    /// <summary>
    /// Many subjects: an UPDATE, IMAGE or STATUS of one of them (true), counted against that
    /// subject's own seq; false for any other line.
    /// </summary>
    private bool HandleMany(ReadOnlySpan<byte> line, ref Tally tally)
    {
        var kind = line.StartsWith("UPDATE "u8) ? 0 : line.StartsWith("IMAGE "u8) ? 1 : line.StartsWith("STATUS "u8) ? 2 : -1;
        if (kind < 0)
        {
            return false;
        }

        var rest = line[(line.IndexOf((byte)' ') + 1)..];
        if (!rest.StartsWith("/bench/m/"u8) || !Utf8Parser.TryParse(rest["/bench/m/"u8.Length..], out int i, out _) || i < 0 || i >= _manyState!.Length || _manyState[i] == 0)
        {
            Fail($"a line for a subject this connection did not subscribe to: {Text(line)}");
            return true;
        }

        if (_manyState[i] == ManyAwaited)
        {
            if (kind == 2 && !line.EndsWith(" NOT_FOUND"u8) && !line.EndsWith(" OK"u8))
            {
                Fail($"unexpected status: {Text(line)}");
                return true;
            }

            _manySeq![i] = kind == 1 ? ParseSeq(rest, out _) : 0;
            _manyState[i] = ManyActive;
            if (--_manyPending == 0)
            {
                _subscribed.TrySetResult();
            }
        }
        else if (kind == 2)
        {
            Fail($"unexpected status: {Text(line)}");
        }
        else
        {
            if (kind == 1 && _manySeq![i] != 0)
            {
                _images++;
            }

            Record(rest, ref tally, ref _manySeq![i]);
        }

        return true;
    }

    /// <summary>One UPDATE (or later IMAGE): counts it and checks its seq against the last one.</summary>
    private void Record(ReadOnlySpan<byte> rest, ref Tally tally) => Record(rest, ref tally, ref _lastSeq);

    /// <summary>One UPDATE (or later IMAGE) of the subject whose last seq is <paramref name="lastSeq"/>.</summary>
    private void Record(ReadOnlySpan<byte> rest, ref Tally tally, ref ulong lastSeq)
    {
        var seq = ParseSeq(rest, out var merged);
        if (merged > 1)
        {
            _mergedMessages++;
            _mergedAway += merged - 1;
        }

        if (seq != lastSeq + (ulong)merged)
        {
            if (_gaps++ == 0)
            {
                _firstGap = $"seq {seq} after {lastSeq} (@merged={merged})";
            }
        }

        tally.Deliveries++;
        tally.Progress += seq > lastSeq ? (long)(seq - lastSeq) : 1;
        lastSeq = seq;
        if (Latency is { } latency && TryField(rest, " n="u8, out var n) && TryField(rest, " t="u8, out var stamp))
        {
            latency.OnMessage(n, stamp, ReadTimestamp);
        }
    }

    /// <summary>The whole-number value of a field (<paramref name="key"/> is <c>" name="</c>) of a line without escapes.</summary>
    private static bool TryField(ReadOnlySpan<byte> rest, ReadOnlySpan<byte> key, out long value)
    {
        var at = rest.IndexOf(key);
        value = 0;
        return at >= 0 && Utf8Parser.TryParse(rest[(at + key.Length)..], out value, out _);
    }

    /// <summary>Reads the seq of <c>SUBJECT EPOCH SEQ [@merged=N] ...</c>, and N (1 without it).</summary>
    private static ulong ParseSeq(ReadOnlySpan<byte> rest, out long merged)
    {
        merged = 1;
        for (var skip = 0; skip < 2; skip++)
        {
            var space = rest.IndexOf((byte)' ');
            if (space < 0)
            {
                return 0;
            }

            rest = rest[(space + 1)..];
        }

        if (!Utf8Parser.TryParse(rest, out ulong seq, out var used))
        {
            return 0;
        }

        rest = rest[used..];
        if (rest.StartsWith(" @merged="u8) && !Utf8Parser.TryParse(rest[" @merged="u8.Length..], out merged, out _))
        {
            merged = 1;
        }

        return seq;
    }

    private static string Text(ReadOnlySpan<byte> line) => System.Text.Encoding.UTF8.GetString(line);
}
