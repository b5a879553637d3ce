using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Membership.Tests.Kit;
using StreamFarm.Protocol;
using Xunit.Abstractions;

namespace StreamFarm.Membership.Tests;

/// <summary>
/// The simulation half of the membership benchmark (docs/benchmarks.md, "Membership", and the cost
/// curve "Servers per farm"): 3 to 1,000 members with preset lan, encrypted, on the seeded
/// <see cref="InMemoryNetwork"/> (1–5 ms delay, no loss) under fake time. It measures, in simulated
/// time and exactly (no polling): time for all to join through one seed, time for a status change to
/// reach all, time for a crash to be known by all, time for one more member to be seen by all, packets
/// and bytes per member per second at rest, and the bytes of FARM table lines an RTTP client of member
/// n0 would get (<see cref="FarmCodec.WriteDelta"/> of each change of n0's table, with address fields
/// as long as a real server's). It prints a Markdown table; it asserts only that every phase completed
/// and that no healthy member was declared dead.
/// Run: <c>STREAMFARM_BENCHMARK=1 dotnet test tests/StreamFarm.Membership.Tests -c Release --filter Category=Benchmark --logger "console;verbosity=detailed"</c>.
/// Without STREAMFARM_BENCHMARK=1 it is skipped, so the ordinary test run stays quick.
/// </summary>
[Trait("Category", "Benchmark")]
public sealed class SimulationBenchmark(ITestOutputHelper output)
{
    private const int Seed = 20260101;
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(1);

