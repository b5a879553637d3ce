using System.Net;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;
using StreamFarm.Client.Tests.Kit;

namespace StreamFarm.Client.Tests;

/// <summary>
/// The farm client against a real farm in this process: three servers with membership on
/// 127.0.5.2-4 (one RTTP port for all, as in a farm), the farm's DNS zone answered by s2 on
/// 127.0.5.1. Every step is observed on <see cref="FarmClient.Steps"/>; outcomes are polled with
/// a generous deadline and nothing asserts on speed. Killing a server abruptly or hanging it needs
/// a real process: see StreamFarm.Cli.Tests/ClientFailoverProcessTests.
/// </summary>
public sealed class FarmClientTests
{
    private const string Subnet = "127.0.5";

    private static Func<string, bool> Has(string text) => s => s.Contains(text, StringComparison.Ordinal);

    [Fact]
    public async Task TwoStepConnect_EveryStepInOrder_ThenTheStreamFlows()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/STEPS");
        var selector = new RecordingSelector(Selectors.FewestUsers().ActiveOnly());
        await using var watch = new ClientWatch(ClientWatch.Options(farm, selector, seed: 42));
        await watch.StartAsync("/CT/STEPS");

        var chosen = Assert.Single(selector.Calls).Choice;
        Assert.NotNull(chosen);
        var id = chosen.Server.Id;
        var steps = await watch.StepsInOrderAsync(0,
            (StepKind.Resolved, null), (StepKind.FirstServer, null), (StepKind.TableReceived, null),
            (StepKind.Chosen, null), (StepKind.Moved, null), (StepKind.Subscribed, null));

        // Exactly these steps, nothing failed or retried on the way.
        Assert.Equal(steps, watch.Steps.Take(6));
        Assert.StartsWith($"{LoopbackFarm.ServiceName} -> {Subnet}.", steps[0].Text, StringComparison.Ordinal);
        var first = farm.Ids.Single(s => steps[1].Text.StartsWith($"first server {s} at {farm.AddressOf(s)}:{LoopbackFarm.Port}", StringComparison.Ordinal));
        Assert.Contains($"{farm.AddressOf(first)}", steps[0].Text, StringComparison.Ordinal);
        Assert.All(farm.Ids, s => Assert.Contains($"{s} active/alive", steps[2].Text, StringComparison.Ordinal));
        Assert.Equal(chosen.Reason, steps[3].Text);
        Assert.StartsWith($"{id}: group default, ", steps[3].Text, StringComparison.Ordinal);
        Assert.Contains("(fewest users of 3)", steps[3].Text, StringComparison.Ordinal);
        Assert.StartsWith(id == first ? $"staying on {id}" : $"moved to {id} at {farm.AddressOf(id)}:{LoopbackFarm.Port}; closed {first}", steps[4].Text, StringComparison.Ordinal);
        Assert.Equal($"1 subscription(s) on {id}", steps[5].Text);
        Assert.Equal(id, watch.Client.ServerId);
        Assert.Equal(3, watch.Client.Table.Members.Count);

