using System.Globalization;
using StreamFarm.Faults.Tests.Checking;
using StreamFarm.Faults.Tests.Clients;
using Xunit.Abstractions;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>
/// One fault scenario: a farm, a subscriber at every server, publishers at different servers, a
/// random fault schedule from a seed (FAULTS_SEED replays it; the timing of real processes still
/// varies), then: faults healed, publishers stopped (each republishing what is not acknowledged),
/// a fresh subscriber at every server, convergence polled (30 s at most), and the whole history
/// checked. The report, the clients' logs and the servers' logs are kept under
/// <c>$TMPDIR/streamfarm-faults/&lt;scenario&gt;-&lt;seed&gt;/</c>.
/// </summary>
internal sealed class ScenarioRun : IAsyncDisposable
{
    private static readonly TimeSpan PublishInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ConvergencePatience = TimeSpan.FromSeconds(30);
    private readonly ITestOutputHelper _output;
    private readonly List<ISubscriber> _subscribers = [];
    private readonly List<ISubscriber> _fresh = [];
    private readonly List<Publisher> _publishers = [];
    private FaultFarm? _farm;

    private ScenarioRun(string name, int seed, string logDir, ITestOutputHelper output)
    {
        Name = name;
        Seed = seed;
        LogDir = logDir;
        Random = new Random(seed);
        _output = output;
        Start = DateTime.UtcNow;
    }

    public string Name { get; }

    public int Seed { get; }

    public string LogDir { get; }

    public DateTime Start { get; }

    /// <summary>The schedule's randomness (from the seed).</summary>
    public Random Random { get; }

    public FaultFarm Farm => _farm!;

    public string[] Subjects { get; private set; } = [];

    /// <summary>FAULTS_SEED if set, otherwise a new random seed.</summary>
    public static int NewSeed() =>
        int.TryParse(Environment.GetEnvironmentVariable("FAULTS_SEED"), CultureInfo.InvariantCulture, out var s) ? s : Random.Shared.Next(1, 1_000_000);

    public static Task<ScenarioRun> StartAsync(string name, string subnet, int servers, string preset, ITestOutputHelper output, int publishers = 3, int subjects = 30, Func<string, string?>? buildOf = null) =>
        StartAsync(name, NewSeed(), new LoopbackNetwork(subnet), servers, preset, output, publishers, subjects, buildOf);

    /// <summary>Where a scenario keeps its report and logs.</summary>
    public static string LogDirOf(string name, int seed) => Path.Combine(Path.GetTempPath(), "streamfarm-faults", $"{name}-{seed}");

    /// <summary>
    /// Starts a scenario with its seed on a network (the caller's, which it keeps: namespaces
    /// standing in for hosts): the farm, a raw subscriber homed at every server, the publishers;
    /// returns when every subscriber holds every subject. <paramref name="buildOf"/> names another
    /// build's streamfarm.dll for a server (the upgrade scenario), null for this build.
    /// </summary>
    public static async Task<ScenarioRun> StartAsync(string name, int seed, IFarmNetwork network, int servers, string preset, ITestOutputHelper output, int publishers = 3, int subjects = 30, Func<string, string?>? buildOf = null)
    {
        var logDir = LogDirOf(name, seed);
        Directory.CreateDirectory(logDir);
        output.WriteLine($"scenario {name}: seed {seed} (replay: FAULTS_SEED={seed}); logs in {logDir}");
        var run = new ScenarioRun(name, seed, logDir, output);
        try
        {
            run._farm = await FaultFarm.StartAsync(network, servers, preset, logDir, run.Start, buildOf);
            run.Subjects = [.. Enumerable.Range(0, subjects).Select(i => $"/F/{name}/{i}")];
            run.Farm.Subjects = run.Subjects;
            foreach (var id in run.Farm.Ids)
            {
                run.Farm.Note($"{id} owns {run.Farm.OwnedBy(id, run.Subjects).Count} of {subjects} subjects while all are up");
            }

            var list = run.Farm.Servers;
            for (var i = 0; i < list.Count; i++)
            {
                var sub = new Subscriber($"sub@{list[i].Id}", list, FaultFarm.RttpPort, i, run.Subjects, seed + i, run.Farm.Network.ClientSocket);
                run._subscribers.Add(sub);
                sub.Start();
            }

            for (var k = 1; k <= publishers; k++)
            {
                var pub = new Publisher($"p{k}", list, FaultFarm.RttpPort, (k - 1) % list.Count, run.Subjects, PublishInterval, seed + 100 + k, run.Farm.Network.ClientSocket);
                run._publishers.Add(pub);
                pub.Start();
            }

            // Warm-up: every subscriber holds every subject.
            await Poll.UntilAsync(() => Task.FromResult(run._subscribers.All(s => run.Holds(s))), "every subscriber has an image of every subject", TimeSpan.FromSeconds(30));
            run.Farm.Note($"warm: every subscriber holds every subject; {run._publishers.Sum(p => p.Sent)} publications so far");
            return run;
        }
        catch (Exception e)
        {
            output.WriteLine($"scenario {name} (seed {seed}) could not start: {e}");
            await run.DisposeAsync();
            throw;
        }
    }

    /// <summary>Publishing goes on for a random time between the bounds (ms).</summary>
    public Task LoadAsync(int minMs, int maxMs) => Task.Delay(Random.Next(minMs, maxMs));

