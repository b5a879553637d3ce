using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Net;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// A NATS connection of the load generator: <c>CONNECT {"verbose":false,"pedantic":false}</c>, then
/// <c>SUB bench.s 1</c> for a subscriber or <c>PUB bench.s N</c> batches for the publisher (or numbered
/// subjects, <c>bench.s7</c>, one per subscriber connection). It counts
/// MSG lines (skipping their payloads) and answers PING with PONG; a PING of its own, answered with
/// PONG, confirms that the server has processed everything sent before it. Stamped publications
/// carry <c>COUNTER TIMESTAMP </c> at the start of the payload. In a cluster, a subscriber can also
/// subscribe to <see cref="ProbeSubject"/> after <see cref="BenchSubject"/>: a probe that reaches it
/// through a route shows that the publisher's server has learned both interests (routes pass them on
/// in order).
/// </summary>
public sealed class NatsLoadClient : LoadClient
{
    public const string BenchSubject = "bench.s";
    public const string ProbeSubject = "bench.probe";
    private const int StampBytes = 48; // "COUNTER TIMESTAMP " fits in this
    private static readonly byte[] ConnectLines = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n"u8.ToArray();
    private static readonly byte[] PingLine = "PING\r\n"u8.ToArray();
    private static readonly byte[] ProbeSubLines = "SUB bench.probe 2\r\nPING\r\n"u8.ToArray();
    private long _probes;
    private TaskCompletionSource? _pong;
    private long _skip; // payload bytes (with their CRLF) still to skip
    private string? _failureText;

    private NatsLoadClient(System.Net.Sockets.Socket socket, Stream stream, string name)
        : base(socket, stream, name)
    {
    }

    public override string Subject => BenchSubject;

