using System.Buffers;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Faults.Tests.Clients;

/// <summary>
/// One RTTP session over a plain socket, written from docs/protocol.md only (no product code):
/// HELLO, WELCOME, PING answered with PONG, and every other line handed to the owner with the time
/// it was read. The connection counts as lost when nothing arrives for three ping intervals (the
/// server pings a quiet connection every interval), when the socket fails, or on close.
/// </summary>
internal sealed class RawConnection : IAsyncDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WelcomeTimeout = TimeSpan.FromSeconds(2);
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private readonly Action<string, DateTime> _onLine;
    private Task _reader = Task.CompletedTask;
    private Task _watchdog = Task.CompletedTask;
    private long _lastHeardTicks = DateTime.UtcNow.Ticks;
    private TimeSpan _silence = TimeSpan.FromSeconds(3.5);

    private RawConnection(Socket socket, string serverId, Action<string, DateTime> onLine)
    {
        _stream = new NetworkStream(socket, ownsSocket: true);
        ServerId = serverId;
        _onLine = onLine;
    }

    /// <summary>The server id this connection was opened to (the harness's name for it).</summary>
    public string ServerId { get; }

    /// <summary>Why the connection ended, once it has.</summary>
    public string? EndReason { get; private set; }

    /// <summary>Completes when the connection is lost or closed.</summary>
    public Task Completion => _reader;

    public bool IsOpen => !_closed.IsCancellationRequested;

    /// <summary>
    /// Opens a session: connect (1 s), HELLO, then WELCOME within 2 s. Returns null with the reason
    /// when the server is unreachable, silent (frozen, cut off) or refuses (for example ERR DRAINING).
    /// <paramref name="socket"/> makes the socket (one in another network namespace); by default an
    /// ordinary one.
    /// </summary>
    public static async Task<(RawConnection? Connection, string Why)> OpenAsync(string serverId, string host, int port, string clientName, Action<string, DateTime> onLine, CancellationToken cancel, Func<Socket>? socket = null)
    {
        var tcp = socket?.Invoke() ?? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tcp.NoDelay = true;
        try
        {
            using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancel))
            {
                connectTimeout.CancelAfter(ConnectTimeout);
                await tcp.ConnectAsync(host, port, connectTimeout.Token);
            }

            var c = new RawConnection(tcp, serverId, onLine);
            if (!await c.SendAsync($"HELLO 1 client={clientName}"))
            {
                // Accepted by the kernel of a server killed a moment later: the send failed and
                // closed the connection (reading it now would throw, ending the client's loop).
                tcp.Dispose();
                return (null, c.EndReason ?? "send failed");
            }

            using var welcomeTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            welcomeTimeout.CancelAfter(WelcomeTimeout);
            var reader = new LineReader(c._stream);
            var first = await reader.ReadLineAsync(welcomeTimeout.Token);
            if (first is null || !first.StartsWith("WELCOME ", StringComparison.Ordinal))
            {
                tcp.Dispose();
                return (null, first ?? "closed before WELCOME");
            }

            var ping = first.Split(' ').FirstOrDefault(t => t.StartsWith("ping=", StringComparison.Ordinal)) is { } p && int.TryParse(p[5..], out var ms) ? ms : 1000;
            c._silence = TimeSpan.FromMilliseconds(3 * ping + 500);
            c._reader = Task.Run(() => c.ReadLoopAsync(reader), CancellationToken.None);
            c._watchdog = Task.Run(c.WatchdogAsync, CancellationToken.None);
            return (c, "welcomed");
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            tcp.Dispose();
            return (null, e is OperationCanceledException ? "timed out" : e.Message);
        }
    }

    /// <summary>Sends one line; false if the connection is gone (a send that blocks is cut by the watchdog).</summary>
    public async Task<bool> SendAsync(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        try
        {
            await _writeLock.WaitAsync(_closed.Token);
            try
            {
                await _stream.WriteAsync(bytes, _closed.Token);
                return true;
            }
            finally
            {
                _writeLock.Release();
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            Close("send failed: " + e.Message);
            return false;
        }
    }

    public void Close(string reason)
    {
        lock (_closed)
        {
            if (_closed.IsCancellationRequested)
            {
                return;
            }

            EndReason = reason;
            _closed.Cancel();
        }

        _stream.Dispose();
    }

    private async Task ReadLoopAsync(LineReader reader)
    {
        try
        {
            while (!_closed.IsCancellationRequested)
            {
                var line = await reader.ReadLineAsync(_closed.Token);
                if (line is null)
                {
                    Close("closed by the server");
                    return;
                }

                Interlocked.Exchange(ref _lastHeardTicks, DateTime.UtcNow.Ticks);
                if (line.StartsWith("PING", StringComparison.Ordinal) && (line.Length == 4 || line[4] == ' '))
                {
                    _ = SendAsync("PONG" + line[4..]);
                    continue;
                }

                _onLine(line, DateTime.UtcNow);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
            Close("read failed: " + e.Message);
        }
    }

    private async Task WatchdogAsync()
    {
        try
        {
            while (!_closed.IsCancellationRequested)
            {
                await Task.Delay(200, _closed.Token);
                if (DateTime.UtcNow - new DateTime(Interlocked.Read(ref _lastHeardTicks), DateTimeKind.Utc) > _silence)
                {
                    Close($"silent for {_silence.TotalSeconds} s");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // closed
        }
    }

    public async ValueTask DisposeAsync()
    {
        Close("disposed");
        try
        {
            await Task.WhenAll(_reader, _watchdog);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // closed
        }

        _closed.Dispose();
        _writeLock.Dispose();
    }

    /// <summary>Splits a byte stream into LF-terminated UTF-8 lines (a CR before the LF is dropped).</summary>
    private sealed class LineReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private readonly ArrayBufferWriter<byte> _partial = new();
        private int _start;
        private int _end;

        public async Task<string?> ReadLineAsync(CancellationToken cancel)
        {
            while (true)
            {
                var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (lf >= 0)
                {
                    _partial.Write(_buffer.AsSpan(_start, lf - _start));
                    _start = lf + 1;
                    var bytes = _partial.WrittenSpan;
                    if (bytes.Length > 0 && bytes[^1] == '\r')
                    {
                        bytes = bytes[..^1];
                    }

                    var line = Encoding.UTF8.GetString(bytes);
                    _partial.ResetWrittenCount();
                    if (line.Length == 0)
                    {
                        continue;
                    }

                    return line;
                }

                _partial.Write(_buffer.AsSpan(_start, _end - _start));
                _start = 0;
                _end = await stream.ReadAsync(_buffer, cancel);
                if (_end == 0)
                {
                    return null;
                }
            }
        }
    }
}