    [BenchmarkTheory]
    [InlineData(3)]
    [InlineData(10)]
    [InlineData(30)]
    [InlineData(100)]
    [InlineData(1000)]
    public void Lan(int size)
    {
        var wall = Stopwatch.StartNew();
        var phases = new List<string>();
        void Phase(string what) => phases.Add(string.Create(CultureInfo.InvariantCulture, $"{what} at {wall.Elapsed.TotalSeconds:0} s wall"));
        using var sim = new Sim(size, Seed + size, MembershipOptions.Lan);

        // 1. Everyone started at t=0 with one seed (n0): until every member sees `size` alive.
        var join = sim.RunUntil(size, s => s.Members.Count == size && s.Members.All(m => m.Liveness == "alive"), TimeSpan.FromMinutes(5));
        var joinFarm = sim.Farm;
        var table = sim.TableBytes();
        Phase("joined");

        // 4. Traffic after the join in 10 s windows: the join's broadcasts drain, then the farm is at
        // rest. The last window (50-60 s after all joined) is the figure at rest.
        var windows = new List<Traffic>();
        var farmWindows = new List<double>();
        for (var w = 0; w < 6; w++)
        {
            var before = sim.Sent();
            var farmBefore = sim.Farm;
            sim.Run(TimeSpan.FromSeconds(10));
            windows.Add((sim.Sent() - before) / (size * 10.0));
            farmWindows.Add((sim.Farm.Bytes - farmBefore.Bytes) / 10.0);
        }

        var rest = windows[^1];
        var farmRest = farmWindows[^1];
        var settled = windows.Skip(1).Aggregate((a, b) => a + b) / (windows.Count - 1); // 10-60 s: more than three full-state periods
        Phase("traffic measured");

        // 2. A status change of one member (as the server's publisher makes it) until all see it.
        var changed = SimulatedFarm.Name(1);
        sim.Nodes[changed].UpdateSelf(m => m with { Users = 1 });
        var farm0 = sim.Farm;
        var status = sim.RunUntil(size, s => s.Members.FirstOrDefault(m => m.Id == changed)?.Users == 1, TimeSpan.FromSeconds(30));
        sim.Run(TimeSpan.FromSeconds(1));
        var farmStatus = sim.Farm - farm0;
        Phase("status seen");

        // 3. A crash (kill -9: silent from then on) until every other member shows it dead.
        var victim = SimulatedFarm.Name(size - 1);
        sim.Crash(victim);
        farm0 = sim.Farm;
        var crash = sim.RunUntil(size - 1, s => s.Members.FirstOrDefault(m => m.Id == victim)?.Liveness == "dead", TimeSpan.FromMinutes(2));
        sim.Run(TimeSpan.FromSeconds(1));
        var farmCrash = sim.Farm - farm0;
        Phase("crash known");

        // 5. One more member joins the running farm (through the seed) until every member sees it alive.
        var newcomer = SimulatedFarm.Name(size);
        farm0 = sim.Farm;
        sim.Add(size, start: true);
        var joinOne = sim.RunUntil(size, s => s.Members.FirstOrDefault(m => m.Id == newcomer)?.Liveness == "alive", TimeSpan.FromMinutes(2));
        sim.Run(TimeSpan.FromSeconds(1));
        var farmJoinOne = sim.Farm - farm0;
        Phase("newcomer seen");

        // 6. Churn: every member's users count changes 2, then 10 times a second (each member at its
        // own phase) for 10 s; traffic per member and FARM lines to n0's client over the last 5 s.
        var churn = new List<(double Rate, Traffic Sent, double FarmBytes, double FarmLines)>();
        foreach (var rate in new[] { 2.0, 10.0 })
        {
            sim.Churn(TimeSpan.FromSeconds(5), rate);
            var before = sim.Sent();
            var farmBefore = sim.Farm;
            sim.Churn(TimeSpan.FromSeconds(5), rate);
            var farm = sim.Farm - farmBefore;
            churn.Add((rate, (sim.Sent() - before) / (size * 5.0), farm.Bytes / 5.0, farm.Lines / 5.0));
            sim.Run(TimeSpan.FromSeconds(10)); // the last changes spread
        }

        Phase("churned");

        var falseDeaths = sim.DeadVerdicts.Where(v => v.Member != victim).ToList();
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine(string.Join('\n',
            "| members | join, all see all alive | status change to all | crash known by all | one more member seen by all | at rest: datagrams/member/s | stream msgs/member/s | bytes/member/s | false dead verdicts |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            string.Create(inv, $"| {size:N0} | {join.TotalMilliseconds:0} ms | {status.TotalMilliseconds:0} ms | {crash.TotalMilliseconds:0} ms | {joinOne.TotalMilliseconds:0} ms | {rest.Datagrams:0.00} | {rest.Streams:0.000} | {rest.Bytes:0} | {falseDeaths.Count} |"),
            "",
            "FARM lines to one client of n0 (bytes, lines): full table | the join of all | at rest, B/s | status change (+1 s) | crash (+1 s) | one more member (+1 s):",
            string.Create(inv, $"| {size:N0} | {table} | {joinFarm.Bytes:0} ({joinFarm.Lines}) | {farmRest:0.0} | {farmStatus.Bytes:0} ({farmStatus.Lines}) | {farmCrash.Bytes:0} ({farmCrash.Lines}) | {farmJoinOne.Bytes:0} ({farmJoinOne.Lines}) |"),
            string.Create(inv, $"at rest over 10-60 s after all joined, per member and second: {settled.Datagrams:0.00} datagrams, {settled.Streams:0.000} stream messages, {settled.Bytes:0} B ({settled.DatagramBytes:0} B in datagrams)"),
            string.Join('\n', churn.Select(c => string.Create(inv, $"churn {c.Rate:0} users changes per member and second: {c.Sent.Datagrams:0.00} datagrams, {c.Sent.Streams:0.000} stream messages, {c.Sent.Bytes:0} B per member and second ({c.Sent.DatagramBytes:0} B in datagrams); FARM lines to n0's client {c.FarmBytes:0} B/s, {c.FarmLines:0.0} lines/s"))),
            string.Create(inv, $"FARM bytes/s to that client in the 10 s windows after all joined: {string.Join(" / ", farmWindows.Select(b => b.ToString("0.0", inv)))}"),
            "",
            "traffic per member per second in the 10 s windows after all joined (datagrams / stream messages / bytes, of which in datagrams):",
            string.Join('\n', windows.Select((t, i) => string.Create(inv, $"  {i * 10,2}-{(i + 1) * 10} s: {t.Datagrams,6:0.00} / {t.Streams:0.000} / {t.Bytes,7:0} B ({t.DatagramBytes:0} B)"))),
            string.Create(inv, $"seed {Seed + size}; {string.Join(", ", phases)}")));
        Assert.True(falseDeaths.Count == 0, $"healthy members declared dead: {string.Join(", ", falseDeaths.Take(10).Select(v => $"{v.Observer} said {v.Member} at {v.At.TotalSeconds:0.000}s"))}");
    }

