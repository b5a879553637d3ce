using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Membership;
using StreamFarm.Server.Transport;

namespace StreamFarm.TestKit;

/// <summary>How a killed host's connections end, as its peers see them.</summary>
public enum KillMode
{
    /// <summary>The process died and the kernel closed its sockets: bytes already sent arrive, then end of stream.</summary>
    Close,

    /// <summary>Connection reset: bytes already sent arrive, then the peer's read fails (IOException).</summary>
    Reset,

    /// <summary>The host vanished: nothing more arrives and nothing ends; peers find out by their own timeouts.</summary>
    Silent,
}

/// <summary>
/// A network inside one process, for membership (datagrams and stream messages, as
/// <see cref="IMembershipTransport"/>) and for byte streams (route and client connections, as
/// <see cref="IDuplexPipe"/> pairs). Hosts are IP strings (<c>10.0.0.1</c>); addresses are
/// <c>ip:port</c>. Everything the network delivers goes through timers of the shared
/// <see cref="FakeTimeProvider"/>, with seeded delays.
/// <para>Faults: <see cref="Cut"/> (one way) and <see cref="Partition"/> (both ways) hold stream
/// bytes until <see cref="Heal"/> (TCP retransmits) and drop datagrams and stream messages;
/// <see cref="Pause"/> holds everything to and from a host (and connections accepted by it) until
/// <see cref="Resume"/>; <see cref="Kill"/> ends the host's connections (see <see cref="KillMode"/>),
/// makes its ports refuse connections and drops its datagrams; a restarted process listens again
/// with <see cref="Listen"/> and <see cref="JoinMembership"/>.</para>
/// <para>Each byte stream keeps its order. A direction holds at most <see cref="WindowBytes"/> in
/// flight; beyond that the sender's pipe fills and its writes wait, as with a full TCP window.</para>
/// </summary>
public sealed class SimNetwork
{
    private readonly SimTime _time;
    private readonly Random _random;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Host> _hosts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Listener> _listeners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, MemberEndpoint> _members = new(StringComparer.Ordinal);
    private readonly HashSet<(string From, string To)> _cut = [];
    private readonly List<Connection> _connections = [];

    public SimNetwork(SimTime time, int seed)
    {
        _time = time;
        _random = new Random(seed);
    }

    public TimeSpan MinDelay { get; set; } = TimeSpan.FromMilliseconds(1);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Datagrams lost at random (never stream bytes).</summary>
    public double DatagramLoss { get; set; }

    /// <summary>In-flight bytes per direction of a connection before the sender waits.</summary>
    public int WindowBytes { get; set; } = 256 << 10;

    /// <summary>How long a connect to a host that cannot be reached waits before it fails (SYNs lost).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    public long Connects { get; private set; }

    public long Refused { get; private set; }

    public static string HostOf(string address)
    {
        var colon = address.LastIndexOf(':');
        return colon < 0 ? address : address[..colon];
    }

    // ---- hosts and faults ----

    public bool IsPaused(string host)
    {
        lock (_lock)
        {
            return HostFor(host).Paused;
        }
    }

    public bool IsDead(string host)
    {
        lock (_lock)
        {
            return HostFor(host).Dead;
        }
    }

    /// <summary>Traffic from <paramref name="from"/> to <paramref name="to"/> stops (one way).</summary>
    public void Cut(string from, string to)
    {
        lock (_lock)
        {
            _cut.Add((from, to));
        }
    }

    /// <summary>Both ways between every host of <paramref name="a"/> and every host of <paramref name="b"/>.</summary>
    public void Partition(IEnumerable<string> a, IEnumerable<string> b)
    {
        var right = b.ToList();
        lock (_lock)
        {
            foreach (var x in a)
            {
                foreach (var y in right)
                {
                    _cut.Add((x, y));
                    _cut.Add((y, x));
                }
            }
        }
    }

