using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace StreamFarm.TestKit;

/// <summary>What a client saw or did, in order.</summary>
/// <param name="AtMs">Simulated time (ms since the farm started).</param>
/// <param name="Session">The client's connection number (1, 2, ...): a reconnection starts a new one.</param>
/// <param name="Server">The server of that connection.</param>
/// <param name="Kind">What happened.</param>
/// <param name="Line">The line received or sent (without LF), or a reason.</param>
public sealed record ClientEvent(long AtMs, int Session, string Server, ClientEventKind Kind, string Line)
{
    public override string ToString() => $"{AtMs / 1000.0:0.000}s #{Session}@{Server} {Kind} {Line}";
}

public enum ClientEventKind
{
    Connected,
    Received,
    Sent,
    Disconnected,
}

/// <summary>
/// A plain RTTP line client on the <see cref="SimNetwork"/>: HELLO, SUB to its subjects, PONG to
/// PING, and PUB on demand (optionally with <c>@ack=id</c>). It records every line it receives.
/// When its connection ends (end of stream, reset, three ping intervals of silence, MOVE, BYE, a
/// fatal ERR) it connects again, after a short random wait, to a server chosen at random (another
/// one first), and subscribes again. Its choices come from its own seeded <see cref="Random"/>.
/// </summary>
public sealed class SimClient
{
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(3);
    private readonly SimFarm _farm;
    private readonly Random _random;
    private readonly Lock _lock = new();
    private readonly List<ClientEvent> _events = [];
    private readonly CancellationTokenSource _stop = new();
    private PipeWriter? _output;
    private bool _welcomed;
    private string? _server;
    private int _session;
    private long _connectedAt;
    private long _acks;
    private Task? _run;

    public SimClient(SimFarm farm, string name, string host, int seed, IReadOnlyList<string> subjects, string firstServer, bool reconnect = true, bool stamps = false)
    {
        Stamps = stamps;
        _farm = farm;
        Name = name;
        Host = host;
        _random = new Random(seed);
        Subjects = subjects;
        FirstServer = firstServer;
        Reconnect = reconnect;
        Clock = new SimClock(farm.Time, name);
    }

    public string Name { get; }

    public string Host { get; }

    public IReadOnlyList<string> Subjects { get; }

    public string FirstServer { get; }

    public bool Reconnect { get; }

    /// <summary>Add <c>@ack=id</c> to publications.</summary>
    public bool RequestAcks { get; set; }

    public SimClock Clock { get; }

    /// <summary>Welcomed by a server now (publications can be sent).</summary>
    public bool IsWelcomed
    {
        get
        {
            lock (_lock)
            {
                return _welcomed;
            }
        }
    }

    public string? Server
    {
        get
        {
            lock (_lock)
            {
                return _server;
            }
        }
    }

    /// <summary>The server of the current (or last) connection, and when it was opened (simulated ms).</summary>
    /// <summary>Asks for the writes' stamps on record lines (<c>HELLO ... stamps=1</c>), as a client that refuses to go back does.</summary>
    public bool Stamps { get; }

    public (string? Server, long ConnectedAtMs) Connection
    {
        get
        {
            lock (_lock)
            {
                return (_server, _connectedAt);
            }
        }
    }

    public int Sessions
    {
        get
        {
            lock (_lock)
            {
                return _session;
            }
        }
    }

    /// <summary>A copy of everything so far.</summary>
    public IReadOnlyList<ClientEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    public void Start() => _run = Task.Run(RunAsync);

    public void Stop()
    {
        _stop.Cancel();
        Clock.Stop();
        lock (_lock)
        {
            try
            {
                _output?.Complete();
            }
            catch (InvalidOperationException)
            {
            }

            _output = null;
            _welcomed = false;
        }
    }

    /// <summary>Sends <c>PUB subject field=value</c> if welcomed; false (and nothing sent) otherwise.</summary>
    public bool Publish(string subject, string field, long value)
    {
        lock (_lock)
        {
            if (!_welcomed || _output is null)
            {
                return false;
            }

            var ack = RequestAcks ? $" @ack={++_acks}" : "";
            return SendLocked($"PUB {subject}{ack} {field}={value}");
        }
    }

    /// <summary>Sends any line on the current connection (false if there is none).</summary>
    public bool Send(string line)
    {
        lock (_lock)
        {
            return _output is not null && SendLocked(line);
        }
    }

    private bool SendLocked(string line)
    {
        try
        {
            var output = _output!;
            output.Write(Encoding.UTF8.GetBytes(line + "\n"));
            var flush = output.FlushAsync(); // the kit's client pipes never pause the writer: completes here
            if (!flush.IsCompleted)
            {
                _ = flush.AsTask();
            }

            _events.Add(new ClientEvent(_farm.NowMs, _session, _server ?? "", ClientEventKind.Sent, line));
            return true;
        }
        catch (InvalidOperationException)
        {
            return false; // the connection is over
        }
    }

    private void Record(ClientEventKind kind, string line)
    {
        lock (_lock)
        {
            _events.Add(new ClientEvent(_farm.NowMs, _session, _server ?? "", kind, line));
        }
    }

