using StreamFarm.Client.Selection;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests;

/// <summary>
/// The selection policies and the reconnect backoff, without a network: seeded chance, many runs,
/// distributions checked with wide tolerances (a fixed seed makes each run repeatable).
/// </summary>
public sealed class SelectorTests
{
    private const int Runs = 20_000;

    private static FarmMember Server(string id, int users = 0, int capacity = 1000, string group = "default", string state = "active", string liveness = "alive") =>
        new() { Id = id, Users = users, Capacity = capacity, Group = group, State = state, Liveness = liveness, Tcp = "127.0.0.1:7400" };

    private static SelectionContext Context(int seed, long version = 7) => new(version, new Random(seed));

    private static double Load(FarmMember m) => (double)m.Users / Math.Max(1, m.Capacity);

    /// <summary>How often each server is chosen over <see cref="Runs"/> selections with one seeded source of chance.</summary>
    private static Dictionary<string, int> Tally(IServerSelector selector, IReadOnlyList<FarmMember> candidates, int seed = 1)
    {
        var context = Context(seed);
        var counts = candidates.ToDictionary(m => m.Id, _ => 0);
        for (var i = 0; i < Runs; i++)
        {
            var choice = selector.Select(candidates, context);
            Assert.NotNull(choice);
            counts[choice.Server.Id]++;
        }

        return counts;
    }

    [Fact]
    public void Random_CoversEveryCandidateRoughlyEvenly()
    {
        FarmMember[] servers = [Server("s1", 900), Server("s2", 0), Server("s3", 10), Server("s4", 500), Server("s5", 1)];
        foreach (var seed in new[] { 1, 2, 3 })
        {
            var counts = Tally(Selectors.Random(), servers, seed);
            var expected = Runs / servers.Length;
            foreach (var (id, n) in counts)
            {
                Assert.True(Math.Abs(n - expected) < expected * 0.1, $"seed {seed}: {id} chosen {n} times, expected about {expected}");
            }
        }
    }

    [Fact]
    public void FewestUsers_AlwaysPicksTheLeastLoadedRelativeToCapacity()
    {
        var random = new Random(11);
        for (var run = 0; run < 2_000; run++)
        {
            var servers = Enumerable.Range(1, random.Next(1, 8))
                .Select(i => Server($"s{i}", users: random.Next(0, 500), capacity: random.Next(1, 1000)))
                .ToList();
            var choice = Selectors.FewestUsers().Select(servers, Context(run));
            Assert.NotNull(choice);
            Assert.Equal(servers.Min(Load), Load(choice.Server));
        }

        // Load is users relative to capacity: 300/1000 is lighter than 100/200.
        var big = Server("big", users: 300, capacity: 1000);
        var small = Server("small", users: 100, capacity: 200);
        Assert.Equal("big", Selectors.FewestUsers().Select([small, big], Context(1))!.Server.Id);
    }

    [Fact]
    public void FewestUsers_BreaksTiesAtRandom()
    {
        FarmMember[] servers = [Server("a", 10, 100), Server("b", 20, 200), Server("c", 50, 100)];
        var counts = Tally(Selectors.FewestUsers(), servers);
        Assert.Equal(0, counts["c"]);
        Assert.True(counts["a"] > Runs / 3 && counts["b"] > Runs / 3, $"ties a={counts["a"]} b={counts["b"]}");
    }