    /// <summary>Ends every partition and cut; held stream bytes flow again.</summary>
    public void Heal()
    {
        lock (_lock)
        {
            _cut.Clear();
            foreach (var c in _connections)
            {
                Arm(c.Forward);
                Arm(c.Backward);
            }
        }
    }

    public void Pause(string host)
    {
        lock (_lock)
        {
            HostFor(host).Paused = true;
        }
    }

    /// <summary>Delivers what was held for and from the host; accepts it deferred run now.</summary>
    public void Resume(string host)
    {
        List<Action> held;
        lock (_lock)
        {
            var h = HostFor(host);
            h.Paused = false;
            held = [.. h.Held];
            h.Held.Clear();
            foreach (var c in _connections.Where(c => c.Touches(host)))
            {
                Arm(c.Forward);
                Arm(c.Backward);
            }
        }

        foreach (var action in held)
        {
            action();
        }
    }

    /// <summary>The host's process dies: its listeners go, its connections end as <paramref name="mode"/> says, its datagrams are dropped.</summary>
    public void Kill(string host, KillMode mode)
    {
        lock (_lock)
        {
            var h = HostFor(host);
            h.Dead = true;
            h.Paused = false;
            h.Held.Clear();
            foreach (var address in _listeners.Keys.Where(a => HostOf(a) == host).ToList())
            {
                _listeners.Remove(address);
            }

            foreach (var c in _connections.Where(c => c.Touches(host)).ToList())
            {
                var (fromDead, toDead) = c.Forward.From == host ? (c.Forward, c.Backward) : (c.Backward, c.Forward);

                // The dead side: its own loops end at once (its process is gone anyway). What the
                // peer writes goes nowhere; unless the host vanished silently, the peer's writes fail.
                Break(toDead, new IOException("connection reset: this process was killed"), dropQueued: true, closeSource: mode != KillMode.Silent);
                toDead.Silenced = mode == KillMode.Silent;
                c.CancelFor(host);

                // What the dead side had sent still arrives; then the end, as the mode says.
                switch (mode)
                {
                    case KillMode.Close:
                        Finish(fromDead, null);
                        break;
                    case KillMode.Reset:
                        Finish(fromDead, new IOException("connection reset by peer"));
                        break;
                    case KillMode.Silent:
                        fromDead.Queue.Clear();
                        fromDead.QueuedBytes = 0;
                        fromDead.Silenced = true; // the peer waits on its own timeouts
                        break;
                }
            }
        }
    }

    /// <summary>A process starts again on the host (its listeners and membership join anew).</summary>
    public void Revive(string host)
    {
        lock (_lock)
        {
            var h = HostFor(host);
            h.Dead = false;
            h.Paused = false;
        }
    }

    /// <summary>Ends everything (end of a simulation): every pipe completes, so no loop waits forever.</summary>
    public void Shutdown()
    {
        lock (_lock)
        {
            foreach (var c in _connections)
            {
                Break(c.Forward, new IOException("network shut down"), dropQueued: true);
                Break(c.Backward, new IOException("network shut down"), dropQueued: true);
                c.Forward.CompleteSourceReader();
                c.Backward.CompleteSourceReader();
                c.CancelFor(c.Forward.From);
                c.CancelFor(c.Backward.From);
            }

            _connections.Clear();
            _listeners.Clear();
            foreach (var h in _hosts.Values)
            {
                h.Dead = true;
                h.Held.Clear();
            }
        }
    }

    // ---- byte streams ----

    /// <summary>
    /// Listens on <paramref name="address"/>: each accepted connection is passed to <paramref name="accept"/>
    /// (server side pipe, remote address, a token cancelled when the connection is cut), on the thread pool.
    /// </summary>
    public void Listen(string address, Func<IDuplexPipe, string, CancellationToken, Task> accept)
    {
        lock (_lock)
        {
            _listeners[address] = new Listener(HostOf(address), accept);
        }
    }