    private async Task RunAsync()
    {
        string? last = null;
        var first = true;
        while (!_stop.IsCancellationRequested)
        {
            string target;
            lock (_lock)
            {
                if (first)
                {
                    target = FirstServer;
                }
                else
                {
                    var others = _farm.ServerIds.Where(s => s != last).ToList();
                    target = others.Count == 0 ? _farm.ServerIds[0] : others[_random.Next(others.Count)];
                }
            }

            first = false;
            var (reason, wasWelcomed) = await SessionAsync(target);
            last = target;
            Record(ClientEventKind.Disconnected, reason);
            if (!Reconnect || _stop.IsCancellationRequested)
            {
                return;
            }

            int waitMs;
            lock (_lock)
            {
                waitMs = wasWelcomed ? 50 + _random.Next(250) : 100 + _random.Next(400);
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(waitMs), Clock, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<(string Reason, bool Welcomed)> SessionAsync(string serverId)
    {
        IDuplexPipe pipe;
        try
        {
            pipe = await _farm.Network.ConnectAsync(Host, SimFarm.ClientAddressOf(serverId), unboundedOutput: true, _stop.Token);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            lock (_lock)
            {
                _server = serverId;
            }

            return ($"connect to {serverId} failed: {e.Message}", false);
        }

        using var connection = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        long lastReceived;
        lock (_lock)
        {
            _session++;
            _server = serverId;
            _connectedAt = _farm.NowMs;
            _welcomed = false;
            _output = pipe.Output;
            _events.Add(new ClientEvent(_farm.NowMs, _session, serverId, ClientEventKind.Connected, ""));
            SendLocked($"HELLO 1 client={Name}{(Stamps ? " stamps=1" : "")}");
            for (var i = 0; i < Subjects.Count; i += 50)
            {
                SendLocked("SUB " + string.Join(' ', Subjects.Skip(i).Take(50)));
            }

            lastReceived = Clock.GetTimestamp();
        }

        var watchdog = WatchAsync();
        async Task WatchAsync()
        {
            try
            {
                while (!connection.IsCancellationRequested)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), Clock, connection.Token);
                    if (Clock.GetElapsedTime(Volatile.Read(ref lastReceived)) > Silence)
                    {
                        Record(ClientEventKind.Disconnected, "silent for 3 s: giving up on the server");
                        await connection.CancelAsync();
                        pipe.Input.CancelPendingRead();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        var welcomed = false;
        var reason = "end of stream";
        try
        {
            while (true)
            {
                var result = await pipe.Input.ReadAsync(connection.Token);
                if (result.IsCanceled)
                {
                    reason = "silent server";
                    break;
                }

                Volatile.Write(ref lastReceived, Clock.GetTimestamp());
                var buffer = result.Buffer;
                string? stop = null;
                while (stop is null && TryReadLine(ref buffer, out var line))
                {
                    stop = OnLine(line, ref welcomed);
                }

                pipe.Input.AdvanceTo(buffer.Start, buffer.End);
                if (stop is not null)
                {
                    reason = stop;
                    break;
                }

                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            reason = _stop.IsCancellationRequested ? "stopped" : "silent server";
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            reason = "reset: " + e.Message;
        }
        finally
        {
            await connection.CancelAsync();
            await watchdog;
            lock (_lock)
            {
                _welcomed = false;
                _output = null;
            }

            try
            {
                await pipe.Output.CompleteAsync();
                await pipe.Input.CompleteAsync();
            }
            catch (InvalidOperationException)
            {
            }
        }

        return (reason, welcomed);
    }

    /// <summary>Handles one line; returns why the session ends, or null to go on.</summary>
    private string? OnLine(string line, ref bool welcomed)
    {
        Record(ClientEventKind.Received, line);
        var space = line.IndexOf(' ');
        var verb = space < 0 ? line : line[..space];
        switch (verb)
        {
            case "WELCOME":
                welcomed = true;
                lock (_lock)
                {
                    _welcomed = true;
                }

                return null;
            case "PING":
                Send(space < 0 ? "PONG" : "PONG" + line[space..]);
                return null;
            case "MOVE":
            case "BYE":
                return line;
            case "ERR":
                var code = line.Split(' ')[1];
                return code is "LINE_TOO_LONG" or "HELLO_REQUIRED" or "HELLO_TIMEOUT" or "VERSION" or "AUTH_FAILED" or "FULL" or "SLOW_CONSUMER" or "IDLE" or "BINARY" or "INTERNAL" or "DRAINING" or "WRONG_GROUP" ? line : null;
            default:
                return null;
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, out string line)
    {
        var position = buffer.PositionOf((byte)'\n');
        if (position is null)
        {
            line = "";
            return false;
        }

        var bytes = buffer.Slice(0, position.Value);
        line = Encoding.UTF8.GetString(bytes).TrimEnd('\r');
        buffer = buffer.Slice(buffer.GetPosition(1, position.Value));
        return true;
    }
}
