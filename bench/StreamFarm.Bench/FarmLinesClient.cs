using System.Buffers;
using System.Diagnostics;
using System.Net;

namespace StreamFarm.Bench;

/// <summary>
/// An RTTP client that only watches the farm table: <c>HELLO 1 client=NAME</c>, then it reads
/// everything, answers PING with PONG (so the server's idle timeout never cuts it, and its users count
/// stays put) and logs, with the time it was read, every FARM table line it gets: the whole table
/// (<c>FARM v n</c> and its n <c>SERVER</c> lines) and the deltas (<c>SERVER</c> outside a block,
/// <c>FARMDEL</c>). Bytes are the lines as sent, newline included.
/// </summary>
public sealed class FarmLinesClient : LoadClient
{
    private static readonly byte[] PingLine = "PING\n"u8.ToArray();
    private static readonly byte[] FarmLine = "FARM\n"u8.ToArray();
    private readonly TaskCompletionSource _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<Entry> _log = [];
    private readonly byte[] _hello;
    private TaskCompletionSource<int>? _table;
    private int _blockLeft;
    private int _blockBytes;

    private FarmLinesClient(System.Net.Sockets.Socket socket, Stream stream, string name)
        : base(socket, stream, name) => _hello = System.Text.Encoding.ASCII.GetBytes($"HELLO 1 client={name}\n");

    public override string Subject => "";

    /// <summary>Connects, sends HELLO and waits for WELCOME.</summary>
    public static async Task<FarmLinesClient> ConnectAsync(IPEndPoint endpoint, string name, TimeSpan timeout, CancellationToken cancel)
    {
        var (socket, stream) = await ConnectStreamAsync(endpoint, null, natsInfoFirst: false, cancel);
        var client = new FarmLinesClient(socket, stream, name);
        try
        {
            client.StartReading();
            await client.WriteAsync(client._hello, cancel);
            await client.AwaitAsync(client._welcome.Task, "WELCOME", timeout, cancel);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends <c>FARM</c> and returns the bytes of the whole table that answers it.</summary>
    public async Task<int> TableBytesAsync(TimeSpan timeout, CancellationToken cancel)
    {
        var table = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _table, table);
        await WriteAsync(FarmLine, cancel);
        await AwaitAsync(table.Task, "farm table", timeout, cancel);
        return await table.Task;
    }

    /// <summary>
    /// Bytes and lines of the FARM table deltas read between two <see cref="Stopwatch"/> timestamps
    /// (whole tables left out).
    /// </summary>
    public (long Bytes, int Lines) Deltas(long from, long to)
    {
        lock (_log)
        {
            long bytes = 0;
            var lines = 0;
            foreach (var e in _log)
            {
                if (!e.Table && e.At >= from && e.At < to)
                {
                    bytes += e.Bytes;
                    lines++;
                }
            }

            return (bytes, lines);
        }
    }

    public override Task SubscribeAsync(string subject, TimeSpan timeout, CancellationToken cancel) => throw new NotSupportedException("a farm-table watcher does not subscribe");

    public override Task SubscribeManyAsync(IReadOnlyList<int> indexes, int subjects, TimeSpan timeout, CancellationToken cancel) => throw new NotSupportedException("a farm-table watcher does not subscribe");

    public override string ManySubject(int index) => throw new NotSupportedException("a farm-table watcher does not subscribe");

    public override Task SyncAsync(TimeSpan timeout, CancellationToken cancel) => throw new NotSupportedException("a farm-table watcher does not sync");

    public override byte[] EncodePublish(string subject, string field, ReadOnlySpan<byte> payload) => throw new NotSupportedException("a farm-table watcher does not publish");

    public override int MaxStampedLength(int payloadLength) => throw new NotSupportedException("a farm-table watcher does not publish");

    public override int EncodeStamped(Span<byte> destination, long n, long stamp, ReadOnlySpan<byte> payload) => throw new NotSupportedException("a farm-table watcher does not publish");

    protected override ReadOnlyMemory<byte> KeepAlive => PingLine;

    protected override void OnFailed(string reason)
    {
        var e = new BenchException($"{Name}: {reason}");
        _welcome.TrySetException(e);
        Volatile.Read(ref _table)?.TrySetException(e);
    }

    protected override SequencePosition Parse(in ReadOnlySequence<byte> buffer, IBufferWriter<byte> replies, ref Tally tally)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (reader.TryReadTo(out ReadOnlySpan<byte> line, (byte)'\n'))
        {
            var bytes = line.Length + 1;
            if (line.StartsWith("FARM "u8))
            {
                _blockLeft = ParseCount(line);
                _blockBytes = bytes;
                Record(bytes, table: true);
                EndBlockIfDone();
            }
            else if (line.StartsWith("SERVER "u8))
            {
                var inBlock = _blockLeft > 0;
                Record(bytes, table: inBlock);
                if (inBlock)
                {
                    _blockLeft--;
                    _blockBytes += bytes;
                    EndBlockIfDone();
                }
            }
            else if (line.StartsWith("FARMDEL "u8))
            {
                Record(bytes, table: false);
            }
            else if (line.StartsWith("PING"u8))
            {
                replies.Write("PONG"u8);
                replies.Write(line[4..]);
                replies.Write("\n"u8);
            }
            else if (line.StartsWith("WELCOME "u8))
            {
                _welcome.TrySetResult();
            }
            else if (line.StartsWith("ERR "u8) || line.StartsWith("BYE"u8) || line.StartsWith("MOVE "u8))
            {
                Fail($"server said: {System.Text.Encoding.UTF8.GetString(line)}");
            }
        }

        return reader.Position;
    }

    private void EndBlockIfDone()
    {
        if (_blockLeft == 0)
        {
            Interlocked.Exchange(ref _table, null)?.TrySetResult(_blockBytes);
        }
    }

    private void Record(int bytes, bool table)
    {
        lock (_log)
        {
            _log.Add(new Entry(ReadTimestamp, bytes, table));
        }
    }

    private static int ParseCount(ReadOnlySpan<byte> line)
    {
        var last = line.LastIndexOf((byte)' ');
        return System.Buffers.Text.Utf8Parser.TryParse(line[(last + 1)..], out int n, out _) ? n : 0;
    }

    private readonly record struct Entry(long At, int Bytes, bool Table);
}
