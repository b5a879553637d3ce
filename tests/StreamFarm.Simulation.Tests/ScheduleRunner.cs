using System.Diagnostics;
using System.Globalization;
using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

/// <summary>What one schedule did and found.</summary>
public sealed record ScheduleResult(Schedule Schedule, IReadOnlyList<Violation> Violations, TimeSpan Simulated, TimeSpan Real, int UnsettledSteps, int Observations, SimFarm? Farm, int KeptNewer = 0)
{
    public bool Failed => Violations.Count > 0;
}

/// <summary>
/// Runs a <see cref="Schedule"/> on a <see cref="SimFarm"/>: start and converge, connect clients,
/// the fault phase (publications and faults), heal everything, wait until the farm has converged
/// and every client is connected, then each publisher publishes every subject once more (the final
/// values), and after a quiet period every subscriber, and a fresh probe client at every live
/// server, must hold them. The checker then looks at every history (I1 to I4).
/// </summary>
public static class ScheduleRunner
{
    /// <summary>The name of a subscriber that asks for stamps starts so (<see cref="SimClient.Stamps"/>).</summary>
    public const string StampedPrefix = "stamped-sub";

    public static readonly TimeSpan ConvergeLimit = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan QuietLimit = TimeSpan.FromSeconds(15);

    /// <summary>Costly conditions (rebuilding every copy from the histories) are checked this often.</summary>
    /// <summary>Fake time per step (<c>SIM_STEP_MS</c>, default 10).</summary>
    public static readonly TimeSpan Step = TimeSpan.FromMilliseconds(int.TryParse(Environment.GetEnvironmentVariable("SIM_STEP_MS"), CultureInfo.InvariantCulture, out var ms) ? ms : 10);

    /// <summary>Membership preset (<c>SIM_PRESET</c>: <c>local</c>, the default, or <c>lan</c>).</summary>
    public static readonly string Preset = Environment.GetEnvironmentVariable("SIM_PRESET") is { Length: > 0 } p ? p : "local";

    /// <summary>Publishers add <c>@ack=id</c> to their publications (<c>SIM_ACKS=1</c>).</summary>
    public static readonly bool Acks = Environment.GetEnvironmentVariable("SIM_ACKS") == "1";

    public static readonly TimeSpan CheckEvery = TimeSpan.FromMilliseconds(100);

    /// <summary>Runs one schedule. With <paramref name="keepFarm"/> the farm is returned undisposed (its histories and log), and the caller disposes it.</summary>
    public static ScheduleResult Run(Schedule schedule, bool logging = false, bool keepFarm = false)
    {
        var real = Stopwatch.StartNew();
        var farm = new SimFarm(new SimFarmOptions { Servers = schedule.Servers, Seed = schedule.Seed, Logging = logging, Step = Step, Preset = Preset });
        var violations = new List<Violation>();
        var checker = new HistoryChecker();
        try
        {
            Execute(schedule, farm, violations, checker);
        }
        catch (SimulationException e)
        {
            violations.Add(new Violation("LIVENESS", "farm", $"{e.Message}; farm: {farm.Describe()}"));
        }
        finally
        {
            if (!keepFarm)
            {
                farm.Dispose();
            }
        }

        return new ScheduleResult(schedule, violations, TimeSpan.FromMilliseconds(farm.NowMs), real.Elapsed, farm.UnsettledSteps, checker.Observations, keepFarm ? farm : null, checker.KeptNewer);
    }