    /// <summary>Connects, sends CONNECT and a PING, and waits for the PONG.</summary>
    public static async Task<NatsLoadClient> ConnectAsync(IPEndPoint endpoint, string name, TimeSpan timeout, CancellationToken cancel, BenchTls? tls = null)
    {
        var (socket, stream) = await ConnectStreamAsync(endpoint, tls, natsInfoFirst: true, cancel);
        var client = new NatsLoadClient(socket, stream, name);
        try
        {
            client.StartReading();
            await client.RoundTripAsync(ConnectLines, "PONG after CONNECT", timeout, cancel);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>One empty message to <see cref="ProbeSubject"/>.</summary>
    public static ReadOnlyMemory<byte> ProbeMessage { get; } = "PUB bench.probe 0\r\n\r\n"u8.ToArray();

    /// <summary>Messages received on <see cref="ProbeSubject"/> (not counted as deliveries).</summary>
    public long Probes => Interlocked.Read(ref _probes);

    public override Task SubscribeAsync(string subject, TimeSpan timeout, CancellationToken cancel) =>
        RoundTripAsync(Encoding.ASCII.GetBytes($"SUB {subject} 1\r\nPING\r\n"), $"PONG after SUB {subject}", timeout, cancel);

    public override Task SyncAsync(TimeSpan timeout, CancellationToken cancel) => RoundTripAsync(PingLine, "PONG", timeout, cancel);

    /// <summary>Subscribes to <see cref="ProbeSubject"/> (after <see cref="SubscribeAsync"/>).</summary>
    public Task SubscribeProbeAsync(TimeSpan timeout, CancellationToken cancel) => RoundTripAsync(ProbeSubLines, "PONG after SUB " + ProbeSubject, timeout, cancel);

    public override string ManySubject(int index) => "bench.m." + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>SUB lines (sids from 10 on) and a PING; the PONG confirms them all.</summary>
    public override Task SubscribeManyAsync(IReadOnlyList<int> indexes, int subjects, TimeSpan timeout, CancellationToken cancel)
    {
        var lines = new StringBuilder();
        for (var k = 0; k < indexes.Count; k++)
        {
            lines.Append(CultureInfo.InvariantCulture, $"SUB {ManySubject(indexes[k])} {k + 10}\r\n");
        }

        lines.Append("PING\r\n");
        return RoundTripAsync(Encoding.ASCII.GetBytes(lines.ToString()), $"PONG after SUB of {indexes.Count} subjects", timeout, cancel);
    }

    public override byte[] EncodePublish(string subject, string field, ReadOnlySpan<byte> payload)
    {
        var head = Encoding.ASCII.GetBytes($"PUB {subject} {payload.Length.ToString(CultureInfo.InvariantCulture)}\r\n");
        var message = new byte[head.Length + payload.Length + 2];
        head.CopyTo(message, 0);
        payload.CopyTo(message.AsSpan(head.Length));
        message[^2] = (byte)'\r';
        message[^1] = (byte)'\n';
        return message;
    }

    public override int MaxStampedLength(int payloadLength) => "PUB bench.s \r\n\r\n"u8.Length + 11 + StampBytes + payloadLength;

    public override int EncodeStamped(Span<byte> destination, long n, long stamp, ReadOnlySpan<byte> payload)
    {
        Span<byte> head = stackalloc byte[StampBytes];
        var h = new SpanCursor(head);
        h.Write(n);
        h.Write(" "u8);
        h.Write(stamp);
        h.Write(" "u8);
        var w = new SpanCursor(destination);
        w.Write("PUB bench.s "u8);
        w.Write(h.Written + payload.Length);
        w.Write("\r\n"u8);
        w.Write(head[..h.Written]);
        w.Write(payload);
        w.Write("\r\n"u8);
        return w.Written;
    }

    protected override void OnFailed(string reason)
    {
        _failureText = reason;
        Interlocked.Exchange(ref _pong, null)?.TrySetException(new BenchException($"{Name}: {reason}"));
    }

    protected override SequencePosition Parse(in ReadOnlySequence<byte> buffer, IBufferWriter<byte> replies, ref Tally tally)
    {
        var reader = new SequenceReader<byte>(buffer);
        var latency = Latency;
        Span<byte> stamp = stackalloc byte[StampBytes];
        while (true)
        {
            if (_skip > 0)
            {
                var n = Math.Min(_skip, reader.Remaining);
                reader.Advance(n);
                _skip -= n;
                if (_skip > 0)
                {
                    break;
                }

                continue;
            }

            var lineStart = reader.Consumed;
            if (!reader.TryReadTo(out ReadOnlySpan<byte> line, (byte)'\n'))
            {
                break;
            }

            if (line.Length > 0 && line[^1] == (byte)'\r')
            {
                line = line[..^1];
            }

            if (line.StartsWith("MSG "u8))
            {
                // MSG <subject> <sid> [reply-to] <#bytes>: the payload and its CRLF follow.
                var size = line[(line.LastIndexOf((byte)' ') + 1)..];
                if (!Utf8Parser.TryParse(size, out long bytes, out var used) || used != size.Length)
                {
                    Fail($"bad MSG line: {Encoding.UTF8.GetString(line)}");
                    break;
                }

                if (line.StartsWith("MSG bench.probe "u8))
                {
                    _skip = bytes + 2;
                    Interlocked.Increment(ref _probes);
                    continue;
                }

                if (latency is not null)
                {
                    if (reader.Remaining < bytes + 2)
                    {
                        reader.Rewind(reader.Consumed - lineStart); // read the line again with its payload
                        break;
                    }

                    var head = stamp[..(int)Math.Min(bytes, StampBytes)];
                    if (reader.TryCopyTo(head) && Utf8Parser.TryParse(head, out long n, out var nLength) && nLength < head.Length
                        && Utf8Parser.TryParse(head[(nLength + 1)..], out long at, out _))
                    {
                        latency.OnMessage(n, at, ReadTimestamp);
                    }
                }

                _skip = bytes + 2;
                tally.Deliveries++;
                tally.Progress++;
            }
            else if (line.SequenceEqual("PING"u8))
            {
                replies.Write("PONG\r\n"u8);
            }
            else if (line.SequenceEqual("PONG"u8))
            {
                Interlocked.Exchange(ref _pong, null)?.TrySetResult();
            }
            else if (line.StartsWith("-ERR"u8))
            {
                Fail($"server said: {Encoding.UTF8.GetString(line)}");
            }
        }

        return reader.Position;
    }

    private async Task RoundTripAsync(byte[] lines, string what, TimeSpan timeout, CancellationToken cancel)
    {
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _pong, pong);
        if (_failureText is not null)
        {
            throw new BenchException($"{Name}: {_failureText}");
        }

        await WriteAsync(lines, cancel);
        await AwaitAsync(pong.Task, what, timeout, cancel);
    }
}
