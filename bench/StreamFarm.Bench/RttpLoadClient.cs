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

    public override byte[] EncodePublish(string subject, ReadOnlySpan<byte> payload)
    {
        var prefix = System.Text.Encoding.ASCII.GetBytes($"PUB {subject} v=");
        var line = new byte[prefix.Length + payload.Length + 1];
        prefix.CopyTo(line, 0);
        payload.CopyTo(line.AsSpan(prefix.Length));
        line[^1] = (byte)'\n';
        return line;
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

    /// <summary>One UPDATE (or later IMAGE): counts it and checks its seq against the last one.</summary>
    private void Record(ReadOnlySpan<byte> rest, ref Tally tally)
    {
        var seq = ParseSeq(rest, out var merged);
        if (merged > 1)
        {
            _mergedMessages++;
            _mergedAway += merged - 1;
        }

        if (seq != _lastSeq + (ulong)merged)
        {
            if (_gaps++ == 0)
            {
                _firstGap = $"seq {seq} after {_lastSeq} (@merged={merged})";
            }
        }

        tally.Deliveries++;
        tally.Progress += seq > _lastSeq ? (long)(seq - _lastSeq) : 1;
        _lastSeq = seq;
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
