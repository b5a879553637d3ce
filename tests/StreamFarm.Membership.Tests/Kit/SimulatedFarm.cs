using Microsoft.Extensions.Time.Testing;
using StreamFarm.Protocol;

namespace StreamFarm.Membership.Tests.Kit;

/// <summary>N members on an <see cref="InMemoryNetwork"/>, driven by fake time from one seed.</summary>
internal sealed class SimulatedFarm : IDisposable
{
    private readonly Random _seeds;
    private readonly Keyring? _keyring;

    public SimulatedFarm(int size, int seed, MembershipOptions? options = null, bool encrypted = false)
    {
        Seed = seed;
        _seeds = new Random(seed);
        Options = options ?? MembershipOptions.Lan;
        Network = new InMemoryNetwork(Time, _seeds.Next());
        _keyring = encrypted ? new Keyring([Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + seed)).ToArray()]) : null;
        for (var i = 0; i < size; i++)
        {
            Start(Name(i));
        }
    }

    public int Seed { get; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public InMemoryNetwork Network { get; }

    public MembershipOptions Options { get; }

    public Dictionary<string, MembershipNode> Nodes { get; } = [];

    /// <summary>Every (observer, member, liveness) verdict seen, for accuracy checks.</summary>
    public List<(string Observer, string Member, string Liveness, TimeSpan At)> Verdicts { get; } = [];

    public static string Name(int i) => $"n{i}";

    public static string Address(string name) => $"10.0.{int.Parse(name[1..], System.Globalization.CultureInfo.InvariantCulture) / 250}.{(int.Parse(name[1..], System.Globalization.CultureInfo.InvariantCulture) % 250) + 1}:7401";

    public TimeSpan Elapsed => Time.GetUtcNow() - new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public MembershipNode Start(string name, ulong incarnation = 1)
    {
        var transport = Network.Join(Address(name));
        var self = new MemberInfo { Id = name, Gossip = Address(name), Incarnation = incarnation, State = "active", Capacity = 100 };
        var node = new MembershipNode(self, Options, transport, Time, new Random(_seeds.Next()), _keyring, [Address(Name(0))]);
        node.Changed += (before, after) =>
        {
            foreach (var m in after.Members)
            {
                var old = before.Members.FirstOrDefault(x => x.Id == m.Id);
                if (old is null || old.Liveness != m.Liveness)
                {
                    Verdicts.Add((name, m.Id, m.Liveness, Elapsed));
                }
            }
        };
        Nodes[name] = node;
        node.Start();
        return node;
    }

    public void Crash(string name)
    {
        Network.Crash(Address(name));
        Nodes[name].Dispose();
        Nodes.Remove(name);
    }

    /// <summary>Advances fake time in small steps (timers then fire in order).</summary>
    public void Run(TimeSpan duration)
    {
        var step = TimeSpan.FromMilliseconds(5);
        for (var t = TimeSpan.Zero; t < duration; t += step)
        {
            Time.Advance(step);
        }
    }

    /// <summary>Runs until <paramref name="done"/> holds (checked every 10 ms of fake time) or the limit; returns the time it took.</summary>
    public TimeSpan RunUntil(Func<bool> done, TimeSpan limit)
    {
        var start = Elapsed;
        while (!done())
        {
            if (Elapsed - start > limit)
            {
                throw new TimeoutException($"condition not reached within {limit.TotalSeconds} s of simulated time (seed {Seed})");
            }

            Run(TimeSpan.FromMilliseconds(10));
        }

        return Elapsed - start;
    }

    public bool AllSee(Func<FarmMember?, bool> predicate, string member) =>
        Nodes.Values.All(n => predicate(n.Snapshot.Members.FirstOrDefault(m => m.Id == member)));

    public bool Converged(int size) =>
        Nodes.Values.All(n => n.Snapshot.Members.Count == size && n.Snapshot.Members.All(m => m.Liveness == "alive"));

    public void Dispose()
    {
        foreach (var n in Nodes.Values)
        {
            n.Dispose();
        }
    }
}