    /// <summary>Traffic sent (datagrams, stream messages, bytes of both, bytes of datagrams), totals or rates.</summary>
    private readonly record struct Traffic(double Datagrams, double Streams, double Bytes, double DatagramBytes)
    {
        public static Traffic operator -(Traffic a, Traffic b) => new(a.Datagrams - b.Datagrams, a.Streams - b.Streams, a.Bytes - b.Bytes, a.DatagramBytes - b.DatagramBytes);

        public static Traffic operator +(Traffic a, Traffic b) => new(a.Datagrams + b.Datagrams, a.Streams + b.Streams, a.Bytes + b.Bytes, a.DatagramBytes + b.DatagramBytes);

        public static Traffic operator /(Traffic a, double d) => new(a.Datagrams / d, a.Streams / d, a.Bytes / d, a.DatagramBytes / d);
    }

    /// <summary>Bytes and lines of FARM table lines sent to one client, totals.</summary>
    private readonly record struct FarmLines(double Bytes, long Lines)
    {
        public static FarmLines operator -(FarmLines a, FarmLines b) => new(a.Bytes - b.Bytes, a.Lines - b.Lines);
    }

    /// <summary>Counts what a member hands to its transport, datagrams and stream messages apart.</summary>
    private sealed class CountingTransport(IMembershipTransport inner) : IMembershipTransport
    {
        public long Datagrams { get; private set; }

        public long DatagramBytes { get; private set; }

        public long Streams { get; private set; }

        public long StreamBytes { get; private set; }

        public string LocalAddress => inner.LocalAddress;

        public void Attach(Action<string, byte[]> onPacket, Func<string, byte[], byte[]?> onStream) => inner.Attach(onPacket, (from, data) =>
        {
            var reply = onStream(from, data);
            if (reply is not null)
            {
                Streams++; // a reply on the exchange's connection: sent all the same
                StreamBytes += reply.Length;
            }

            return reply;
        });

        public void SendPacket(string to, byte[] packet)
        {
            Datagrams++;
            DatagramBytes += packet.Length;
            inner.SendPacket(to, packet);
        }

        public void SendStream(string to, byte[] message)
        {
            Streams++;
            StreamBytes += message.Length;
            inner.SendStream(to, message);
        }
    }

    /// <summary>
    /// Members on an <see cref="InMemoryNetwork"/> driven in 1 ms steps. Unlike <see cref="SimulatedFarm"/>
    /// (whose verdict log compares whole tables on every change, quadratic at 1,000 members), it keeps
    /// per-member flags updated from each change, so a condition is known the millisecond it holds.
    /// </summary>
    private sealed class Sim : IDisposable
    {
        private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        private readonly Dictionary<string, CountingTransport> _transports = [];
        private readonly Random _seeds;
        private readonly Keyring _keyring;
        private readonly MembershipOptions _options;
        private readonly System.Buffers.ArrayBufferWriter<byte> _delta = new(1024);
        private Func<FarmSnapshot, bool>? _condition;
        private HashSet<string> _satisfied = [];

        public Sim(int size, int seed, MembershipOptions options)
        {
            _seeds = new Random(seed);
            _options = options;
            Network = new InMemoryNetwork(Time, _seeds.Next());
            _keyring = new Keyring([Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + seed)).ToArray()]);
            for (var i = 0; i < size; i++)
            {
                Add(i, start: false);
            }

