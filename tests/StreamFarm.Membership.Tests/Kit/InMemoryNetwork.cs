using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.Membership.Tests.Kit;

/// <summary>
/// A network inside one test: datagrams and stream messages delivered through timers of a shared
/// <see cref="FakeTimeProvider"/>, with seeded loss, delay, partitions, crashed and paused members.
/// Everything runs on the test thread when time advances, so a run is a function of its seed.
/// </summary>
internal sealed class InMemoryNetwork(FakeTimeProvider time, int seed)
{
    private readonly Dictionary<string, Endpoint> _endpoints = [];
    private readonly HashSet<(string, string)> _cut = [];
    private readonly Random _random = new(seed);

    public double Loss { get; set; }

    public TimeSpan MinDelay { get; set; } = TimeSpan.FromMilliseconds(1);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    public long Packets { get; private set; }

    public long Bytes { get; private set; }

    public IMembershipTransport Join(string address)
    {
        var e = new Endpoint(this, address);
        _endpoints[address] = e;
        return e;
    }

    /// <summary>The member stops: nothing reaches it, nothing leaves it (kill -9, or a host gone).</summary>
    public void Crash(string address) => _endpoints[address].Crashed = true;

    /// <summary>A new process at the same address (the old transport stays dead).</summary>
    public IMembershipTransport Restart(string address) => Join(address);

    /// <summary>The member freezes (SIGSTOP, a long GC): traffic to and from it waits until it resumes.</summary>
    public void Pause(string address) => _endpoints[address].Paused = true;

    public void Resume(string address)
    {
        var e = _endpoints[address];
        e.Paused = false;
        foreach (var action in e.Held.ToList())
        {
            action();
        }

        e.Held.Clear();
    }

    public void Partition(IEnumerable<string> a, IEnumerable<string> b)
    {
        foreach (var x in a)
        {
            foreach (var y in b)
            {
                _cut.Add((x, y));
                _cut.Add((y, x));
            }
        }
    }

    public void Heal() => _cut.Clear();

    private void Deliver(Endpoint from, string to, byte[] data, bool stream)
    {
        if (from.Crashed)
        {
            return;
        }

        if (from.Paused)
        {
            from.Held.Add(() => Deliver(from, to, data, stream));
            return;
        }

        Packets++;
        Bytes += data.Length;
        if (!_endpoints.TryGetValue(to, out var target) || _cut.Contains((from.Address, to)) || (!stream && _random.NextDouble() < Loss))
        {
            return;
        }

        var delay = MinDelay + ((MaxDelay - MinDelay) * _random.NextDouble());
        ITimer? timer = null;
        timer = time.CreateTimer(_ =>
        {
            timer!.Dispose();
            if (target.Crashed || _endpoints[to] != target)
            {
                return;
            }

            if (target.Paused)
            {
                target.Held.Add(() => Arrive(target, from, data, stream));
                return;
            }

            Arrive(target, from, data, stream);
        }, null, delay, Timeout.InfiniteTimeSpan);
    }

    private void Arrive(Endpoint target, Endpoint from, byte[] data, bool stream)
    {
        if (stream)
        {
            // A reply on the same connection: back to the sender, as a stream message of its own.
            if (target.OnStream?.Invoke(from.Address, data) is { } reply)
            {
                Deliver(target, from.Address, reply, stream: true);
            }
        }
        else
        {
            target.OnPacket?.Invoke(from.Address, data);
        }
    }

    private sealed class Endpoint(InMemoryNetwork network, string address) : IMembershipTransport
    {
        public string Address { get; } = address;

        public string LocalAddress => Address;

        public bool Crashed { get; set; }

        public bool Paused { get; set; }

        public List<Action> Held { get; } = [];

        public Action<string, byte[]>? OnPacket { get; private set; }

        public Func<string, byte[], byte[]?>? OnStream { get; private set; }

        public void Attach(Action<string, byte[]> onPacket, Func<string, byte[], byte[]?> onStream)
        {
            OnPacket = onPacket;
            OnStream = onStream;
        }

        public void SendPacket(string to, byte[] packet) => network.Deliver(this, to, packet, stream: false);

        public void SendStream(string to, byte[] message) => network.Deliver(this, to, message, stream: true);
    }
}