    private static void Execute(Schedule schedule, SimFarm farm, List<Violation> violations, HistoryChecker checker)
    {
        farm.Eventually(farm.Converged, ConvergeLimit, "farm converged at start");
        var publishers = schedule.Publishers.Select((server, i) => farm.AddClient($"pub{i}", server, [])).ToList();
        publishers.ForEach(p => p.RequestAcks = Acks);
        // Every other subscriber asks for the writes' stamps and shows what StampedFields keeps (a
        // client that refuses to go back); the others take the farm's lines as they come.
        var subscribers = schedule.Subscribers.Select((server, i) => farm.AddClient(i % 2 == 1 ? $"{StampedPrefix}{i}" : $"sub{i}", server, schedule.Subjects, stamps: i % 2 == 1)).ToList();
        farm.Eventually(() => farm.Clients.All(c => c.IsWelcomed), ConvergeLimit, "clients connected at start");

        // Every subscriber has its first answer for every subject (NOT_FOUND) before anything is published.
        farm.Eventually(() => subscribers.All(s => schedule.Subjects.All(subject => s.Events.Any(e => e.Kind == ClientEventKind.Received && e.Line.StartsWith("STATUS " + subject + " ", StringComparison.Ordinal)))), ConvergeLimit, "subscriptions answered at start", every: CheckEvery);

        // Each publisher writes its own field, p<k>, with a counter that grows with every publication.
        var counters = new long[publishers.Count];
        var last = new Dictionary<string, Dictionary<string, long>>(StringComparer.Ordinal);
        void Publish(int p, string subject)
        {
            var value = counters[p] + 1;
            if (publishers[p].Publish(subject, $"p{p}", value))
            {
                counters[p] = value;
                if (!last.TryGetValue(subject, out var fields))
                {
                    last[subject] = fields = new Dictionary<string, long>(StringComparer.Ordinal);
                }

                fields[$"p{p}"] = value;
            }
        }

        // The fault phase.
        var start = farm.NowMs;
        foreach (var action in schedule.Actions)
        {
            while (farm.NowMs - start < action.At.TotalMilliseconds)
            {
                farm.Step();
            }

            if (action.Publication is { } pub)
            {
                Publish(pub.Publisher, pub.Subject);
            }
            else
            {
                action.Apply(farm);
            }
        }

        while (farm.NowMs - start < schedule.FaultPhase.TotalMilliseconds)
        {
            farm.Step();
        }

        // Heal: partitions and cuts end, paused servers resume, dead servers restart (except those left dead).
        farm.Heal();
        foreach (var s in farm.Servers.ToList())
        {
            if (s.Paused)
            {
                farm.Resume(s.Id);
            }
            else if (s.Dead && !schedule.LeftDead.Contains(s.Id))
            {
                farm.Restart(s.Id);
            }
        }

        farm.Eventually(farm.Converged, ConvergeLimit, "farm converged after the heal");
        farm.Eventually(() => farm.Clients.All(farm.IsServedByLiveProcess), ConvergeLimit, "clients connected to live servers after the heal");
        farm.Run(TimeSpan.FromMilliseconds(500));

        // The final values: every publisher publishes every subject once more.
        farm.Eventually(() => publishers.All(farm.IsServedByLiveProcess), ConvergeLimit, "publishers connected to live servers for the final round");
        for (var p = 0; p < publishers.Count; p++)
        {
            foreach (var subject in schedule.Subjects)
            {
                Publish(p, subject);
            }
        }

        var expected = last.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, long>)kv.Value, StringComparer.Ordinal);
        bool Holds(SimClient c) => checker.CheckHolds(c.Name, new HistoryChecker().Check(c.Name, c.Events), expected, record: false) == 0;
        try
        {
            farm.Eventually(() => subscribers.All(Holds), QuietLimit, "subscribers hold the final values", every: CheckEvery);
        }
        catch (SimulationException)
        {
            // reported below, per subscriber and subject, as I2
        }

        // A fresh subscriber at every live server: what the server itself hands out.
        var probes = farm.Servers.Where(s => !s.Dead).Select(s => farm.AddClient($"probe@{s.Id}", s.Id, schedule.Subjects, reconnect: false)).ToList();
        try
        {
            farm.Eventually(() => probes.All(Holds), QuietLimit, "probes hold the final values", every: CheckEvery);
        }
        catch (SimulationException)
        {
        }

        for (var p = 0; p < publishers.Count; p++)
        {
            checker.AddPublisher(publishers[p].Name, $"p{p}", publishers[p].Events);
        }

        foreach (var c in subscribers.Concat(probes))
        {
            var copies = checker.Check(c.Name, c.Events);
            checker.CheckHolds(c.Name, copies, expected);
        }

        violations.AddRange(checker.Violations);
    }

    /// <summary>A failure report: the schedule, then the first violations of each invariant.</summary>
    public static string Report(ScheduleResult r, int perInvariant = 3) =>
        $"{r.Schedule.Describe()}\n" + string.Join("\n", r.Violations.GroupBy(v => v.Invariant).SelectMany(g => g.Take(perInvariant).Select(v => "  " + v.ToString()).Append(g.Count() > perInvariant ? $"  ... {g.Count() - perInvariant} more {g.Key}" : null)).OfType<string>())
        + string.Create(CultureInfo.InvariantCulture, $"\n  ({r.Simulated.TotalSeconds:0.0}s simulated in {r.Real.TotalMilliseconds:0} ms)");
}
