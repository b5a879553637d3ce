using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

/// <summary>
/// How fast routes learn what happened to a peer, in simulated time (deterministic: the fake clock
/// moves only when the simulation steps, so these bounds do not depend on the machine's load).
/// </summary>
public sealed class RouteRecoveryTests
{
    [Theory]
    [InlineData(KillMode.Close, 1)]
    [InlineData(KillMode.Reset, 1)]
    [InlineData(KillMode.Close, 2)]
    [InlineData(KillMode.Reset, 2)]
    public void AKilledPeer_IsKnownGone_FromItsRefusedPort_WithinMilliseconds_HoweverItsConnectionsEnded(KillMode mode, int seed)
    {
        // A survivor that was writing to the killed peer sees its route fail with a reset, one that
        // was only reading sees the end of the stream. Either way the route is tried again at once
        // and the refusal (the process is gone) is known within a few network round trips, not
        // after a reconnection backoff (50-150 ms for the first retry).
        using var farm = ConvergedFarm(seed);
        farm.Run(TimeSpan.FromSeconds(2)); // routes up for more than a second: not a flapping peer
        var before = new[] { "s1", "s3" }.ToDictionary(id => id, farm.RefusalsSeenBy);

        farm.Kill("s2", mode);
        var took = farm.Eventually(() => farm.RefusalsSeenBy("s1") > before["s1"] && farm.RefusalsSeenBy("s3") > before["s3"], TimeSpan.FromSeconds(5), "both survivors saw s2's route port refuse");

        Assert.True(took <= TimeSpan.FromMilliseconds(40), $"the refusal was known after {took.TotalMilliseconds} ms of simulated time (seed {seed}, {mode})");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void APeerThatComesBack_GetsItsRoutesAtOnce_NotAfterTheBackoffGrownWhileItWasDown(int seed)
    {
        // While s2 is down the survivors' routes to it back off (doubling up to 2 s). When s2 is back
        // it opens its own routes to them; that is proof it listens, so their routes to it are tried
        // at once instead of waiting out the backoff.
        using var farm = ConvergedFarm(seed);
        farm.Kill("s2");
        farm.Run(TimeSpan.FromMilliseconds(1500));
        Assert.True(farm.Servers.Where(s => s.Id != "s2").All(s => s.Server.Farm.Current.Members.Any(m => m.Id == "s2" && m.Liveness != "dead")),
            "the test needs s2 not yet declared dead (its route link kept, backing off): " + farm.Describe());

        farm.Restart("s2");
        farm.Eventually(() => farm.RouteUp("s2", "s1") && farm.RouteUp("s2", "s3"), TimeSpan.FromSeconds(10), "s2's own routes up");
        var took = farm.Eventually(() => farm.RouteUp("s1", "s2") && farm.RouteUp("s3", "s2"), TimeSpan.FromSeconds(10), "the survivors' routes to s2 up");

        Assert.True(took <= TimeSpan.FromMilliseconds(50), $"the survivors' routes to s2 came up {took.TotalMilliseconds} ms after s2's own (seed {seed})");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void APeerStartedAgainSilently_IsReachedAgain_AsSoonAsItsNewProcessCalls_NotWhenTheOldRouteGoesSilent(int seed)
    {
        // s2's host vanishes (no end of stream, no refusal) and s2 starts again 0.8 s later, before
        // anything noticed. The survivors' routes still point at the old process and would look up
        // until they went silent (3 s). The new process's own route HELLO tells another life: the
        // survivors open their routes again at once, so s2 gets their copies and the publications
        // it lost while it still holds its new records for them (SIM_SEED=4263 found this).
        using var farm = ConvergedFarm(seed);
        farm.Run(TimeSpan.FromSeconds(2));
        farm.Kill("s2", KillMode.Silent);
        farm.Run(TimeSpan.FromMilliseconds(800));
        Assert.True(farm.RouteUp("s1", "s2") && farm.RouteUp("s3", "s2"), "the test needs the survivors' routes to the old s2 still looking up: " + farm.Describe());

        farm.Restart("s2");
        farm.Eventually(() => farm.RouteUp("s2", "s1") && farm.RouteUp("s2", "s3"), TimeSpan.FromSeconds(10), "s2's own routes up");
        var took = farm.Eventually(() => farm.RestartsSeenBy("s1") > 0 && farm.RestartsSeenBy("s3") > 0 && farm.RouteReaches("s1", "s2") && farm.RouteReaches("s3", "s2"), TimeSpan.FromSeconds(10), "the survivors' routes to the new s2 up");

        Assert.True(took <= TimeSpan.FromMilliseconds(100), $"the survivors reached the new s2 {took.TotalMilliseconds} ms after its own routes were up (seed {seed})");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void AnOwnerKilled_WithNobodyElseSubscribed_IsReplaced_WithoutWaitingTheHoldLimit(int seed)
    {
        // s3 owns the subject and its only subscriber is on s3, so no other server has a copy. The
        // new owner cannot know that from silence: it holds for a copy up to HoldLimit (1 s). The
        // owners barrier tells it sooner: once the other survivor confirms the new owners (its
        // copies, had it any, came before), the new owner stops waiting and applies what waited.
        using var farm = ConvergedFarm(seed);
        var all = new StreamFarm.Protocol.Ownership(["s1", "s2", "s3"]);
        var subject = OwnedBy(all, "s3", "/own/");
        var next = new StreamFarm.Protocol.Ownership(["s1", "s2"]).OwnerOf(subject);
        var publisher = farm.AddClient("pub", "s1", [], reconnect: false);
        var subscriber = farm.AddClient("sub", "s3", [subject], reconnect: false);
        var value = 0L;
        farm.Eventually(() => publisher.IsWelcomed && publisher.Publish(subject, "v", ++value) && farm.Serves("s3", subject) && subscriber.Events.Any(e => e.Line.StartsWith("UPDATE ", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the subject served by s3", TimeSpan.FromMilliseconds(20));
        farm.Run(TimeSpan.FromSeconds(1)); // the table and routes settled: no change of owners under way

        farm.Kill("s3");
        var took = farm.Eventually(() => publisher.Publish(subject, "v", ++value) && farm.Serves(next, subject), TimeSpan.FromSeconds(5), $"{next} serving {subject}", TimeSpan.FromMilliseconds(10));

        Assert.True(took <= TimeSpan.FromMilliseconds(300), $"{next} served {subject} {took.TotalMilliseconds} ms after s3 was killed (seed {seed}); the hold limit is 1,000 ms");
    }

    [Theory]
    [InlineData(1, KillMode.Reset)]
    [InlineData(2, KillMode.Silent)]
    public void AnOwnerKilled_WithItsPublisherAndItsOnlySubscriber_ItsSuccessorTakesOverWithTheLastValues(int seed, KillMode mode)
    {
        // s3 owns the subject, and its publisher and its only subscriber are on s3: no other server
        // had a reason to hold a copy, and no route buffer has the publications. Without standby
        // copies the new owner started from nothing (a subscriber that moved got STATUS NOT_FOUND:
        // the record was lost). s3's successor keeps a copy, and takes the subject over with it.
        using var farm = ConvergedFarm(seed);
        var all = new StreamFarm.Protocol.Ownership(["s1", "s2", "s3"]);
        var subject = OwnedBy(all, "s3", "/own/");
        var next = all.SuccessorOf(subject)!;
        var publisher = farm.AddClient("pub", "s3", [], reconnect: false);
        var subscriber = farm.AddClient("sub", "s3", [subject], reconnect: false);
        farm.Eventually(() => publisher.IsWelcomed && publisher.Publish(subject, "b", 7), TimeSpan.FromSeconds(10), "b published", TimeSpan.FromMilliseconds(20));
        var value = 0L;
        farm.Eventually(() => publisher.Publish(subject, "v", ++value) && value >= 50, TimeSpan.FromSeconds(10), "50 publications", TimeSpan.FromMilliseconds(20));
        farm.Eventually(() => subscriber.Events.Any(e => e.Line.Contains($" v={value}", StringComparison.Ordinal)), TimeSpan.FromSeconds(5), "the subscriber has the last value");

        farm.Kill("s3", mode);
        var late = farm.AddClient("late", next, [subject], reconnect: false);
        farm.Eventually(() => late.Events.Any(e => e.Line.StartsWith("IMAGE ", StringComparison.Ordinal) || e.Line.StartsWith("STATUS ", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), $"an answer at {next}", TimeSpan.FromMilliseconds(20));

        var first = late.Events.First(e => e.Line.StartsWith("IMAGE ", StringComparison.Ordinal) || e.Line.StartsWith("STATUS ", StringComparison.Ordinal)).Line;
        Assert.True(first.StartsWith("IMAGE ", StringComparison.Ordinal) && first.Contains($" v={value}", StringComparison.Ordinal) && first.Contains(" b=7", StringComparison.Ordinal),
            $"the successor {next} answered '{first}' after s3 was killed ({mode}); the last values were v={value} b=7 (seed {seed})");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ANewOwnerThatHeldPublications_ShowsTheNewest_NotTheOldestItWasSentAgain(int seed)
    {
        // s3 owns the subject; s1's publisher has published to it for two seconds, so s1's route
        // to s3 keeps the publications s3 acknowledged lately. s4 is paused, so the owners barrier
        // cannot complete and the new owner, s2, holds for a copy the whole hold limit. s3 is
        // killed: s1 sends those publications again to s2, with the new ones. A subscriber that
        // arrives at s2 during the hold must get the newest value, not an IMAGE of the oldest
        // publication sent again (an old value shown as current).
        using var farm = ConvergedFarm(seed, servers: 4);
        var all = new StreamFarm.Protocol.Ownership(["s1", "s2", "s3", "s4"]);
        var after = new StreamFarm.Protocol.Ownership(["s1", "s2", "s4"]);
        var subject = Enumerable.Range(0, 200).Select(i => $"/held/{i}").First(s => all.OwnerOf(s) == "s3" && after.OwnerOf(s) == "s2");
        var publisher = farm.AddClient("pub", "s1", [], reconnect: false);
        var value = 0L;
        farm.Eventually(() => publisher.IsWelcomed && publisher.Publish(subject, "v", ++value) && value >= 100, TimeSpan.FromSeconds(10), "100 publications", TimeSpan.FromMilliseconds(20));
        farm.Pause("s4");
        farm.Kill("s3");
        var before = value;
        var late = farm.AddClient("late", "s2", [subject], reconnect: false);
        farm.Eventually(() => publisher.Publish(subject, "v", ++value) && late.Events.Any(e => e.Line.StartsWith("IMAGE ", StringComparison.Ordinal)), TimeSpan.FromSeconds(5), "an IMAGE at s2", TimeSpan.FromMilliseconds(20));

        var image = late.Events.First(e => e.Line.StartsWith("IMAGE ", StringComparison.Ordinal)).Line;
        var shown = long.Parse(image.Split(' ').First(t => t.StartsWith("v=", StringComparison.Ordinal))[2..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(shown >= before, $"the first IMAGE at the new owner showed v={shown}; {before} had been published before the kill (seed {seed}): {image}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PublicationsWaitingForAnUnreachableOwner_WhosePublisherHasGone_AreKept_AndAppliedOnceItIsReached(int seed)
    {
        // s1 and s3 cannot reach each other; s2 reaches both, so the membership keeps s3 alive and
        // s3 stays the owner. What s1's publisher sends meanwhile waits on s1's route to s3. After
        // 5 s without that route (the stall limit) what waits is refused and its publishers told;
        // a publisher that had already gone could not be told, and its publications were lost: the
        // subject showed its value from before the cut for good. Now they wait for the route.
        using var farm = ConvergedFarm(seed);
        var (subject, publisher, watcher) = PublisherAtS1_WatcherAtS3(farm, "/kept/");

        farm.Partition(["s1"], ["s3"]);
        farm.Eventually(() => !farm.RouteUp("s1", "s3"), TimeSpan.FromSeconds(10), "s1's route to s3 closed (nothing received)");
        for (var v = 1; v <= 20; v++)
        {
            Assert.True(publisher.Publish(subject, "v", v));
        }

        farm.Run(TimeSpan.FromMilliseconds(200));
        publisher.Stop(); // a script that published and closed
        var dropped = farm.DroppedBy("s1");
        farm.Run(TimeSpan.FromSeconds(6)); // past the stall limit (5 s) of s1's route to s3
        Assert.True(farm.Serves("s3", subject) && !farm.RouteUp("s1", "s3"), "the test needs s3 still the owner, unreached from s1: " + farm.Describe());
        Assert.Equal(dropped, farm.DroppedBy("s1")); // nothing refused: nobody to tell

        // The route has been down longer than the stall limit now. A script that publishes and
        // closes a moment later must not have its publication refused at once (it was "told" on a
        // connection about to close, and lost: real processes, 8 of 40): each publication waits
        // the limit itself, and by then its publisher has gone.
        var script = farm.AddClient("script", "s1", [], reconnect: false);
        farm.Eventually(() => script.IsWelcomed, TimeSpan.FromSeconds(5), "the script welcomed");
        Assert.True(script.Publish(subject, "v", 21));
        farm.Run(TimeSpan.FromMilliseconds(500)); // two housekeeping ticks
        Assert.DoesNotContain(script.Events, e => e.Line.StartsWith("ERR ", StringComparison.Ordinal));
        script.Stop();

        farm.Heal();
        farm.Eventually(() => watcher.Events.Any(e => e.Line.Contains(" v=21", StringComparison.Ordinal)), TimeSpan.FromSeconds(20), $"v=21 at s3's subscriber after the heal (seed {seed})");
        Assert.Contains(watcher.Events, e => e.Line.Contains(" v=20", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PublicationsRefusedAfterTheOwnersRouteStalled_AreNeverAppliedWhenThePartitionHeals(int seed)
    {
        // s1 and s3 cannot reach each other (s2 reaches both, so s3 stays the owner). s1's
        // publisher sends 20 publications at once: s1 writes them on its route to s3 before the
        // route is taken as down, so they sit in that connection's unsent bytes. After the stall
        // limit they are refused and the publisher told (ERR UNAVAILABLE: not applied). When the
        // partition healed, the old connection used to deliver them after all (as TCP retransmits
        // after an orderly close), and the owner applied what its publisher had been told was not:
        // the route given up for silence now ends with a reset.
        using var farm = ConvergedFarm(seed);
        var (subject, publisher, watcher) = PublisherAtS1_WatcherAtS3(farm, "/refused/");

        farm.Partition(["s1"], ["s3"]);
        for (var v = 1; v <= 20; v++)
        {
            Assert.True(publisher.Publish(subject, "v", v));
        }

        farm.Eventually(() => publisher.Events.Count(e => e.Line.StartsWith("ERR UNAVAILABLE ", StringComparison.Ordinal)) == 20, TimeSpan.FromSeconds(20), "the 20 publications refused, their publisher told");
        Assert.True(farm.Serves("s3", subject), "the test needs s3 still the owner: " + farm.Describe());

        farm.Heal();
        farm.Eventually(() => farm.RouteUp("s1", "s3") && publisher.Publish(subject, "v", 21) && watcher.Events.Any(e => e.Line.Contains(" v=21", StringComparison.Ordinal)), TimeSpan.FromSeconds(20), "v=21 at s3's subscriber after the heal", TimeSpan.FromMilliseconds(200));
        farm.Run(TimeSpan.FromSeconds(2));
        var applied = watcher.Events.Where(e => Enumerable.Range(1, 20).Any(v => e.Line.EndsWith($" v={v}", StringComparison.Ordinal))).ToList();
        Assert.True(applied.Count == 0, $"publications refused to their publisher were applied at the owner (seed {seed}): {string.Join("; ", applied)}");
    }

    /// <summary>
    /// In a farm of s1-s3: a subject s3 owns (the first <c>prefix0</c>, <c>prefix1</c>, ...), a
    /// publisher at s1 and a subscriber of it at s3, once the publisher's <c>v=0</c> reached it.
    /// </summary>
    private static (string Subject, SimClient Publisher, SimClient Watcher) PublisherAtS1_WatcherAtS3(SimFarm farm, string prefix)
    {
        var subject = OwnedBy(new StreamFarm.Protocol.Ownership(["s1", "s2", "s3"]), "s3", prefix);
        var publisher = farm.AddClient("pub", "s1", [], reconnect: false);
        var watcher = farm.AddClient("watch", "s3", [subject], reconnect: false);
        farm.Eventually(() => publisher.IsWelcomed && watcher.IsWelcomed, TimeSpan.FromSeconds(10), "both clients welcomed");
        Assert.True(publisher.Publish(subject, "v", 0));
        farm.Eventually(() => watcher.Events.Any(e => e.Line.Contains(" v=0", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "v=0 applied at s3");
        return (subject, publisher, watcher);
    }

    /// <summary>A simulated farm (preset <c>lan</c>) once every server sees every other and its routes are up.</summary>
    private static SimFarm ConvergedFarm(int seed, int servers = 3)
    {
        var farm = new SimFarm(new SimFarmOptions { Servers = servers, Seed = seed, Preset = "lan" });
        farm.Eventually(farm.Converged, TimeSpan.FromSeconds(30), "farm converged");
        return farm;
    }

    /// <summary>The first subject <c>prefix0</c>, <c>prefix1</c>, ... that <paramref name="owners"/> give to <paramref name="owner"/>.</summary>
    private static string OwnedBy(StreamFarm.Protocol.Ownership owners, string owner, string prefix) =>
        Enumerable.Range(0, 100).Select(i => $"{prefix}{i}").First(s => owners.OwnerOf(s) == owner);
}