    [Fact]
    public void PreferGroup_HoldsWhileTheGroupHasAHealthyServer_SpillsOverOtherwise()
    {
        var selector = Selectors.Random().PreferGroup("eu").ActiveOnly();

        // eu has one healthy server among unhealthy ones: always that one.
        FarmMember[] mixed =
        [
            Server("eu1", group: "eu"),
            Server("eu2", group: "eu", state: "draining"),
            Server("eu3", group: "eu", liveness: "dead"),
            Server("us1", group: "us"),
            Server("us2", group: "us"),
        ];
        var counts = Tally(selector, mixed);
        Assert.Equal(Runs, counts["eu1"]);
        Assert.Contains("group eu", selector.Select(mixed, Context(3))!.Reason, StringComparison.Ordinal);

        // eu has no healthy server: spill over to the others (still only healthy ones).
        FarmMember[] euDown =
        [
            Server("eu1", group: "eu", liveness: "suspect"),
            Server("eu2", group: "eu", state: "leaving"),
            Server("us1", group: "us"),
            Server("us2", group: "us"),
            Server("ap1", group: "ap", state: "joining"),
        ];
        counts = Tally(selector, euDown);
        Assert.Equal(0, counts["eu1"] + counts["eu2"] + counts["ap1"]);
        Assert.True(counts["us1"] > Runs / 3 && counts["us2"] > Runs / 3);
        Assert.Contains("spilled over", selector.Select(euDown, Context(3))!.Reason, StringComparison.Ordinal);

        // No group at all: spill over too.
        FarmMember[] noEu = [Server("us1", group: "us")];
        Assert.Equal("us1", selector.Select(noEu, Context(3))!.Server.Id);

        // No preferred group: the filter is not there.
        Assert.Equal("us1", Selectors.Random().PreferGroup(null).Select(noEu, Context(3))!.Server.Id);
    }

    [Fact]
    public void PreferGroup_SpillsOverWhateverTheComposition()
    {
        // The group filter outside the status filter: the group has servers, none healthy.
        var selector = Selectors.Random().ActiveOnly().PreferGroup("eu");
        FarmMember[] euDown =
        [
            Server("eu1", group: "eu", liveness: "dead"),
            Server("eu2", group: "eu", state: "draining"),
            Server("us1", group: "us"),
        ];
        var choice = selector.Select(euDown, Context(5));
        Assert.NotNull(choice);
        Assert.Equal("us1", choice.Server.Id);
        Assert.Contains("spilled over", choice.Reason, StringComparison.Ordinal);

        // While eu has a healthy server it still holds.
        FarmMember[] euUp = [.. euDown, Server("eu3", group: "eu")];
        Assert.Equal(Runs, Tally(selector, euUp)["eu3"]);
    }

    [Fact]
    public void ActiveOnly_NeverReturnsJoiningDrainingLeavingSuspectOrDead()
    {
        string[] states = ["joining", "active", "draining", "leaving"];
        string[] livenesses = ["alive", "suspect", "dead"];
        var random = new Random(21);
        IServerSelector[] choosers = [Selectors.Random(), Selectors.FewestUsers(), Selectors.PowerOfTwoChoices(), Selectors.Weighted()];
        for (var run = 0; run < 5_000; run++)
        {
            var servers = Enumerable.Range(1, random.Next(1, 7))
                .Select(i => Server($"s{i}", random.Next(0, 100), 100, state: states[random.Next(states.Length)], liveness: livenesses[random.Next(livenesses.Length)]))
                .ToList();
            var selector = choosers[run % choosers.Length].ActiveOnly();
            var choice = selector.Select(servers, Context(run));
            if (servers.Any(m => m.State == "active" && m.Liveness == "alive"))
            {
                Assert.NotNull(choice);
                Assert.Equal("active", choice.Server.State);
                Assert.Equal("alive", choice.Server.Liveness);
            }
            else
            {
                Assert.Null(choice);
            }
        }

        Assert.Null(Selectors.Random().ActiveOnly().Select([], Context(1)));
        Assert.Null(Selectors.Default().Select([Server("a", state: "draining"), Server("b", liveness: "suspect"), Server("c", state: "joining")], Context(1)));
    }

