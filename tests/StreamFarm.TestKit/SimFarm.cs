using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Server;

namespace StreamFarm.TestKit;

/// <summary>Settings of a <see cref="SimFarm"/>.</summary>
public sealed record SimFarmOptions
{
    public int Servers { get; init; } = 3;

    public int Seed { get; init; }

    /// <summary>Membership preset: <c>local</c> (fast timers) or <c>lan</c>.</summary>
    public string Preset { get; init; } = "local";

    /// <summary>Fake time advanced per step; the thread pool settles after each step.</summary>
    public TimeSpan Step { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Longest real time one settle waits for the thread pool to go quiet.</summary>
    public TimeSpan SettleLimit { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Steps in a row whose settle may run out of patience before the simulation gives up (a hot loop or a starved pool).</summary>
    public int UnsettledStepsLimit { get; init; } = 150;

    /// <summary>Keep the servers' logs (<see cref="SimFarm.Log"/>): for replaying one seed.</summary>
    public bool Logging { get; init; }

    /// <summary>Changes each server's options before it starts.</summary>
    public Action<ServerOptions>? Configure { get; init; }
}

/// <summary>One server process of a <see cref="SimFarm"/> (a restart makes a new one with the same id and address).</summary>
public sealed class SimServer
{
    internal SimServer(string id, string host, int generation, SimClock clock, RttpServer server, long startedAtMs)
    {
        StartedAtMs = startedAtMs;
        Id = id;
        Host = host;
        Generation = generation;
        Clock = clock;
        Server = server;
    }

    public string Id { get; }

    public string Host { get; }

    /// <summary>1 for the first process, 2 after the first restart, ...</summary>
    public int Generation { get; }

    public SimClock Clock { get; }

    public RttpServer Server { get; }

    /// <summary>When this process started (simulated ms since the farm began).</summary>
    public long StartedAtMs { get; }

    public bool Dead { get; internal set; }

    public bool Paused { get; internal set; }

    public bool Live => !Dead && !Paused;
}

/// <summary>
/// A whole farm in one process: N <see cref="RttpServer"/>s, each assembled from a
/// <see cref="ServerContext"/> (its own <see cref="SimClock"/> over a shared
/// <see cref="FakeTimeProvider"/>, a seeded random, membership and routes over one
/// <see cref="SimNetwork"/>), and <see cref="SimClient"/>s. Time moves only when the test
/// <see cref="Run">runs</see> it: in steps, each followed by a settle of the thread pool
/// (<see cref="Quiescence"/>).
/// <para><b>Determinism.</b> The farm's timers, the network's delays and losses, the servers' and
/// clients' random choices, and whatever the test derives from <see cref="Seed"/> (a fault schedule,
/// the clients' actions) are functions of the seed. The server code's async continuations run on
/// the thread pool, so the exact interleaving of threads is not: one seed replays the same schedule
/// of faults and actions, not necessarily the same execution. A failure that does not reproduce at
/// once usually does within a few replays of its seed.</para>
/// </summary>
public sealed class SimFarm : IDisposable
{
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly string Key = Convert.ToBase64String([.. Enumerable.Range(11, 32).Select(i => (byte)i)]);
    private readonly Random _seeds;
    private readonly Dictionary<string, SimServer> _servers = new(StringComparer.Ordinal);
    private readonly List<SimClient> _clients = [];
    private bool _disposed;

    public SimFarm(SimFarmOptions options)
    {
        Quiescence = Quiescence.Measure(); // before the farm makes the pool busy
        _watchdog = new Timer(_ => Watch(), null, WatchEvery, WatchEvery);
        Options = options;
        _seeds = new Random(options.Seed);
        Network = new SimNetwork(Time, _seeds.Next());
        Log = options.Logging ? new SimLog(() => NowMs, Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(Environment.GetEnvironmentVariable("SIM_LOG_LEVEL"), out var level) ? level : Microsoft.Extensions.Logging.LogLevel.Information) : null; // SIM_LOG_LEVEL=Debug for a replay (more logging shifts the interleaving within a step: a seed may then pass)
        ServerIds = [.. Enumerable.Range(1, options.Servers).Select(i => $"s{i}")];
        foreach (var id in ServerIds)
        {
            StartServer(id);
        }
    }

    public SimFarmOptions Options { get; }

    public int Seed => Options.Seed;

    public SimTime Time { get; } = new(Epoch);

    /// <summary>Settles the pool after each step; measured on the thread that builds the farm, which must be the one that runs it.</summary>
    public Quiescence Quiescence { get; }

    public SimNetwork Network { get; }

    public SimLog? Log { get; }

    public IReadOnlyList<string> ServerIds { get; }

    public IReadOnlyCollection<SimServer> Servers => _servers.Values;

    public IReadOnlyList<SimClient> Clients => _clients;

    public long NowMs => (long)(Time.GetUtcNow() - Epoch).TotalMilliseconds;

    /// <summary>Steps taken whose settle ran out of patience (the pool stayed busy): a sign of a hot loop.</summary>
    public int UnsettledSteps { get; private set; }

    public SimServer this[string id] => _servers[id];

    public static string HostOf(string serverId) => $"10.0.0.{int.Parse(serverId.AsSpan(1), CultureInfo.InvariantCulture)}";

    public static string ClientAddressOf(string serverId) => $"{HostOf(serverId)}:7400";

    public static string GossipAddressOf(string serverId) => $"{HostOf(serverId)}:7401";

    public static string RouteAddressOf(string serverId) => $"{HostOf(serverId)}:7402";

    // ---- servers ----

    private SimServer StartServer(string id)
    {
        var host = HostOf(id);
        var generation = _servers.TryGetValue(id, out var old) ? old.Generation + 1 : 1;
        var options = new ServerOptions
        {
            Id = id,
            Listen = host,
            TcpPort = 7400,
            HttpPort = 7480,
            Farm = new FarmOptions
            {
                GossipPort = 7401,
                RoutePort = 7402,
                GossipKeys = [Key],
                Preset = Options.Preset,
                Name = "sim",
                Seeds = [.. ServerIds.Where(s => s != id).Select(GossipAddressOf)],
            },
        };
        Options.Configure?.Invoke(options);
        var clock = new SimClock(Time, id);
        var context = new ServerContext
        {
            Time = clock,
            Random = new LockedRandom(_seeds.Next()),
            Connections = Network.ConnectorFor(host),
            Logging = Log?.For($"{id}.{generation}") ?? NullLoggerFactory.Instance,
            Membership = Network.JoinMembership(GossipAddressOf(id)),
        };
        var server = new RttpServer(options, context);
        var sim = new SimServer(id, host, generation, clock, server, NowMs);
        _servers[id] = sim;
        Network.Listen(ClientAddressOf(id), (pipe, remote, ct) => server.RunSessionAsync(pipe, remote, ct));
        Network.Listen(RouteAddressOf(id), (pipe, remote, ct) => server.RunSessionAsync(pipe, remote, ct, routePort: true));
        server.Start();
        return sim;
    }

    /// <summary>The server's process dies: connections end as <paramref name="mode"/> says, its timers stop, its objects are dropped.</summary>
    public void Kill(string id, KillMode mode = KillMode.Close)
    {
        var s = _servers[id];
        if (s.Dead)
        {
            return;
        }

        s.Dead = true;
        s.Paused = false;
        Network.Kill(s.Host, mode);
        s.Clock.Stop();
        try
        {
            s.Server.Dispose();
        }
        catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException)
        {
        }

        Log?.Add(id, $"KILLED ({mode})");
    }

    /// <summary>A new process with the same id and address and an empty state (kills the old one first if it runs).</summary>
    public SimServer Restart(string id)
    {
        Kill(id);
        Network.Revive(HostOf(id));
        Log?.Add(id, "RESTARTED");
        return StartServer(id);
    }

    /// <summary>The server freezes (SIGSTOP): its timers are held and fire late at resume, traffic to and from it waits. See the kit's README for what is approximate.</summary>
    public void Pause(string id)
    {
        var s = _servers[id];
        if (s.Dead || s.Paused)
        {
            return;
        }

        s.Paused = true;
        Network.Pause(s.Host);
        s.Clock.Pause();
        Log?.Add(id, "PAUSED");
    }

    public void Resume(string id)
    {
        var s = _servers[id];
        if (!s.Paused)
        {
            return;
        }

        s.Paused = false;
        Log?.Add(id, "RESUMED");
        Network.Resume(s.Host);
        s.Clock.Resume();
    }

    /// <summary>Servers <paramref name="a"/> and <paramref name="b"/> cannot reach each other (both ways); clients are not cut.</summary>
    public void Partition(IEnumerable<string> a, IEnumerable<string> b)
    {
        var left = a.ToList();
        var right = b.ToList();
        Log?.Add("net", $"PARTITION [{string.Join(",", left)}] | [{string.Join(",", right)}]");
        Network.Partition(left.Select(HostOf), right.Select(HostOf));
    }

    /// <summary>Traffic from server <paramref name="from"/> to server <paramref name="to"/> is lost (one way).</summary>
    public void Cut(string from, string to)
    {
        Log?.Add("net", $"CUT {from} -> {to}");
        Network.Cut(HostOf(from), HostOf(to));
    }

    public void Heal()
    {
        Log?.Add("net", "HEAL");
        Network.Heal();
    }

    // ---- clients ----

    /// <summary>A client on its own host (10.1.0.n) that first connects to <paramref name="firstServer"/> and subscribes to <paramref name="subjects"/> (<paramref name="stamps"/>: asking for the writes' stamps, see <see cref="SimClient.Stamps"/>).</summary>
    public SimClient AddClient(string name, string firstServer, IReadOnlyList<string> subjects, bool reconnect = true, bool stamps = false)
    {
        var host = $"10.1.{(_clients.Count + 1) / 250}.{((_clients.Count + 1) % 250) + 1}";
        var client = new SimClient(this, name, host, _seeds.Next(), subjects, firstServer, reconnect, stamps);
        _clients.Add(client);
        client.Start();
        return client;
    }

    /// <summary>
    /// The client is welcomed by a server process that runs now (not dead, not paused) and that it
    /// connected to after that process started: a client whose server vanished silently still
    /// believes it is connected until its own timeout; its publications go nowhere meanwhile.
    /// </summary>
    public bool IsServedByLiveProcess(SimClient client)
    {
        var (server, connectedAt) = client.Connection;
        return client.IsWelcomed && server is not null && _servers.TryGetValue(server, out var s) && s.Live && connectedAt >= s.StartedAtMs;
    }

    // ---- time ----

    /// <summary>One step of fake time, then the thread pool settles.</summary>
    public void Step()
    {
        Volatile.Write(ref _steppedAt, Environment.TickCount64);
        Time.Advance(Options.Step);
        if (Quiescence.Settle(Options.SettleLimit))
        {
            _unsettledInARow = 0;
            return;
        }

        UnsettledSteps++;
        if (++_unsettledInARow == 20)
        {
            _stacks = Quiescence.DumpStacks();
        }

        if (_unsettledInARow >= Options.UnsettledStepsLimit)
        {
            // A crawl (every step waiting out its settle limit) once took a CI run past its time
            // with nothing to show for it; a failure that names the pool's state says more.
            throw new SimulationException($"the thread pool did not settle in {_unsettledInARow} steps in a row ({Options.SettleLimit.TotalMilliseconds:0} ms each, seed {Seed}, at {NowMs / 1000.0:0.000}s): {Quiescence.Describe()}{(_stacks is null ? "" : $"; thread stacks after 20 such steps: {_stacks}")}");
        }
    }

    private int _unsettledInARow;
    private string? _stacks;

    // ---- the watchdog ----

    // A deadlock takes no step and uses no CPU: the crawl guard above never sees it, and a CI run
    // would wait out its whole time limit. A farm that has not stepped for this long (real time;
    // a step takes milliseconds, the slowest check between two steps a few seconds) is stuck: the
    // watchdog ends the test process with the seed and, with STREAMFARM_SIM_STACKS set, every
    // thread's stack (SIM_WATCHDOG_SECONDS changes the limit; 0 turns it off, for a debugger).
    private static readonly TimeSpan WatchEvery = TimeSpan.FromSeconds(10);
    private static readonly long StuckAfterMs = (long.TryParse(Environment.GetEnvironmentVariable("SIM_WATCHDOG_SECONDS"), out var s) ? s : 300) * 1000;
    private readonly Timer _watchdog;
    private long _steppedAt = Environment.TickCount64;

    private void Watch()
    {
        var idle = Environment.TickCount64 - Volatile.Read(ref _steppedAt);
        if (_disposed || StuckAfterMs <= 0 || idle < StuckAfterMs)
        {
            return;
        }

        var stacks = Quiescence.DumpStacks();
        var message = $"simulation stuck: seed {Seed} took no step for {idle / 1000} s (at {NowMs / 1000.0:0.000}s of simulated time), a deadlock; {(stacks is null ? "set STREAMFARM_SIM_STACKS=<dir> for every thread's stack" : $"thread stacks: {stacks}")}";
        Console.Error.WriteLine(message);
        Environment.FailFast(message);
    }

    public void Run(TimeSpan duration)
    {
        var end = Time.GetUtcNow() + duration;
        while (Time.GetUtcNow() < end)
        {
            Step();
        }
    }

    /// <summary>
    /// Runs until <paramref name="condition"/> holds, checked now and then every <paramref name="every"/>
    /// of simulated time (every step by default; a costly condition checks less often); throws
    /// <see cref="SimulationException"/> naming <paramref name="what"/> and the seed after
    /// <paramref name="limit"/> of simulated time. Returns the time it took.
    /// </summary>
    public TimeSpan Eventually(Func<bool> condition, TimeSpan limit, string what, TimeSpan? every = null)
    {
        var start = Time.GetUtcNow();
        Quiescence.Settle(Options.SettleLimit);
        while (!condition())
        {
            var next = Time.GetUtcNow() + (every ?? Options.Step);
            do
            {
                if (Time.GetUtcNow() - start > limit)
                {
                    throw new SimulationException($"{what}: not reached within {limit.TotalSeconds:0.#} s of simulated time (seed {Seed}, at {NowMs / 1000.0:0.000}s)");
                }

                Step();
            }
            while (Time.GetUtcNow() < next);
        }

        return Time.GetUtcNow() - start;
    }

    /// <summary>
    /// Every live server (not dead, not paused) sees every other live server alive and active and
    /// no dead one alive, owns subjects with the same set of owners (the live servers), and has its
    /// routes up to all of them.
    /// </summary>
    public bool Converged()
    {
        var live = _servers.Values.Where(s => s.Live).Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var s in _servers.Values.Where(s => s.Live))
        {
            var table = s.Server.Farm.Current;
            foreach (var id in live)
            {
                if (table.Members.FirstOrDefault(m => m.Id == id) is not { Liveness: "alive", State: "active" })
                {
                    return false;
                }
            }

            if (table.Members.Any(m => !live.Contains(m.Id) && m.Liveness is "alive" or "suspect"))
            {
                return false;
            }

            if (s.Server.Routes is not { } routes || routes.RoutesUp != live.Count - 1 || !routes.Ownership.Owners.ToHashSet(StringComparer.Ordinal).SetEquals(live))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Times the server saw a peer's route port refuse a connection (and moved its subjects at once).</summary>
    public long RefusalsSeenBy(string id) => _servers[id].Server.Routes?.Refusals ?? 0;

    /// <summary>
    /// The server's own record of <paramref name="subject"/> serves it: it owns the subject, does
    /// not hold for a hand-over or a copy, and has sequenced something in its history.
    /// </summary>
    public bool Serves(string id, string subject) =>
        _servers[id] is { Dead: false } s && s.Server.Subjects.Find(System.Text.Encoding.UTF8.GetBytes(subject)) is { Upstream: null, IsHolding: false, Seq: > 0 };

    /// <summary>Peers the server found started again while its route to their old process looked up.</summary>
    public long RestartsSeenBy(string id) => _servers[id].Server.Routes?.RestartsSeen ?? 0;

    /// <summary>Whether the server's route to <paramref name="peer"/> is up and reached the peer's current process (not an earlier one).</summary>
    public bool RouteReaches(string id, string peer) =>
        RouteUp(id, peer) && _servers[peer] is { Dead: false } p && _servers[id].Server.Routes?.PeerLifeOf(peer) == p.Server.Routes?.Life;

    /// <summary>Publications the server could not pass on to their owners (<c>streamfarm_route_dropped_total</c>).</summary>
    public long DroppedBy(string id) => _servers[id].Server.Routes?.Dropped ?? 0;

    /// <summary>Whether the server's route to <paramref name="peer"/> is up.</summary>
    public bool RouteUp(string id, string peer) => _servers[id].Server.Routes?.IsUpTo(peer) == true;

    /// <summary>A one-line picture of the farm: each server's view (for failure messages).</summary>
    public string Describe() => string.Join("; ", _servers.Values.Select(s =>
        s.Dead ? $"{s.Id}: dead" :
        $"{s.Id}{(s.Paused ? " (paused)" : "")}: sees [{string.Join(",", s.Server.Farm.Current.Members.Select(m => $"{m.Id}={m.Liveness}/{m.State}"))}], routes up {s.Server.Routes?.RoutesUp}, owners [{string.Join(",", s.Server.Routes?.Ownership.Owners ?? [])}]"));

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _watchdog.Dispose();
        foreach (var c in _clients)
        {
            c.Stop();
        }

        foreach (var s in _servers.Values)
        {
            if (!s.Dead)
            {
                Kill(s.Id, KillMode.Reset);
            }
        }

        Network.Shutdown();
        Quiescence.Settle(TimeSpan.FromSeconds(1));
    }
}

/// <summary>A simulation did not reach a state it waited for; the message names the seed.</summary>
public sealed class SimulationException(string message) : Exception(message);