    /// <summary>An <see cref="IConnectionFactory"/> that connects from <paramref name="host"/> (for a server's routes).</summary>
    public IConnectionFactory ConnectorFor(string host) => new Connector(this, host);

    /// <summary>
    /// Opens a connection from <paramref name="fromHost"/> to <paramref name="address"/>. Throws
    /// <see cref="SocketException"/> (refused) when nothing listens or the host is dead, and
    /// (timed out) after <see cref="ConnectTimeout"/> when the way is cut. <paramref name="unboundedOutput"/>:
    /// the connector's writes never wait (test clients that write from the test thread).
    /// </summary>
    public async ValueTask<IDuplexPipe> ConnectAsync(string fromHost, string address, bool unboundedOutput, CancellationToken ct)
    {
        Connection? connection = null;
        Listener? listener = null;
        var unreachable = false;
        lock (_lock)
        {
            Connects++;
            var to = HostOf(address);
            if (HostFor(fromHost).Dead)
            {
                throw new IOException("this process was killed");
            }

            if (!_listeners.TryGetValue(address, out listener) || HostFor(to).Dead)
            {
                Refused++;
                throw new SocketException((int)SocketError.ConnectionRefused);
            }

            if (_cut.Contains((fromHost, to)) || _cut.Contains((to, fromHost)))
            {
                unreachable = true;
            }
            else
            {
                connection = new Connection(this, fromHost, to, unboundedOutput);
                _connections.Add(connection);
                var accepted = connection;
                var server = listener;
                void Accept() => _ = Task.Run(() => server.Accept(accepted.ServerSide, $"{fromHost}:{40000 + (Connects % 20000)}", accepted.TokenFor(to)), CancellationToken.None);
                if (HostFor(to).Paused)
                {
                    HostFor(to).Held.Add(Accept); // the kernel accepts; the process will when it runs again
                }
                else
                {
                    Accept();
                }
            }
        }

        if (unreachable)
        {
            await Task.Delay(ConnectTimeout, _time, ct);
            throw new SocketException((int)SocketError.TimedOut);
        }

        connection!.StartPumps();
        return connection.ClientSide;
    }

    private Host HostFor(string host)
    {
        if (!_hosts.TryGetValue(host, out var h))
        {
            _hosts[host] = h = new Host();
        }

        return h;
    }

    private bool Deliverable(Wire w) =>
        !w.Silenced && !_cut.Contains((w.From, w.To)) && !HostFor(w.From).Paused && !HostFor(w.To).Paused;

    private TimeSpan NextDelay() => MinDelay + ((MaxDelay - MinDelay) * _random.NextDouble());

    /// <summary>From a pump: bytes the sender wrote, to arrive in order after a delay.</summary>
    private void Send(Wire w, byte[]? data, Exception? end, bool finished)
    {
        lock (_lock)
        {
            if (w.Broken || w.Ended || w.Silenced)
            {
                return;
            }

            var due = _time.GetTimestamp() + (long)(NextDelay().TotalSeconds * _time.TimestampFrequency);
            due = Math.Max(due, w.LastDue);
            w.LastDue = due;
            if (data is not null)
            {
                w.Queue.Enqueue(new Chunk(due, data, null, false));
                w.QueuedBytes += data.Length;
            }

            if (finished)
            {
                if (w.ResetOnClose)
                {
                    // An abortive close (RST): what the sender's kernel still held is dropped, so it
                    // never arrives, however long a partition lasts; the peer then sees a reset.
                    w.Queue.Clear();
                    w.QueuedBytes = 0;
                    end ??= new IOException("connection reset by peer");
                }

                w.Queue.Enqueue(new Chunk(due, null, end, true));
                w.Ended = true;
            }

            Arm(w);
        }
    }

