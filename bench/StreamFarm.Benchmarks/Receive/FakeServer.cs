using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Benchmarks.Receive;

/// <summary>
/// A fake server on 127.0.0.1 for the receive benchmarks: a plain listening <see cref="Socket"/>,
/// blocking I/O on two dedicated threads (so it allocates nothing while a benchmark measures: the
/// memory diagnoser counts every thread of the process). One thread reads what the client sends and
/// answers it (<see cref="Answer"/>: the handshake, the subscription, pings); the other waits for
/// <see cref="Go"/> and then writes the whole pre-built block of messages in one blocking send.
/// </summary>
internal abstract class FakeServer : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Lock _sendLock = new();
    private readonly SemaphoreSlim _go = new(0);
    private readonly ManualResetEventSlim _subscribed = new();
    private readonly Thread _writer;
    private static readonly bool Trace = Environment.GetEnvironmentVariable("FAKE_SERVER_TRACE") == "1";
    private Socket? _peer;
    private volatile bool _stopping;

    protected FakeServer()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        new Thread(Accept) { IsBackground = true, Name = "fake-server-accept" }.Start();
        _writer = new Thread(Write) { IsBackground = true, Name = "fake-server-write" };
        _writer.Start();
    }

    public int Port { get; }

    /// <summary>The block written at each <see cref="Go"/> (set once the client subscribed).</summary>
    protected byte[] Block { get; set; } = [];

    /// <summary>Writes the block once (asynchronously, on the writer thread).</summary>
    public void Go() => _go.Release();

    /// <summary>Waits until the client's subscription arrived (and the block is ready).</summary>
    public void WaitSubscribed(TimeSpan timeout)
    {
        if (!_subscribed.Wait(timeout))
        {
            throw new TimeoutException("the client did not subscribe");
        }
    }

    /// <summary>Answers one line the client sent (without its line end).</summary>
    protected abstract void Answer(string line);

    /// <summary>Called on the writer thread before each send of <see cref="Block"/> (e.g. to advance sequence numbers in place).</summary>
    protected virtual void BeforeSend()
    {
    }

    protected void Send(string text) => Send(Encoding.ASCII.GetBytes(text));

    protected void Send(byte[] bytes)
    {
        lock (_sendLock)
        {
            _peer?.Send(bytes);
        }
    }

    protected void Subscribed() => _subscribed.Set();

    private void Accept()
    {
        try
        {
            while (!_stopping)
            {
                var peer = _listener.Accept();
                peer.NoDelay = true;
                lock (_sendLock)
                {
                    _peer = peer;
                }

                new Thread(() => Read(peer)) { IsBackground = true, Name = "fake-server-read" }.Start();
                OnAccepted();
            }
        }
        catch (SocketException)
        {
            // stopped
        }
        catch (ObjectDisposedException)
        {
            // stopped
        }
    }

    protected virtual void OnAccepted()
    {
    }

    private void Read(Socket peer)
    {
        var buffer = new byte[64 * 1024];
        var pending = new StringBuilder();
        try
        {
            while (true)
            {
                var n = peer.Receive(buffer);
                if (n == 0)
                {
                    return;
                }

                pending.Append(Encoding.UTF8.GetString(buffer, 0, n));
                var text = pending.ToString();
                var start = 0;
                int end;
                while ((end = text.IndexOf('\n', start)) >= 0)
                {
                    var line = text[start..end].TrimEnd('\r');
                    start = end + 1;
                    if (line.Length > 0)
                    {
                        if (Trace)
                        {
                            Console.Error.WriteLine($"fake server <- {line}");
                        }

                        Answer(line);
                    }
                }

                pending.Clear().Append(text, start, text.Length - start);
            }
        }
        catch (SocketException)
        {
            // the client went away
        }
        catch (ObjectDisposedException)
        {
            // stopped
        }
    }

    private void Write()
    {
        while (true)
        {
            _go.Wait();
            if (_stopping)
            {
                return;
            }

            BeforeSend();
            try
            {
                Send(Block);
            }
            catch (SocketException)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _go.Release();
        _listener.Dispose();
        lock (_sendLock)
        {
            _peer?.Dispose();
        }
    }

    /// <summary>The value of message <paramref name="i"/>: <paramref name="size"/> printable bytes that need no escaping, different for each message of a block.</summary>
    public static string Value(int i, int size)
    {
        var digits = i.ToString("D8", System.Globalization.CultureInfo.InvariantCulture);
        var sb = new StringBuilder(size);
        while (sb.Length < size)
        {
            sb.Append(digits).Append('.');
        }

        return sb.ToString(0, size);
    }
}

