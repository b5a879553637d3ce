using System.Globalization;
using System.Text;
using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

/// <summary>One thing that happens at a simulated time after the fault phase began.</summary>
public sealed record ScheduledAction(TimeSpan At, string What, Action<SimFarm> Apply, bool IsFault)
{
    /// <summary>For a publication: which publisher, which subject.</summary>
    public (int Publisher, string Subject)? Publication { get; init; }
}

/// <summary>
/// A seeded schedule: the farm's shape (3 to 5 servers, 6 to 12 subjects, 2 publishers, 3 or 4
/// subscribers spread over the servers), the publications of the fault phase, and 1 to 4 faults
/// in it (kill with a restart later or at the heal, pause, partition both ways, one-way cut), each
/// undone at its end or at the heal. Everything comes from the seed.
/// </summary>
public sealed class Schedule
{
    private Schedule(int seed)
    {
        Seed = seed;
    }

    public int Seed { get; }

    /// <summary>Faults per schedule at most (1 to this many) when a test does not say: <c>SIM_MAX_FAULTS</c>, 4 by default (replays use it too).</summary>
    public static int MaxFaults { get; } = int.TryParse(Environment.GetEnvironmentVariable("SIM_MAX_FAULTS"), out var m) && m > 0 ? m : 4;

    public int Servers { get; private set; }

    public IReadOnlyList<string> Subjects { get; private set; } = [];

    /// <summary>Each publisher's first server.</summary>
    public IReadOnlyList<string> Publishers { get; private set; } = [];

    /// <summary>Each subscriber's first server.</summary>
    public IReadOnlyList<string> Subscribers { get; private set; } = [];

    public TimeSpan FaultPhase { get; private set; }

    /// <summary>Faults, their ends, and publications (publisher index, subject), in time order.</summary>
    public IReadOnlyList<ScheduledAction> Actions { get; private set; } = [];

    /// <summary>Servers left dead at the heal (never restarted).</summary>
    public IReadOnlyList<string> LeftDead { get; private set; } = [];

    /// <summary>The schedule of <paramref name="seed"/>; without <paramref name="faults"/>, the same farm and publications and no fault.</summary>
    public static Schedule FromSeed(int seed, bool faults = true, int? maxFaults = null)
    {
        var r = new Random(seed);
        var s = new Schedule(seed) { Servers = 3 + r.Next(3) };
        var ids = Enumerable.Range(1, s.Servers).Select(i => $"s{i}").ToList();
        s.Subjects = [.. Enumerable.Range(0, 6 + r.Next(7)).Select(i => $"/SIM/k{i}")];
        s.Publishers = [.. Enumerable.Range(0, 2).Select(_ => ids[r.Next(ids.Count)])];
        var offset = r.Next(ids.Count);
        s.Subscribers = [.. Enumerable.Range(0, 3 + r.Next(2)).Select(i => ids[(offset + i) % ids.Count])];
        s.FaultPhase = TimeSpan.FromMilliseconds(4000 + r.Next(4000));
        var actions = new List<ScheduledAction>();

        // Publications: each publisher every 30 to 120 ms, to a subject at random.
        for (var p = 0; p < s.Publishers.Count; p++)
        {
            var every = 30 + r.Next(90);
            for (var t = r.Next(every); t < s.FaultPhase.TotalMilliseconds; t += every)
            {
                var (publisher, subject) = (p, s.Subjects[r.Next(s.Subjects.Count)]);
                actions.Add(new ScheduledAction(TimeSpan.FromMilliseconds(t), $"pub{publisher} {subject}", _ => { }, IsFault: false) { Publication = (publisher, subject) });
            }
        }

        var killable = ids.ToList();
        var leftDead = new List<string>();
        var count = faults ? 1 + r.Next(maxFaults ?? MaxFaults) : 0;
        for (var i = 0; i < count; i++)
        {
            var at = TimeSpan.FromMilliseconds(300 + r.Next((int)s.FaultPhase.TotalMilliseconds - 800));
            var duration = TimeSpan.FromMilliseconds(300 + r.Next(4000));
            var until = at + duration < s.FaultPhase ? at + duration : (TimeSpan?)null; // null: undone at the heal
            switch (r.Next(5))
            {
                case 0 or 1 when killable.Count > 1:
                {
                    var victim = killable[r.Next(killable.Count)];
                    killable.Remove(victim); // one kill per server per schedule; someone always survives
                    var mode = (KillMode)r.Next(3);
                    actions.Add(Fault(at, $"kill {victim} ({mode})", f => f.Kill(victim, mode)));
                    if (until is { } back && r.Next(4) > 0)
                    {
                        actions.Add(Fault(back, $"restart {victim}", f => f.Restart(victim)));
                    }
                    else if (s.Servers >= 4 && leftDead.Count == 0 && r.Next(4) == 0)
                    {
                        leftDead.Add(victim); // stays dead: its subjects move for good
                    }

                    break;
                }

                case 2:
                {
                    var victim = ids[r.Next(ids.Count)];
                    actions.Add(Fault(at, $"pause {victim}", f => f.Pause(victim)));
                    if (until is { } back)
                    {
                        actions.Add(Fault(back, $"resume {victim}", f => f.Resume(victim)));
                    }

                    break;
                }

                case 3:
                {
                    var shuffled = ids.OrderBy(_ => r.Next()).ToList();
                    var cut = 1 + r.Next(ids.Count - 1);
                    var a = shuffled.Take(cut).Order(StringComparer.Ordinal).ToList();
                    var b = shuffled.Skip(cut).Order(StringComparer.Ordinal).ToList();
                    actions.Add(Fault(at, $"partition [{string.Join(",", a)}] | [{string.Join(",", b)}]", f => f.Partition(a, b)));
                    if (until is { } back)
                    {
                        actions.Add(Fault(back, "heal", f => f.Heal()));
                    }

                    break;
                }

                default:
                {
                    var from = ids[r.Next(ids.Count)];
                    var to = ids.Where(x => x != from).ElementAt(r.Next(ids.Count - 1));
                    actions.Add(Fault(at, $"cut {from} -> {to}", f => f.Cut(from, to)));
                    if (until is { } back)
                    {
                        actions.Add(Fault(back, "heal", f => f.Heal()));
                    }

                    break;
                }
            }
        }

        s.LeftDead = leftDead;
        s.Actions = [.. actions.OrderBy(a => a.At)];
        return s;

        static ScheduledAction Fault(TimeSpan at, string what, Action<SimFarm> apply) => new(at, what, apply, IsFault: true);
    }

    public string Describe()
    {
        var b = new StringBuilder();
        b.Append(CultureInfo.InvariantCulture, $"seed {Seed}: {Servers} servers, {Subjects.Count} subjects, publishers on [{string.Join(",", Publishers)}], subscribers on [{string.Join(",", Subscribers)}], fault phase {FaultPhase.TotalSeconds:0.0}s, {Actions.Count(a => a.Publication is not null)} publications; faults:");
        foreach (var a in Actions.Where(a => a.IsFault))
        {
            b.Append(CultureInfo.InvariantCulture, $" {a.At.TotalSeconds:0.000}s {a.What};");
        }

        b.Append(CultureInfo.InvariantCulture, $" {FaultPhase.TotalSeconds:0.000}s heal all{(LeftDead.Count > 0 ? $", {string.Join(",", LeftDead)} stays dead" : "")}");
        return b.ToString();
    }
}