    [Fact]
    public void PowerOfTwoChoices_FavoursLighterServers_AndPicksTheHeaviestOnlyWhenBothSamplesAreIt()
    {
        foreach (var n in new[] { 3, 4, 6 })
        {
            // Distinct loads: s1 lightest ... sn heaviest.
            var servers = Enumerable.Range(1, n).Select(i => Server($"s{i}", users: i * 100, capacity: 1000)).ToList();
            var counts = Tally(Selectors.PowerOfTwoChoices(), servers, seed: n);

            // The heaviest is chosen only when both samples are it: probability 1/n².
            var heaviest = counts[$"s{n}"];
            var expected = Runs / (double)(n * n);
            Assert.True(heaviest < expected * 1.3 && heaviest > expected * 0.7, $"n={n}: heaviest chosen {heaviest} times, expected about {expected:0}");

            // Server i (1-based, by load) wins when it is sampled and the other sample is no lighter:
            // ((n-i+1)² - (n-i)²)/n²: strictly decreasing with load.
            for (var i = 1; i <= n; i++)
            {
                var p = ((n - i + 1) * (n - i + 1) - (n - i) * (n - i)) / (double)(n * n);
                Assert.True(Math.Abs(counts[$"s{i}"] - Runs * p) < Runs * 0.02, $"n={n}: s{i} chosen {counts[$"s{i}"]} times, expected about {Runs * p:0}");
            }

            for (var i = 1; i < n; i++)
            {
                Assert.True(counts[$"s{i}"] > counts[$"s{i + 1}"], $"n={n}: s{i} ({counts[$"s{i}"]}) should beat s{i + 1} ({counts[$"s{i + 1}"]})");
            }
        }
    }

    [Fact]
    public void Weighted_FollowsFreeCapacity()
    {
        // Free capacity 100, 300, 600 out of 1000 in all.
        FarmMember[] servers = [Server("a", users: 900, capacity: 1000), Server("b", users: 700, capacity: 1000), Server("c", users: 400, capacity: 1000)];
        var counts = Tally(Selectors.Weighted(), servers);
        Assert.True(Math.Abs(counts["a"] - Runs * 0.1) < Runs * 0.02, $"a {counts["a"]}");
        Assert.True(Math.Abs(counts["b"] - Runs * 0.3) < Runs * 0.02, $"b {counts["b"]}");
        Assert.True(Math.Abs(counts["c"] - Runs * 0.6) < Runs * 0.02, $"c {counts["c"]}");

        // A full (or over-full) server keeps a minimal weight of one user.
        FarmMember[] full = [Server("full", users: 1000, capacity: 1000), Server("over", users: 1200, capacity: 1000), Server("free", users: 0, capacity: 998)];
        counts = Tally(Selectors.Weighted(), full);
        Assert.True(counts["free"] > Runs * 0.99, $"free {counts["free"]}");
    }

    [Fact]
    public void EveryChoice_HasAReasonNamingServerGroupUsersCapacityAndTableVersion()
    {
        FarmMember[] servers =
        [
            Server("s1", users: 812, capacity: 2000, group: "eu"),
            Server("s2", users: 13, capacity: 500, group: "us"),
            Server("s3", users: 0, capacity: 100, group: "eu", state: "draining"),
        ];
        IServerSelector[] selectors =
        [
            Selectors.Random(), Selectors.FewestUsers(), Selectors.PowerOfTwoChoices(), Selectors.Weighted(),
            Selectors.Default(), Selectors.Default("eu"), Selectors.Default("ap"),
            Selectors.Parse("random", null), Selectors.Parse("fewest", "us"), Selectors.Parse("p2c", "eu"), Selectors.Parse("weighted", null),
        ];
        var random = new Random(5);
        foreach (var selector in selectors)
        {
            for (var run = 0; run < 200; run++)
            {
                var version = random.NextInt64(1, 1_000_000);
                var choice = selector.Select(servers, new SelectionContext(version, random));
                Assert.NotNull(choice);
                var m = choice.Server;
                Assert.StartsWith($"{m.Id}: ", choice.Reason, StringComparison.Ordinal);
                Assert.Contains($"group {m.Group}", choice.Reason, StringComparison.Ordinal);
                Assert.Contains($"{m.Users}/{m.Capacity} users", choice.Reason, StringComparison.Ordinal);
                Assert.Contains($"table v{version}", choice.Reason, StringComparison.Ordinal);
            }
        }

        var fewest = Selectors.FewestUsers().Select(servers, Context(1, version: 37))!;
        Assert.Equal("s3: group eu, 0/100 users, table v37 (fewest users of 3)", fewest.Reason);
        Assert.Throws<ArgumentException>(() => Selectors.Parse("nearest", null));
    }

