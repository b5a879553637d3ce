using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Net;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// A NATS connection of the load generator: <c>CONNECT {"verbose":false,"pedantic":false}</c>, then
/// <c>SUB bench.s 1</c> for a subscriber or <c>PUB bench.s N</c> batches for the publisher. It counts
/// MSG lines (skipping their payloads) and answers PING with PONG; a PING of its own, answered with
/// PONG, confirms that the server has processed everything sent before it.
/// </summary>
public sealed class NatsLoadClient : LoadClient
{
    public const string BenchSubject = "bench.s";
    private static readonly byte[] ConnectLines = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n"u8.ToArray();
    private static readonly byte[] SubLines = "SUB bench.s 1\r\nPING\r\n"u8.ToArray();
    private TaskCompletionSource? _pong;
    private long _skip; // payload bytes (with their CRLF) still to skip
    private string? _failureText;

    private NatsLoadClient(System.Net.Sockets.Socket socket, string name)
        : base(socket, name)
    {
    }

    public override string Subject => BenchSubject;

    /// <summary>Connects, sends CONNECT and a PING, and waits for the PONG.</summary>
    public static async Task<NatsLoadClient> ConnectAsync(IPEndPoint endpoint, string name, TimeSpan timeout, CancellationToken cancel)
    {
        var client = new NatsLoadClient(await ConnectSocketAsync(endpoint, cancel), name);
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

    public override Task SubscribeAsync(TimeSpan timeout, CancellationToken cancel) => RoundTripAsync(SubLines, "PONG after SUB", timeout, cancel);

    public override byte[] EncodePublish(ReadOnlySpan<byte> payload)
    {
        var head = Encoding.ASCII.GetBytes($"PUB {BenchSubject} {payload.Length.ToString(CultureInfo.InvariantCulture)}\r\n");
        var message = new byte[head.Length + payload.Length + 2];
        head.CopyTo(message, 0);
        payload.CopyTo(message.AsSpan(head.Length));
        message[^2] = (byte)'\r';
        message[^1] = (byte)'\n';
        return message;
    }

    protected override void OnFailed(string reason)
    {
        _failureText = reason;
        Interlocked.Exchange(ref _pong, null)?.TrySetException(new BenchException($"{Name}: {reason}"));
    }

    protected override SequencePosition Parse(in ReadOnlySequence<byte> buffer, IBufferWriter<byte> replies, ref Tally tally)
    {
        var reader = new SequenceReader<byte>(buffer);
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