    /// <summary>
    /// A subscriber of the scenario's own beyond the raw ones (a <c>streamfarm sub</c> process):
    /// its lines are checked with the others', and its final state counts for convergence. A fresh
    /// one is added in <see cref="RunAsync"/>'s <c>freshSubscribers</c>, after the publishers stopped.
    /// </summary>
    public void Add(ISubscriber subscriber, bool fresh = false) => (fresh ? _fresh : _subscribers).Add(subscriber);

    /// <summary>
    /// Runs the fault schedule, heals what is left, stops the publishers, starts fresh subscribers
    /// (a raw one at every server not drained, then <paramref name="freshSubscribers"/>' own), polls
    /// convergence and checks the whole history, and then <paramref name="moreChecks"/> (the
    /// scenario's own, reported with the invariants); fails with the report.
    /// </summary>
    public async Task RunAsync(Func<ScenarioRun, Task> faults, IHealable? partition = null, Func<ScenarioRun, Task>? freshSubscribers = null, Func<ScenarioRun, Task<IReadOnlyList<Violation>>>? moreChecks = null)
    {
        try
        {
            await faults(this);
            partition?.Heal();
            await Farm.HealAsync();
            Farm.Note("every fault healed; publishing goes on for 3 s");
            await Task.Delay(3000);
            await Task.WhenAll(_publishers.Select(p => p.StopAsync(TimeSpan.FromSeconds(10))));
            Farm.Note($"publishers stopped: {_publishers.Sum(p => p.Sent)} publications");

            var list = Farm.Servers;
            for (var i = 0; i < list.Count; i++)
            {
                if (!Farm.Drained.Contains(list[i].Id))
                {
                    var fresh = new Subscriber($"fresh@{list[i].Id}", list, FaultFarm.RttpPort, i, Subjects, Seed + 50 + i, Farm.Network.ClientSocket);
                    _fresh.Add(fresh);
                    fresh.Start();
                }
            }

            if (freshSubscribers is not null)
            {
                await freshSubscribers(this);
            }

            var observers = _subscribers.Concat(_fresh).Select(s => s.Name).ToList();
            var deadline = DateTime.UtcNow + ConvergencePatience;
            List<Violation> convergence;
            while (true)
            {
                convergence = HistoryChecker.Convergence(History(), observers);
                if (convergence.Count == 0 || DateTime.UtcNow > deadline)
                {
                    break;
                }

                await Task.Delay(500);
            }

            Farm.Note(convergence.Count == 0 ? "converged" : $"not converged within {ConvergencePatience.TotalSeconds} s: {convergence.Count} difference(s)");
            var h = History();
            var violations = HistoryChecker.Check(h, observers);
            if (moreChecks is not null)
            {
                violations.AddRange(await moreChecks(this));
            }

            var report = HistoryChecker.Report(h, violations);
            Keep(report);
            _output.WriteLine(report);
            Assert.True(violations.Count == 0, $"fault scenario {Name} (seed {Seed}, FAULTS_SEED={Seed} replays it; logs in {LogDir}):\n{report}");
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            _output.WriteLine($"scenario {Name} (seed {Seed}) broke off: {e}");
            _output.WriteLine(string.Join('\n', Farm.Timeline()));
            Keep($"broke off: {e}");
            throw;
        }
    }

    public History History() =>
        new(Name, Seed, Start, Subjects,
            [.. _publishers.SelectMany(p => p.Records())],
            [.. _subscribers.Concat(_fresh).SelectMany(s => s.Lines())],
            [.. _publishers.SelectMany(p => p.Anomalies())],
            Farm.Timeline())
        {
            Kills = Farm.Kills,
            Partitions = Farm.Partitions,
            OwnerOf = new StreamFarm.Protocol.Ownership(Farm.Ids).OwnerOf,
        };

    /// <summary>Whether the subscriber has had an image of every subject.</summary>
    public bool Holds(ISubscriber s) =>
        s.Lines().Where(l => l.Text.StartsWith("IMAGE ", StringComparison.Ordinal)).Select(l => l.Text.Split(' ')[1]).Distinct().Count() >= Subjects.Length;

    private void Keep(string report)
    {
        try
        {
            File.WriteAllText(Path.Combine(LogDir, "report.txt"), report);
            foreach (var p in _publishers)
            {
                File.WriteAllLines(Path.Combine(LogDir, $"{p.Name}.log"), p.Log());
                File.WriteAllLines(Path.Combine(LogDir, $"{p.Name}.pubs.txt"), p.Records().Select(r => $"{(r.SentAt - Start).TotalSeconds:0.000} {r.Subject} {r.Field}={r.Value} @ack={r.AckId} conn#{r.Connection}@{r.Server} {r.Outcome} {r.Answer}"));
            }

            foreach (var s in _subscribers.Concat(_fresh))
            {
                File.WriteAllLines(Path.Combine(LogDir, $"{s.Name}.log"), s.Log());
                File.WriteAllLines(Path.Combine(LogDir, $"{s.Name}.lines.txt"), s.Lines().Select(l => $"{(l.At - Start).TotalSeconds:0.000} #{l.Session}@{l.Server} {l.Text}"));
            }
        }
        catch (IOException e)
        {
            _output.WriteLine($"could not keep the logs in {LogDir}: {e.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _publishers)
        {
            await p.DisposeAsync();
        }

        foreach (var s in _subscribers.Concat(_fresh))
        {
            await s.DisposeAsync();
        }

        if (_farm is not null)
        {
            await _farm.DisposeAsync();
        }
    }
}