    [Fact]
    public void ExponentialBackoff_DelaysWithinZeroAndACapThatDoublesUpToTheMaximum()
    {
        var initial = TimeSpan.FromMilliseconds(100);
        var max = TimeSpan.FromSeconds(5);
        var backoff = new ExponentialBackoff(initial, max, new Random(9));
        for (var round = 0; round < 40; round++)
        {
            var cap = Math.Min(max.TotalMilliseconds, initial.TotalMilliseconds * Math.Pow(2, round));
            var delays = Enumerable.Range(0, 2_000).Select(_ => backoff.NextDelay(new RetryContext(round, TimeSpan.FromSeconds(round)))!.Value.TotalMilliseconds).ToList();
            Assert.All(delays, d => Assert.InRange(d, 0, cap));

            // Full jitter: the delays spread over the whole range, up to the cap.
            Assert.True(delays.Max() > cap * 0.95, $"round {round}: largest delay {delays.Max():0.#} ms, cap {cap} ms");
            Assert.True(delays.Min() < cap * 0.05, $"round {round}: smallest delay {delays.Min():0.#} ms, cap {cap} ms");
            Assert.True(Math.Abs(delays.Average() - cap / 2) < cap * 0.05, $"round {round}: mean {delays.Average():0.#} ms, cap {cap} ms");
        }

        // Very many rounds: still capped, no overflow.
        Assert.InRange(backoff.NextDelay(new RetryContext(int.MaxValue, TimeSpan.FromDays(1)))!.Value, TimeSpan.Zero, max);

        // The default never gives up.
        var forever = ExponentialBackoff.Default(new Random(1));
        Assert.NotNull(forever.NextDelay(new RetryContext(100_000, TimeSpan.FromDays(1))));
        Assert.InRange(forever.NextDelay(new RetryContext(0, TimeSpan.Zero))!.Value, TimeSpan.Zero, TimeSpan.FromMilliseconds(100));
        Assert.InRange(forever.NextDelay(new RetryContext(50, TimeSpan.Zero))!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void ExponentialBackoff_MaxRoundsGivesNull()
    {
        var backoff = new ExponentialBackoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1), new Random(1), maxRounds: 3);
        Assert.NotNull(backoff.NextDelay(new RetryContext(0, TimeSpan.Zero)));
        Assert.NotNull(backoff.NextDelay(new RetryContext(2, TimeSpan.Zero)));
        Assert.Null(backoff.NextDelay(new RetryContext(3, TimeSpan.Zero)));
        Assert.Null(backoff.NextDelay(new RetryContext(100, TimeSpan.Zero)));

        var never = new ExponentialBackoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(1), new Random(1), maxRounds: 0);
        Assert.Null(never.NextDelay(new RetryContext(0, TimeSpan.Zero)));
    }

    [Fact]
    public void ExponentialBackoff_SameSeedSameDelays()
    {
        var a = new ExponentialBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), new Random(77));
        var b = new ExponentialBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), new Random(77));
        for (var round = 0; round < 20; round++)
        {
            Assert.Equal(a.NextDelay(new RetryContext(round, TimeSpan.Zero)), b.NextDelay(new RetryContext(round, TimeSpan.Zero)));
        }
    }
}