    /// <summary>The sender's side ends (after what it sent): end of stream, or a reset when <paramref name="error"/> is set.</summary>
    private void Finish(Wire w, Exception? error)
    {
        if (w.Broken || w.Ended)
        {
            return;
        }

        var due = Math.Max(_time.GetTimestamp() + (long)(NextDelay().TotalSeconds * _time.TimestampFrequency), w.LastDue);
        w.LastDue = due;
        w.Queue.Enqueue(new Chunk(due, null, error, true));
        w.Ended = true;
        Arm(w);

        // The sender's own pipe: nothing more is read from it.
        w.CompleteSourceReader();
    }

    /// <summary>Cuts a direction at once: queued bytes dropped, the reader's side completes (with <paramref name="error"/>).</summary>
    private static void Break(Wire w, Exception error, bool dropQueued, bool closeSource = true)
    {
        if (w.Broken)
        {
            return;
        }

        w.Broken = true;
        if (dropQueued)
        {
            w.Queue.Clear();
            w.QueuedBytes = 0;
        }

        w.CompleteDest(error);
        if (closeSource)
        {
            w.CompleteSourceReader();
        }

        w.ReleaseSpace();
    }

    // Under _lock.
    private void Arm(Wire w)
    {
        if (w.TimerArmed || w.Queue.Count == 0 || w.Broken || !Deliverable(w))
        {
            return;
        }

        w.TimerArmed = true;
        var wait = Math.Max(1, w.Queue.Peek().Due - _time.GetTimestamp());
        var delay = TimeSpan.FromSeconds(wait / (double)_time.TimestampFrequency);
        if (delay < TimeSpan.FromMilliseconds(1))
        {
            delay = TimeSpan.FromMilliseconds(1); // never zero: FakeTimeProvider would fire on this thread, under this lock
        }

        StartTimer(() => Deliver(w), delay);
    }

    private void Deliver(Wire w)
    {
        lock (_lock)
        {
            w.TimerArmed = false;
            if (w.Broken || !Deliverable(w))
            {
                return; // held: re-armed by Heal or Resume
            }

            var now = _time.GetTimestamp();
            var wrote = false;
            while (w.Queue.Count > 0 && w.Queue.Peek().Due <= now)
            {
                var c = w.Queue.Dequeue();
                if (c.Last)
                {
                    if (wrote)
                    {
                        w.Flush();
                        wrote = false;
                    }

                    w.Broken = true;
                    w.CompleteDest(c.Error);
                    w.ReleaseSpace();
                    break;
                }

                w.QueuedBytes -= c.Data!.Length;
                w.Write(c.Data);
                wrote = true;
            }

            if (wrote)
            {
                w.Flush();
            }

            if (w.QueuedBytes < WindowBytes)
            {
                w.ReleaseSpace();
            }

            Arm(w);
        }
    }

    private Task WaitForSpaceAsync(Wire w)
    {
        lock (_lock)
        {
            if (w.QueuedBytes < WindowBytes || w.Broken)
            {
                return Task.CompletedTask;
            }

            w.Space ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return w.Space.Task;
        }
    }

    private async Task PumpAsync(Wire w)
    {
        var reader = w.Source.Reader;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await reader.ReadAsync();
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException)
                {
                    Send(w, null, new IOException("connection reset by peer", e), finished: true); // the sender failed its pipe: a reset
                    return;
                }

                if (w.SourceClosed)
                {
                    await reader.CompleteAsync(); // the sender's writes now complete at once, going nowhere
                    return;
                }

                var buffer = result.Buffer;
                byte[]? data = buffer.IsEmpty ? null : buffer.ToArray();
                reader.AdvanceTo(buffer.End);
                if (data is not null || result.IsCompleted)
                {
                    Send(w, data, null, result.IsCompleted);
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }

                await WaitForSpaceAsync(w);
            }
        }
        catch (InvalidOperationException)
        {
            // the source reader was completed by a break: this direction is over
        }
    }

    // ---- membership ----

    /// <summary>A membership transport at <paramref name="address"/> (a restarted process gets a new one; the old stays dead).</summary>
    public IMembershipTransport JoinMembership(string address)
    {
        lock (_lock)
        {
            var e = new MemberEndpoint(this, address);
            _members[address] = e;
            return e;
        }
    }

    private void SendMember(MemberEndpoint from, string to, byte[] data, bool stream)
    {
        lock (_lock)
        {
            var fromHost = HostOf(from.Address);
            if (HostFor(fromHost).Dead || !ReferenceEquals(_members.GetValueOrDefault(from.Address), from))
            {
                return;
            }

            if (HostFor(fromHost).Paused)
            {
                HostFor(fromHost).Held.Add(() => SendMember(from, to, data, stream));
                return;
            }

            var toHost = HostOf(to);
            if (!_members.TryGetValue(to, out var target) || _cut.Contains((fromHost, toHost)) || (!stream && _random.NextDouble() < DatagramLoss))
            {
                return;
            }

            StartTimer(() =>
            {
                Action? arrive = null;
                lock (_lock)
                {
                    if (HostFor(toHost).Dead || !ReferenceEquals(_members.GetValueOrDefault(to), target))
                    {
                        return;
                    }

                    arrive = () => target.Arrive(from.Address, data, stream);
                    if (HostFor(toHost).Paused)
                    {
                        HostFor(toHost).Held.Add(arrive);
                        return;
                    }
                }

                arrive();
            }, NextDelay());
        }
    }

    /// <summary>
    /// A one-shot timer on the fake clock, created off this thread: FakeTimeProvider runs every
    /// timer that is due on the thread that creates or changes a timer, so creating one under
    /// <c>_lock</c> could run a server's timer callback (which takes the server's locks) under it,
    /// while that server, holding its lock, waits for <c>_lock</c> to send: a deadlock.
    /// </summary>
    private void StartTimer(Action callback, TimeSpan delay)
    {
        // Due at an absolute time: if the clock moved on before the pool ran this, it fires at once.
        var due = _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency);
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            var left = due - _time.GetTimestamp();
            if (left <= 0)
            {
                callback();
                return;
            }

            ITimer? timer = null;
            timer = _time.CreateTimer(_ =>
            {
                timer?.Dispose();
                callback();
            }, null, TimeSpan.FromSeconds(left / (double)_time.TimestampFrequency), Timeout.InfiniteTimeSpan);
        }, null);
    }

    private sealed class Host
    {
        public bool Paused { get; set; }

        public bool Dead { get; set; }

        public List<Action> Held { get; } = [];
    }

    private sealed record Listener(string Host, Func<IDuplexPipe, string, CancellationToken, Task> Accept);

    private sealed record Chunk(long Due, byte[]? Data, Exception? Error, bool Last);

    /// <summary>One side of a connection; <paramref name="Sending"/>: the direction it writes (reset when it asks).</summary>
    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output, Wire Sending) : IDuplexPipe, IResettableConnection
    {
        public void Reset()
        {
            // What the pump has not handed over yet, and what the network still holds, is dropped
            // when the side's pipe completes (Send); the peer then sees a reset.
            Sending.ResetOnClose = true;
        }
    }

    /// <summary>One direction of a connection: the sender writes into <see cref="Source"/>, a pump hands the bytes to the network, which writes them into <see cref="Dest"/>.</summary>
    private sealed class Wire
    {
        public Wire(string from, string to, bool unboundedSource)
        {
            From = from;
            To = to;
            Source = new Pipe(new PipeOptions(pauseWriterThreshold: unboundedSource ? 0 : 64 << 10, resumeWriterThreshold: unboundedSource ? 0 : 32 << 10, useSynchronizationContext: false));
            Dest = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        }

        public string From { get; }

        public string To { get; }

        public Pipe Source { get; }

        public Pipe Dest { get; }

        public Queue<Chunk> Queue { get; } = new();

        public long QueuedBytes { get; set; }

        public long LastDue { get; set; }

        public bool TimerArmed { get; set; }

        public bool Broken { get; set; }

        public bool Ended { get; set; }

        public bool Silenced { get; set; }

        /// <summary>The sender asked for its side to end with a reset (<see cref="IResettableConnection"/>).</summary>
        public volatile bool ResetOnClose;

        public TaskCompletionSource? Space { get; set; }

        public void Write(byte[] data) => Dest.Writer.Write(data);

        public void Flush()
        {
            // The destination pipe never pauses its writer: the flush completes here.
            var flush = Dest.Writer.FlushAsync();
            if (!flush.IsCompleted)
            {
                _ = flush.AsTask();
            }
        }

        public void CompleteDest(Exception? error)
        {
            try
            {
                Dest.Writer.Complete(error);
            }
            catch (InvalidOperationException)
            {
            }
        }

        /// <summary>Set when nothing more is read from the sender; the pump completes the reader itself (never two threads on one reader).</summary>
        public volatile bool SourceClosed;

        public void CompleteSourceReader()
        {
            SourceClosed = true;
            Source.Reader.CancelPendingRead();
        }

        public void ReleaseSpace()
        {
            var s = Space;
            Space = null;
            s?.TrySetResult();
        }
    }

    private sealed class Connection
    {
        private readonly SimNetwork _network;
        private readonly CancellationTokenSource _clientClosed = new();
        private readonly CancellationTokenSource _serverClosed = new();

        public Connection(SimNetwork network, string client, string server, bool unboundedClientOutput)
        {
            _network = network;
            Forward = new Wire(client, server, unboundedClientOutput);
            Backward = new Wire(server, client, unboundedSource: false);
            ClientSide = new DuplexPipe(Backward.Dest.Reader, Forward.Source.Writer, Forward);
            ServerSide = new DuplexPipe(Forward.Dest.Reader, Backward.Source.Writer, Backward);
        }

        public Wire Forward { get; }

        public Wire Backward { get; }

        public IDuplexPipe ClientSide { get; }

        public IDuplexPipe ServerSide { get; }

        public bool Touches(string host) => Forward.From == host || Forward.To == host;

        public CancellationToken TokenFor(string host) => host == Forward.From ? _clientClosed.Token : _serverClosed.Token;

        public void CancelFor(string host)
        {
            var cts = host == Forward.From ? _clientClosed : _serverClosed;
            _ = Task.Run(() =>
            {
                try
                {
                    cts.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }
            });
        }

        public void StartPumps()
        {
            _ = Task.Run(() => _network.PumpAsync(Forward));
            _ = Task.Run(() => _network.PumpAsync(Backward));
        }
    }

    private sealed class Connector(SimNetwork network, string host) : IConnectionFactory
    {
        public ValueTask<IDuplexPipe> ConnectAsync(string address, IPAddress? bindAddress, CancellationToken ct) =>
            network.ConnectAsync(host, address, unboundedOutput: false, ct);
    }

    private sealed class MemberEndpoint(SimNetwork network, string address) : IMembershipTransport
    {
        private Action<string, byte[]>? _onPacket;
        private Func<string, byte[], byte[]?>? _onStream;

        public string Address { get; } = address;

        public string LocalAddress => Address;

        public void Attach(Action<string, byte[]> onPacket, Func<string, byte[], byte[]?> onStream)
        {
            _onPacket = onPacket;
            _onStream = onStream;
        }

        public void SendPacket(string to, byte[] packet) => network.SendMember(this, to, packet, stream: false);

        public void SendStream(string to, byte[] message) => network.SendMember(this, to, message, stream: true);

        public void Arrive(string from, byte[] data, bool stream)
        {
            if (stream)
            {
                // A reply on the same connection: back to the sender, as a stream message of its own.
                if (_onStream?.Invoke(from, data) is { } reply)
                {
                    network.SendMember(this, from, reply, stream: true);
                }
            }
            else
            {
                _onPacket?.Invoke(from, data);
            }
        }
    }
}