/// <summary>
/// An RTTP server as the client sees it (src/StreamFarm.Server, ClientSession): <c>HELLO</c> gets
/// <c>WELCOME 1 server=.. session=.. maxline=.. ping=.. idle=..</c> and the farm table (itself
/// alone, so a <c>FarmClient</c> chooses it and stays); <c>SUB</c> gets the subject's
/// <c>IMAGE</c>; <c>PING</c> gets <c>PONG</c>. Each <see cref="FakeServer.Go"/> writes
/// <c>count</c> <c>UPDATE subject epoch seq v=value</c> lines, sequence numbers going
/// on from block to block (patched in place, fixed width), values differing line to line.
/// </summary>
internal sealed class FakeRttpServer : FakeServer
{
    public const string Subject = "/BENCH/S1";
    private const ulong Epoch = 1795927438474;
    private readonly int _count;
    private readonly int _valueBytes;
    private readonly int[] _seqOffsets;
    private ulong _seq = 1_000_000_000; // ten digits for the next nine billion messages

    public FakeRttpServer(int count, int valueBytes)
    {
        _count = count;
        _valueBytes = valueBytes;
        _seqOffsets = new int[count];
        var sb = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            var head = $"UPDATE {Subject} {Epoch} ";
            _seqOffsets[i] = Encoding.ASCII.GetByteCount(sb.ToString()) + head.Length;
            sb.Append(head).Append("0000000000 v=").Append(Value(i, valueBytes)).Append('\n');
        }

        Block = Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>Bytes of one UPDATE line (on average).</summary>
    public int LineBytes => Block.Length / _count;

    protected override void Answer(string line)
    {
        var verb = line.Split(' ')[0];
        switch (verb)
        {
            case "HELLO":
                Send($"WELCOME 1 server=bench session=1 maxline=16384 ping=1000 idle=10000\nFARM 1 1\n" +
                     $"SERVER 1 id=bench group=default state=active liveness=alive users=1 capacity=10000 tcp=127.0.0.1:{Port} ws=ws://127.0.0.1:1/rttp http=http://127.0.0.1:1\n");
                break;
            case "SUB":
                Send($"IMAGE {Subject} {Epoch} {_seq++} v={Value(0, _valueBytes)}\n");
                Subscribed();
                break;
            case "PING":
                Send("PONG" + line[4..] + "\n");
                break;
        }
    }

    protected override void BeforeSend()
    {
        foreach (var offset in _seqOffsets)
        {
            var seq = _seq++;
            for (var d = 9; d >= 0; d--)
            {
                Block[offset + d] = (byte)('0' + (int)(seq % 10));
                seq /= 10;
            }
        }
    }
}

/// <summary>
/// A NATS server as NATS.Net sees it: <c>INFO</c> on accept; <c>CONNECT</c> is taken, <c>PING</c>
/// gets <c>PONG</c>, <c>SUB subject sid</c> makes the block: <paramref name="count"/> times
/// <c>MSG subject sid length\r\npayload\r\n</c>, the payloads the same values as the RTTP block's.
/// </summary>
internal sealed class FakeNatsServer(int count, int valueBytes) : FakeServer
{
    public const string Subject = "bench.s1";

    protected override void OnAccepted() =>
        Send($"INFO {{\"server_id\":\"bench\",\"server_name\":\"bench\",\"version\":\"2.10.22\",\"proto\":1,\"go\":\"go1.22\",\"host\":\"127.0.0.1\",\"port\":{Port},\"headers\":true,\"max_payload\":1048576}}\r\n");

    protected override void Answer(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        switch (parts[0].ToUpperInvariant())
        {
            case "PING":
                Send("PONG\r\n");
                break;
            case "SUB" when parts.Length >= 3 && parts[1] == Subject: // NATS.Net first subscribes to its reply inbox
                var sid = parts[^1];
                var sb = new StringBuilder();
                for (var i = 0; i < count; i++)
                {
                    var value = Value(i, valueBytes);
                    sb.Append("MSG ").Append(Subject).Append(' ').Append(sid).Append(' ').Append(value.Length).Append("\r\n").Append(value).Append("\r\n");
                }

                Block = Encoding.ASCII.GetBytes(sb.ToString());
                Subscribed();
                break;
        }
    }
}