        // The stream: the image, then updates, all from the chosen server, counting up.
        var image = await watch.MessageAsync(0, m => m.Message.Kind == RttpMessageKind.Image, "an image");
        Assert.Equal(id, image.Server);
        Assert.Equal("/CT/STEPS", image.Message.Subject);
        Assert.Equal(Continuity.Continuous, image.Continuity);
        var updates = await watch.UpdatesAsync(0, id, 5);
        Assert.All(updates, u => Assert.Equal(Continuity.Continuous, u.Continuity));
        Assert.True(updates.Zip(updates.Skip(1)).All(p => p.Second.Message.Seq > p.First.Message.Seq), "sequence numbers increase");
        Assert.DoesNotContain(watch.Steps, s => s.Kind is StepKind.Failed or StepKind.Lost or StepKind.Retried or StepKind.Rediscovered);
    }

    [Fact]
    public async Task FewestUsers_ChoosesTheLeastLoaded_AndMovesMakeBeforeBreak()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet, o => o.Dns.AnswerCount = 3);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/FEWEST");

        // Loads: s2 5/100 (publisher and 4 idle users), s3 3/100, s4 1/100 (the publisher).
        var ballast = new List<RttpConnection>();
        try
        {
            foreach (var (server, n) in new[] { ("s2", 4), ("s3", 2) })
            {
                for (var i = 0; i < n; i++)
                {
                    ballast.Add(await RttpConnection.ConnectAsync(farm.AddressOf(server).ToString(), LoopbackFarm.Port));
                }
            }

            await farm.UsersSeenEverywhereAsync(new Dictionary<string, int> { ["s2"] = 5, ["s3"] = 3, ["s4"] = 1 });

            // The DNS answer is put in the order that makes the most loaded server the first one.
            var selector = new RecordingSelector(Selectors.FewestUsers().ActiveOnly());
            var resolver = new FirstAddressResolver(new DnsServerResolver(farm.DnsEndPoint), farm.AddressOf("s2"));
            var mark = farm.Sessions.Mark();
            await using var watch = new ClientWatch(ClientWatch.Options(farm, selector, seed: 7, resolver));
            await watch.StartAsync("/CT/FEWEST");

            // The choice: the least loaded of the table the first server sent.
            var (candidates, choice) = Assert.Single(selector.Calls);
            Assert.NotNull(choice);
            Assert.Equal(3, candidates.Count);
            Assert.Equal("s4", choice.Server.Id);
            Assert.Equal(candidates.Min(m => (double)m.Users / m.Capacity), (double)choice.Server.Users / choice.Server.Capacity);
            Assert.StartsWith("s4: group default, 1/100 users, table v", choice.Reason, StringComparison.Ordinal);

            await watch.StepsInOrderAsync(0,
                (StepKind.Resolved, Has($"-> {farm.AddressOf("s2")}, ")),
                (StepKind.FirstServer, Has("first server s2 ")),
                (StepKind.TableReceived, null),
                (StepKind.Chosen, Has("s4: ")),
                (StepKind.Moved, Has("moved to s4 ")),
                (StepKind.Subscribed, Has("on s4")));
            Assert.Equal("s4", watch.Client.ServerId);
            var image = await watch.MessageAsync(0, m => m.Message.Kind == RttpMessageKind.Image, "an image");
            Assert.Equal("s4", image.Server);
            await watch.UpdatesAsync(0, "s4", 3);

            // The first connection is gone, the second stays.
            await Eventually.TrueAsync(
                () => farm["s2"].Server.Connections == 5 && farm["s4"].Server.Connections == 2 && farm.Sessions.Events.Count(e => e.Seq > mark && e.Node == "s2") == 2,
                () => $"connections s2 {farm["s2"].Server.Connections} (5 expected), s4 {farm["s4"].Server.Connections} (2 expected); sessions: {string.Join("; ", farm.Sessions.Events.Where(e => e.Seq > mark))}");

            // Make-before-break: the session on s4 started before the one on s2 ended.
            var events = farm.Sessions.Events.Where(e => e.Seq > mark).ToList();
            var onFirst = events.Where(e => e.Node == "s2").ToList();
            Assert.Equal(2, onFirst.Count);
            Assert.True(onFirst[0].Started && !onFirst[1].Started && onFirst[0].Session == onFirst[1].Session, string.Join("; ", onFirst));
            var onChosen = Assert.Single(events, e => e.Node == "s4");
            Assert.True(onChosen.Started);
            Assert.True(onFirst[0].Seq < onChosen.Seq && onChosen.Seq < onFirst[1].Seq, $"order: {string.Join("; ", events)}");
            Assert.DoesNotContain(events, e => e.Node == "s3");
        }
        finally
        {
            foreach (var c in ballast)
            {
                await c.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task GracefulStop_ServerSendsMove_ClientMovesElsewhere_AndKeepsReceiving()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/MOVE");
        await using var watch = new ClientWatch(ClientWatch.Options(farm, Selectors.Default(), seed: 3));
        await watch.StartAsync("/CT/MOVE");
        var before = watch.Client.ServerId!;
        await watch.UpdatesAsync(0, before, 3);

        var steps = watch.Steps.Count;
        var messages = watch.Messages.Count;
        var lastBefore = watch.Messages.Last(m => m.Message.Kind == RttpMessageKind.Update);
        await farm[before].StopAsync();

        var moved = await watch.StepsInOrderAsync(steps,
            (StepKind.Lost, Has($"server {before} asks clients to move: MOVE SHUTDOWN")),
            (StepKind.Chosen, null),
            (StepKind.Moved, Has("moved to ")),
            (StepKind.Subscribed, null));
        var after = watch.Client.ServerId;
        Assert.NotNull(after);
        Assert.NotEqual(before, after);
        Assert.Contains(after, farm.Ids);
        Assert.StartsWith($"{after}: ", moved[1].Text, StringComparison.Ordinal);
        Assert.Contains($"; left {before}", moved[2].Text, StringComparison.Ordinal);
        Assert.Equal($"1 subscription(s) on {after}", moved[3].Text);

        // A MOVE is obeyed at once: no retry of the stopping server, no rediscovery.
        Assert.DoesNotContain(watch.Steps.Skip(steps), s => s.Kind is StepKind.Retried or StepKind.Rediscovered);

        // The stream goes on from the new server. With routes the subject has one history in the
        // farm, so the image continues it (same epoch), unless the stopped server owned the
        // subject: then its new owner began a new epoch and the image is fresh.
        var image = await watch.MessageAsync(messages, m => m.Message.Kind == RttpMessageKind.Image, "an image after the move");
        Assert.Equal(after, image.Server);
        Assert.True(image.Continuity != Continuity.Fresh || image.Message.Epoch != lastBefore.Message.Epoch, $"a fresh image only with a new epoch: {image.Continuity}");
        var updates = await watch.UpdatesAsync(messages, after, 5);
        Assert.All(updates, u => Assert.Equal(Continuity.Continuous, u.Continuity));
        Assert.True(updates.Zip(updates.Skip(1)).All(p => p.Second.Message.Seq > p.First.Message.Seq), "sequence numbers increase");
    }

    [Fact]
    public async Task DnsStillHandsOutADeadServer_ClientRetriesRediscoversAndRecovers()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/STALE");

        // Nothing listens on .9: a server gone while the DNS system (its TTL, its membership delay)
        // still hands it out, first alone, then in front of the live ones.
        var dead = IPAddress.Parse($"{Subnet}.9");
        var resolver = new StaleResolver(new DnsServerResolver(farm.DnsEndPoint), dead, staleAnswers: 2);
        await using var watch = new ClientWatch(ClientWatch.Options(farm, Selectors.Default(), seed: 5, resolver));
        await watch.StartAsync("/CT/STALE");

        var deadAt = $"{dead}:{LoopbackFarm.Port}";
        await watch.StepsInOrderAsync(0,
            (StepKind.Resolved, Has($"-> {dead}")),
            (StepKind.Failed, Has(deadAt)),
            (StepKind.Rediscovered, Has("asking for stream.farm.test again")), // the first new round starts at once
            (StepKind.Resolved, Has($"-> {dead}")),
            (StepKind.Failed, Has(deadAt)),
            (StepKind.Rediscovered, Has("round 2")),
            (StepKind.Resolved, Has($"-> {dead}, {Subnet}.")),
            (StepKind.Failed, Has(deadAt)),
            (StepKind.FirstServer, null),
            (StepKind.TableReceived, null),
            (StepKind.Chosen, null),
            (StepKind.Moved, null),
            (StepKind.Subscribed, null));
        Assert.Equal(3, resolver.Calls);
        var id = watch.Client.ServerId!;
        Assert.Contains(id, farm.Ids);
        await watch.UpdatesAsync(0, id, 3);
    }

    [Fact]
    public async Task ChosenServerRefusesWhileDraining_ClientObeysAndChoosesAnother()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet, o => o.Dns.AnswerCount = 3);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/REFUSED");
        farm["s4"].Server.BeginDrain(TimeSpan.Zero);

        // The selector insists on s4 (draining or not); the DNS answer is put in the order that makes s2 the first server.
        var resolver = new FirstAddressResolver(new DnsServerResolver(farm.DnsEndPoint), farm.AddressOf("s2"));
        await using var watch = new ClientWatch(ClientWatch.Options(farm, new OrderSelector("s4", "s3", "s2"), seed: 11, resolver));
        await watch.StartAsync("/CT/REFUSED");

        await watch.StepsInOrderAsync(0,
            (StepKind.FirstServer, Has("first server s2 ")),
            (StepKind.TableReceived, null),
            (StepKind.Chosen, Has("s4: ")),
            (StepKind.Failed, Has("DRAINING")),
            (StepKind.Chosen, Has("s3: ")),
            (StepKind.Moved, Has("moved to s3 ")),
            (StepKind.Subscribed, Has("on s3")));

        // A refusal is obeyed: no second try of the refusing server, no new round of discovery.
        Assert.DoesNotContain(watch.Steps, s => s.Kind is StepKind.Retried or StepKind.Rediscovered or StepKind.Lost);
        Assert.Equal("s3", watch.Client.ServerId);
        await watch.UpdatesAsync(0, "s3", 3);
    }

    [Fact]
    public async Task ChosenServerServesAnotherGroupOnly_RefusesWithWrongGroup_ClientChoosesAnother()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet, o =>
        {
            o.Dns.AnswerCount = 3;
            if (o.Id == "s4")
            {
                o.Group = "west";
                o.GroupOnly = true;
            }
        });
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/GROUP");

        // The selector insists on s4 (group west, which serves its own group only); the client is of group east.
        var resolver = new FirstAddressResolver(new DnsServerResolver(farm.DnsEndPoint), farm.AddressOf("s2"));
        var options = ClientWatch.Options(farm, new OrderSelector("s4", "s3", "s2"), seed: 17, resolver) with
        {
            Connection = new RttpConnectionOptions { ClientName = "client-test", Group = "east" },
        };
        await using var watch = new ClientWatch(options);
        await watch.StartAsync("/CT/GROUP");

        await watch.StepsInOrderAsync(0,
            (StepKind.FirstServer, Has("first server s2 ")),
            (StepKind.Chosen, Has("s4: ")),
            (StepKind.Failed, Has("WRONG_GROUP")),
            (StepKind.Chosen, Has("s3: ")),
            (StepKind.Moved, Has("moved to s3 ")),
            (StepKind.Subscribed, Has("on s3")));
        Assert.DoesNotContain(watch.Steps, s => s.Kind is StepKind.Retried or StepKind.Rediscovered);
        await watch.UpdatesAsync(0, "s3", 3);
    }

    [Fact]
    public async Task DrainedServer_MovesItsClientAway_AndTheStreamGoesOn()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/CT/DRAIN");
        await using var watch = new ClientWatch(ClientWatch.Options(farm, Selectors.Default(), seed: 13));
        await watch.StartAsync("/CT/DRAIN");
        var before = watch.Client.ServerId!;
        await watch.UpdatesAsync(0, before, 3);

        var steps = watch.Steps.Count;
        var messages = watch.Messages.Count;
        var lastBefore = watch.Messages.Last(m => m.Message.Kind == RttpMessageKind.Update);
        farm[before].Server.BeginDrain(TimeSpan.FromMilliseconds(200));

        var moved = await watch.StepsInOrderAsync(steps,
            (StepKind.Lost, Has($"server {before} asks clients to move: MOVE DRAINING")),
            (StepKind.Chosen, null),
            (StepKind.Moved, Has("moved to ")),
            (StepKind.Subscribed, null));
        var after = watch.Client.ServerId;
        Assert.NotNull(after);
        Assert.NotEqual(before, after);
        Assert.Equal($"1 subscription(s) on {after}", moved[3].Text);
        // With routes the subject has one history in the farm: the new server's image continues it
        // (same epoch, later seq), unless the drained server owned the subject, whose new owner
        // then began a new epoch.
        var image = await watch.MessageAsync(messages, m => m.Message.Kind == RttpMessageKind.Image && m.Server == after, "an image from the new server");
        Assert.True(image.Continuity != Continuity.Fresh || image.Message.Epoch != lastBefore.Message.Epoch, $"a fresh image only with a new epoch: {image.Continuity} {image.Message.Epoch}/{image.Message.Seq} after {lastBefore.Message.Epoch}/{lastBefore.Message.Seq}");
        Assert.True(image.Message.Epoch != lastBefore.Message.Epoch || image.Message.Seq >= lastBefore.Message.Seq, "no older image within one history");
        await watch.UpdatesAsync(messages, after, 5);
    }
}