            foreach (var node in Nodes.Values)
            {
                node.Start();
            }
        }

        /// <summary>FARM lines (deltas) an RTTP client of member n0 would have been sent so far.</summary>
        public FarmLines Farm { get; private set; }

        public FakeTimeProvider Time { get; } = new(Epoch);

        public InMemoryNetwork Network { get; }

        public Dictionary<string, MembershipNode> Nodes { get; } = [];

        public List<(string Observer, string Member, TimeSpan At)> DeadVerdicts { get; } = [];

        private TimeSpan Elapsed => Time.GetUtcNow() - Epoch;

        public void Run(TimeSpan duration)
        {
            for (var t = TimeSpan.Zero; t < duration; t += Step)
            {
                Time.Advance(Step);
            }
        }

        /// <summary>Advances time until <paramref name="count"/> members' tables satisfy the condition; returns the simulated time it took.</summary>
        public TimeSpan RunUntil(int count, Func<FarmSnapshot, bool> condition, TimeSpan limit)
        {
            var start = Elapsed;
            _condition = condition;
            _satisfied = [.. Nodes.Where(n => condition(n.Value.Snapshot)).Select(n => n.Key)];
            while (_satisfied.Count < count)
            {
                if (Elapsed - start > limit)
                {
                    throw new TimeoutException($"only {_satisfied.Count} of {count} members satisfied the condition after {limit.TotalSeconds} s simulated");
                }

                Time.Advance(Step);
            }

            _condition = null;
            return Elapsed - start;
        }

        /// <summary>Creates member <c>n{i}</c> (seed n0), with address fields as long as a real server's, and starts it if asked.</summary>
        public void Add(int i, bool start)
        {
            var name = SimulatedFarm.Name(i);
            var address = SimulatedFarm.Address(name);
            var host = address[..address.LastIndexOf(':')];
            var self = new MemberInfo
            {
                Id = name, Gossip = address, Incarnation = 1, State = "active", Capacity = 10000,
                Tcp = $"{host}:40021", Ws = $"ws://{host}:41234/rttp", Http = $"http://{host}:41234", Route = $"{host}:40022",
            };
            var transport = new CountingTransport(Network.Join(address));
            _transports[name] = transport;
            var node = new MembershipNode(self, _options, transport, Time, new Random(_seeds.Next()), _keyring, [SimulatedFarm.Address(SimulatedFarm.Name(0))]);
            node.Changed += (before, after) => OnChanged(name, before, after);
            Nodes[name] = node;
            if (start)
            {
                node.Start();
            }
        }

        /// <summary>Bytes of the whole table (FARM and its SERVER lines) n0 would send a client now.</summary>
        public int TableBytes()
        {
            _delta.ResetWrittenCount();
            FarmCodec.WriteTable(_delta, Nodes[SimulatedFarm.Name(0)].Snapshot);
            return _delta.WrittenCount;
        }

        /// <summary>Runs for <paramref name="duration"/> with every member changing its users count (1, 2, 1, ...) <paramref name="rate"/> times a second, each at its own phase.</summary>
        public void Churn(TimeSpan duration, double rate)
        {
            var period = (int)Math.Round(1000 / rate);
            var nodes = Nodes.Values.ToList();
            var steps = (int)duration.TotalMilliseconds;
            for (var t = 0; t < steps; t++)
            {
                for (var i = 0; i < nodes.Count; i++)
                {
                    if ((t + (i * period / nodes.Count)) % period == 0)
                    {
                        nodes[i].UpdateSelf(m => m with { Users = m.Users == 1 ? 2 : 1 });
                    }
                }

                Time.Advance(Step);
            }
        }

        public void Crash(string name)
        {
            Network.Crash(SimulatedFarm.Address(name));
            Nodes[name].Dispose();
            Nodes.Remove(name);
        }

        /// <summary>What the live members have sent so far.</summary>
        public Traffic Sent()
        {
            var live = Nodes.Keys.Select(k => _transports[k]).ToList();
            return new(live.Sum(t => t.Datagrams), live.Sum(t => t.Streams), live.Sum(t => t.DatagramBytes + t.StreamBytes), live.Sum(t => t.DatagramBytes));
        }

        public void Dispose()
        {
            foreach (var n in Nodes.Values)
            {
                n.Dispose();
            }
        }

        private void OnChanged(string observer, FarmSnapshot before, FarmSnapshot after)
        {
            if (observer == "n0")
            {
                _delta.ResetWrittenCount();
                FarmCodec.WriteDelta(_delta, before, after);
                Farm = new(Farm.Bytes + _delta.WrittenCount, Farm.Lines + _delta.WrittenSpan.Count((byte)'\n'));
            }

            if (_condition is not null && Nodes.ContainsKey(observer))
            {
                if (_condition(after))
                {
                    _satisfied.Add(observer);
                }
                else
                {
                    _satisfied.Remove(observer);
                }
            }

            // Dead verdicts: members dead now that were not dead before (tables are sorted by id).
            var i = 0;
            foreach (var m in after.Members)
            {
                if (m.Liveness != "dead")
                {
                    continue;
                }

                while (i < before.Members.Count && string.CompareOrdinal(before.Members[i].Id, m.Id) < 0)
                {
                    i++;
                }

                var was = i < before.Members.Count && before.Members[i].Id == m.Id ? before.Members[i].Liveness : null;
                if (was != "dead")
                {
                    DeadVerdicts.Add((observer, m.Id, Elapsed));
                }
            }
        }
    }
}

/// <summary>A theory that runs only when STREAMFARM_BENCHMARK=1 (benchmarks are not part of the ordinary test run).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class BenchmarkTheoryAttribute : TheoryAttribute
{
    public BenchmarkTheoryAttribute()
    {
        if (Environment.GetEnvironmentVariable("STREAMFARM_BENCHMARK") != "1")
        {
            Skip = "benchmark: set STREAMFARM_BENCHMARK=1 to run";
        }
    }
}
