using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>
/// A hand-driven RTTP server on 127.0.0.1 (real sockets): it welcomes each connection with a farm
/// table of itself (<c>id=f1</c>, no routes) and then does only what the test says, so a test can
/// hold an acknowledgement back, answer with a NACK, or drop a connection at a chosen line.
/// </summary>
internal sealed class ScriptedServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly string _id;
    private readonly Func<string>? _table;
    private readonly Channel<Peer> _accepted = Channel.CreateUnbounded<Peer>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    /// <param name="address">Where to listen (127.0.0.1 by default).</param>
    /// <param name="port">The port (0: chosen by the system).</param>
    /// <param name="id">The server's id in WELCOME.</param>
    /// <param name="table">The FARM block sent after WELCOME (default: this server alone).</param>
    public ScriptedServer(IPAddress? address = null, int port = 0, string id = "f1", Func<string>? table = null)
    {
        _listener = new TcpListener(address ?? IPAddress.Loopback, port);
        _id = id;
        _table = table;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>The next client connection, welcomed (HELLO read, WELCOME and the table sent).</summary>
    public async Task<Peer> NextAsync()
    {
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        return await _accepted.Reader.ReadAsync(patience.Token);
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                var peer = new Peer(socket);
                var hello = await peer.NextAsync();
                if (hello is null || !hello.StartsWith("HELLO ", StringComparison.Ordinal))
                {
                    peer.Dispose();
                    continue;
                }

                peer.Hello = hello;

                await peer.SendAsync(
                    $"WELCOME 1 server={_id} session=1 maxline=16384 ping=1000 idle=10000\n" +
                    (_table?.Invoke() ?? "FARM 1 1\n" +
                    $"SERVER 1 id=f1 group=default state=active liveness=alive users=1 capacity=100 tcp=127.0.0.1:{Port} ws=ws://127.0.0.1:1/rttp http=http://127.0.0.1:1\n"));
                await _accepted.Writer.WriteAsync(peer);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // stopping (InvalidOperationException: StopListening came before the next accept)
        }
    }

    /// <summary>Stops listening: later connects are refused, as by a killed server's host.</summary>
    public void StopListening() => _listener.Stop();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        while (_accepted.Reader.TryRead(out var p))
        {
            p.Dispose();
        }

        _stop.Dispose();
    }

    /// <summary>One client connection: lines in, lines out.</summary>
    internal sealed class Peer(Socket socket) : IDisposable
    {
        private readonly NetworkStream _stream = new(socket, ownsSocket: true);
        private readonly byte[] _buffer = new byte[65536];
        private readonly StringBuilder _pending = new();

        /// <summary>The client's HELLO line.</summary>
        public string Hello { get; set; } = "";

        /// <summary>The next line from the client (a PING is answered, and returned; a PONG skipped unless <paramref name="pongs"/>); null when it closed.</summary>
        public async Task<string?> NextAsync(bool pongs = false)
        {
            using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
            while (true)
            {
                var text = _pending.ToString();
                var lf = text.IndexOf('\n', StringComparison.Ordinal);
                if (lf >= 0)
                {
                    _pending.Remove(0, lf + 1);
                    var line = text[..lf];
                    if (line.StartsWith("PING", StringComparison.Ordinal))
                    {
                        await SendAsync("PONG" + line[4..] + "\n"); // answered, and returned
                    }

                    if (!pongs && line.StartsWith("PONG", StringComparison.Ordinal))
                    {
                        continue;
                    }

                    return line;
                }

                var n = await _stream.ReadAsync(_buffer, patience.Token);
                if (n == 0)
                {
                    return null;
                }

                _pending.Append(Encoding.UTF8.GetString(_buffer, 0, n));
            }
        }

        /// <summary>The next line that starts with <paramref name="prefix"/> (others are skipped).</summary>
        public async Task<string> ExpectAsync(string prefix)
        {
            while (await NextAsync() is { } line)
            {
                if (line.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return line;
                }
            }

            throw new InvalidOperationException($"closed before a line starting with '{prefix}'");
        }

        public async Task SendAsync(string lines) => await _stream.WriteAsync(Encoding.UTF8.GetBytes(lines));

        /// <summary>The <c>@ack</c> id of a publication line.</summary>
        public static string AckId(string line) => line.Split(' ').Single(t => t.StartsWith("@ack=", StringComparison.Ordinal))[5..];

        public void Dispose() => _stream.Dispose();
    }
}
