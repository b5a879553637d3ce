using System.Net;
using StreamFarm.Client.Tests.Kit;

namespace StreamFarm.Client.Tests;

/// <summary>
/// Failover without a wasted round: two scripted servers (f1 on 127.0.42.2, f2 on 127.0.42.3, one
/// port) and a DNS system that goes on naming only f1 after f1 is gone (its TTL, its membership
/// delay). The client keeps the claimed order (f1 once more, then DNS again) and then passes over
/// the stale answer, choosing from the table it holds; with a warm standby it subscribes on the
/// standby's connection. Steps and lines are awaited; nothing asserts on speed.
/// </summary>
public sealed class FailoverTests
{
    private static readonly IPAddress F1 = IPAddress.Parse("127.0.42.2");
    private static readonly IPAddress F2 = IPAddress.Parse("127.0.42.3");

    private static Func<string, bool> Has(string text) => s => s.Contains(text, StringComparison.Ordinal);

    private static async Task<(ScriptedServer F1, ScriptedServer F2)> StartAsync(int basePort)
    {
        string Table() =>
            "FARM 1 2\n" +
            $"SERVER 1 id=f1 group=default state=active liveness=alive users=1 capacity=100 tcp={F1}:{basePort} ws=ws://{F1}:1/rttp http=http://{F1}:1\n" +
            $"SERVER 1 id=f2 group=default state=active liveness=alive users=1 capacity=100 tcp={F2}:{basePort} ws=ws://{F2}:1/rttp http=http://{F2}:1\n";
        var f1 = new ScriptedServer(F1, basePort, "f1", Table);
        var f2 = new ScriptedServer(F2, basePort, "f2", Table);
        await Task.CompletedTask;
        return (f1, f2);
    }

    private static FarmClientOptions Options(int port, StandbyMode standby) => new()
    {
        ServiceName = "scripted.test",
        Port = port,
        Resolver = new FixedResolver(F1), // f1 only, before and after it is gone
        Selector = new OrderSelector("f1", "f2"),
        Random = new Random(5),
        HeartbeatTimeout = TimeSpan.FromMinutes(1),
        Standby = standby,
    };

    [Fact]
    public async Task DnsNamesOnlyTheServerJustLost_ClientPassesOverIt_AndChoosesFromTheTableHeld()
    {
        var (f1, f2) = await StartAsync(17442);
        await using var s1 = f1;
        await using var s2 = f2;
        await using var watch = new ClientWatch(Options(17442, standby: StandbyMode.None));
        var start = watch.StartAsync("/FO/x");
        var onF1 = await f1.NextAsync();
        await start;
        Assert.Equal("SUB /FO/x", await onF1.NextAsync());

        var before = watch.Steps.Count;
        f1.StopListening();
        onF1.Dispose();

        await watch.StepsInOrderAsync(before,
            (StepKind.Lost, Has("server f1 ")),
            (StepKind.Retried, Has($"{F1}:17442 once more")),
            (StepKind.Failed, Has($"{F1}:17442")),
            (StepKind.Rediscovered, null),
            (StepKind.Resolved, Has($"-> {F1}")),
            (StepKind.PassedOver, Has($"DNS named only {F1}")),
            (StepKind.Chosen, Has("f2: ")),
            (StepKind.Moved, Has("moved to f2 ")),
            (StepKind.Subscribed, Has("on f2")));
        var onF2 = await f2.NextAsync();
        Assert.Equal("SUB /FO/x", await onF2.NextAsync());
        Assert.Equal("f2", watch.Client.ServerId);

        // One round: no second DNS question, no backoff.
        Assert.Single(watch.Steps.Skip(before), s => s.Kind == StepKind.Resolved);
    }

    [Fact]
    public async Task PassingOver_AServerLostEarlierAndBackSince_IsStillChosen_OnlyTheOneLostLastIsNot()
    {
        var (f1, f2) = await StartAsync(17444);
        await using var s1 = f1;
        var s2 = f2;
        try
        {
            var options = Options(17444, standby: StandbyMode.None) with { Selector = new OrderSelector("f2", "f1") };
            await using var watch = new ClientWatch(options);
            var start = watch.StartAsync("/FO/z");
            await f1.NextAsync(); // the first server, left for f2
            var onF2 = await s2.NextAsync();
            await start;

            // f2 is lost: the client goes back through DNS to f1 and stays there (f2 is on its lost-lately list).
            var before = watch.Steps.Count;
            s2.StopListening();
            onF2.Dispose();
            await watch.StepsInOrderAsync(before, (StepKind.Lost, Has("server f2 ")), (StepKind.FirstServer, Has("f1")), (StepKind.Subscribed, Has("on f1")));
            var onF1 = await f1.NextAsync();

            // f2 comes back; then f1 is lost while DNS names only f1.
            await s2.DisposeAsync();
            s2 = new ScriptedServer(F2, 17444, "f2", () =>
                "FARM 1 2\n" +
                $"SERVER 1 id=f1 group=default state=active liveness=alive users=1 capacity=100 tcp={F1}:17444 ws=ws://{F1}:1/rttp http=http://{F1}:1\n" +
                $"SERVER 1 id=f2 group=default state=active liveness=alive users=1 capacity=100 tcp={F2}:17444 ws=ws://{F2}:1/rttp http=http://{F2}:1\n");
            before = watch.Steps.Count;
            f1.StopListening();
            onF1.Dispose();
            await watch.StepsInOrderAsync(before,
                (StepKind.Lost, Has("server f1 ")),
                (StepKind.PassedOver, null),
                (StepKind.Chosen, Has("f2: ")),
                (StepKind.Moved, Has("moved to f2 ")),
                (StepKind.Subscribed, Has("on f2")));
        }
        finally
        {
            await s2.DisposeAsync();
        }
    }

    [Fact]
    public async Task WarmStandby_AfterRetryAndDns_SubscribesOnTheStandbyConnection()
    {
        var (f1, f2) = await StartAsync(17443);
        await using var s1 = f1;
        await using var s2 = f2;
        await using var watch = new ClientWatch(Options(17443, standby: StandbyMode.Warm));
        var start = watch.StartAsync("/FO/y");
        var onF1 = await f1.NextAsync();
        await start;
        Assert.Equal("SUB /FO/y", await onF1.NextAsync());

        // The standby: a session on f2, nothing subscribed.
        var standby = await f2.NextAsync();
        await watch.StepsInOrderAsync(0, (StepKind.StandbyReady, Has("warm standby on f2 ")));
        Assert.Equal("f2", watch.Client.StandbyServerId);

        var before = watch.Steps.Count;
        f1.StopListening();
        onF1.Dispose();

        await watch.StepsInOrderAsync(before,
            (StepKind.Lost, Has("server f1 ")),
            (StepKind.Retried, Has($"{F1}:17443 once more")),
            (StepKind.Rediscovered, null),
            (StepKind.Resolved, null),
            (StepKind.Chosen, Has("f2: the standby")),
            (StepKind.Moved, Has("moved to the standby f2")),
            (StepKind.Subscribed, Has("on f2")));

        // Subscribed on the connection opened before the loss.
        Assert.Equal("SUB /FO/y", await standby.NextAsync());
        Assert.Equal("f2", watch.Client.ServerId);
    }

    [Fact]
    public async Task HotStandby_KeepsTheRecordUndelivered_ThenHandsItOverAsAnImage_WithoutSubscribingAgain()
    {
        var (f1, f2) = await StartAsync(17445);
        await using var s1 = f1;
        await using var s2 = f2;
        await using var watch = new ClientWatch(Options(17445, standby: StandbyMode.Hot));
        var start = watch.StartAsync("/FO/h");
        var onF1 = await f1.NextAsync();
        await start;
        Assert.Equal("SUB /FO/h", await onF1.NextAsync());
        await onF1.SendAsync("IMAGE /FO/h 5 9 a=0\n");

        // The standby subscribes too; what it receives is kept, not delivered.
        var standby = await f2.NextAsync();
        Assert.Equal("SUB /FO/h", await standby.NextAsync());
        await standby.SendAsync("IMAGE /FO/h 5 10 a=1\nUPDATE /FO/h 5 11 b=2\n");
        await onF1.SendAsync("UPDATE /FO/h 5 10 a=1\n");
        await watch.MessageAsync(0, m => m.Message.Seq == 10, "the update from f1");
        Assert.DoesNotContain(watch.Messages, m => m.Server == "f2");

        var before = watch.Steps.Count;
        var messages = watch.Messages.Count;
        f1.StopListening();
        onF1.Dispose();
        await watch.StepsInOrderAsync(before,
            (StepKind.Lost, Has("server f1 ")),
            (StepKind.Retried, null),
            (StepKind.Resolved, null),
            (StepKind.Chosen, Has("f2: the standby")),
            (StepKind.Moved, Has("moved to the standby f2")),
            (StepKind.Subscribed, Has("0 subscribed now")));

        // The image of the standby's record: the same history, one update later than the application saw.
        var image = await watch.MessageAsync(messages, m => m.Server == "f2", "a message from f2");
        Assert.Equal(RttpMessageKind.Image, image.Message.Kind);
        Assert.Equal((5UL, 11UL), (image.Message.Epoch, image.Message.Seq));
        Assert.Equal(["a=1", "b=2"], image.Message.Fields.Select(f => $"{f.Key}={f.Value}"));
        Assert.Equal(Continuity.Gap, image.Continuity);

        // Then the standby's live stream, on the subscription it already had.
        await standby.SendAsync("UPDATE /FO/h 5 12 a=3\n");
        var update = await watch.MessageAsync(messages, m => m.Server == "f2" && m.Message.Seq == 12, "the next update from f2");
        Assert.Equal(Continuity.Continuous, update.Continuity);
    }

    [Fact]
    public async Task AStandbyOnAServerLostEarlierAndBackSince_IsKept_AndTakenAtTheNextLoss()
    {
        var (f1, f2) = await StartAsync(17446);
        await using var s1 = f1;
        var s2 = f2;
        try
        {
            // Served by f2, warm standby on f1.
            var options = Options(17446, standby: StandbyMode.Warm) with { Selector = new OrderSelector("f2", "f1") };
            await using var watch = new ClientWatch(options);
            var start = watch.StartAsync("/FO/k");
            await f1.NextAsync(); // the first server, left for f2
            var onF2 = await s2.NextAsync();
            await start;
            var standbyOnF1 = await f1.NextAsync();
            await watch.StepsInOrderAsync(0, (StepKind.StandbyReady, Has("warm standby on f1 ")));

            // f2 is lost: the client takes the standby on f1.
            var before = watch.Steps.Count;
            s2.StopListening();
            onF2.Dispose();
            await watch.StepsInOrderAsync(before, (StepKind.Lost, Has("server f2 ")), (StepKind.Moved, Has("moved to the standby f1")));

            // f2 comes back (restarted, within the few seconds a lost server is passed over): the
            // standby made on it welcomed the client, so f2 is up; it is kept, not dropped as lost.
            await s2.DisposeAsync();
            s2 = new ScriptedServer(F2, 17446, "f2", () =>
                "FARM 1 2\n" +
                $"SERVER 1 id=f1 group=default state=active liveness=alive users=1 capacity=100 tcp={F1}:17446 ws=ws://{F1}:1/rttp http=http://{F1}:1\n" +
                $"SERVER 1 id=f2 group=default state=active liveness=alive users=1 capacity=100 tcp={F2}:17446 ws=ws://{F2}:1/rttp http=http://{F2}:1\n");
            before = watch.Steps.Count;
            var standbyOnF2 = await s2.NextAsync();
            await watch.StepsInOrderAsync(before, (StepKind.StandbyReady, Has("warm standby on f2 ")));

            // f1 is lost while DNS names only f1: the standby on f2 serves.
            before = watch.Steps.Count;
            f1.StopListening();
            standbyOnF1.Dispose();
            await watch.StepsInOrderAsync(before,
                (StepKind.Lost, Has("server f1 ")),
                (StepKind.Chosen, Has("f2: the standby")),
                (StepKind.Moved, Has("moved to the standby f2")),
                (StepKind.Subscribed, Has("on f2")));
            Assert.Equal("SUB /FO/k", await standbyOnF2.NextAsync());
        }
        finally
        {
            await s2.DisposeAsync();
        }
    }
    [Fact]
    public async Task HotStandby_ACopyBehindWhatTheApplicationSaw_IsWithheld_AndItsStreamGoesOnPastIt()
    {
        var (f1, f2) = await StartAsync(17447);
        await using var s1 = f1;
        await using var s2 = f2;
        await using var watch = new ClientWatch(Options(17447, standby: StandbyMode.Hot));
        var start = watch.StartAsync("/FO/b");
        var onF1 = await f1.NextAsync();
        await start;
        Assert.Equal("SUB /FO/b", await onF1.NextAsync());

        // The standby's server is a hop further from the owner: its copy is at seq 10...
        var standby = await f2.NextAsync();
        Assert.Equal("SUB /FO/b", await standby.NextAsync());
        await standby.SendAsync("IMAGE /FO/b 5 10 a=1\n");

        // ...while the application already saw seq 11 from f1.
        await onF1.SendAsync("IMAGE /FO/b 5 9 a=0\nUPDATE /FO/b 5 10 a=1\nUPDATE /FO/b 5 11 a=2\n");
        await watch.MessageAsync(0, m => m.Message.Seq == 11, "seq 11 from f1");
        await Eventually.TrueAsync(() => watch.Client.StandbyServerId == "f2", () => "the standby is ready");

        var before = watch.Steps.Count;
        var messages = watch.Messages.Count;
        f1.StopListening();
        onF1.Dispose();
        await watch.StepsInOrderAsync(before, (StepKind.Lost, Has("server f1 ")), (StepKind.Moved, Has("moved to the standby f2")), (StepKind.Subscribed, Has("on f2")));

        // The standby's stream catches up: seq 11 (seen already) is dropped, seq 12 goes on from where the application was.
        await standby.SendAsync("UPDATE /FO/b 5 11 a=2\nUPDATE /FO/b 5 12 a=3\n");
        var next = await watch.MessageAsync(messages, m => m.Server == "f2", "a message from f2");
        Assert.Equal((RttpMessageKind.Update, 12UL, Continuity.Continuous), (next.Message.Kind, next.Message.Seq, next.Continuity));
        Assert.Equal(["a=3"], next.Message.Fields.Select(f => $"{f.Key}={f.Value}"));

        // A value never went back: every message of the subject has a seq at least as high as the one before it.
        var seqs = watch.Messages.Where(m => m.Message.Subject == "/FO/b" && m.Message.Kind is RttpMessageKind.Image or RttpMessageKind.Update).Select(m => m.Message.Seq).ToList();
        Assert.Equal(seqs.Order(), seqs);
    }

    [Fact]
    public async Task HotStandby_ACopyOfAnOlderEpoch_IsWithheld_UntilTheStandbysServerHasTheNewHistory()
    {
        var (f1, f2) = await StartAsync(17448);
        await using var s1 = f1;
        await using var s2 = f2;
        await using var watch = new ClientWatch(Options(17448, standby: StandbyMode.Hot));
        var start = watch.StartAsync("/FO/e");
        var onF1 = await f1.NextAsync();
        await start;
        Assert.Equal("SUB /FO/e", await onF1.NextAsync());
        var standby = await f2.NextAsync();
        Assert.Equal("SUB /FO/e", await standby.NextAsync());

        // f1 already shows the new owner's history (epoch 7); the standby's server still the old one (epoch 5).
        await standby.SendAsync("IMAGE /FO/e 5 40 a=old\n");
        await onF1.SendAsync("IMAGE /FO/e 7 1 a=new\n");
        await watch.MessageAsync(0, m => m.Message.Epoch == 7, "epoch 7 from f1");
        await Eventually.TrueAsync(() => watch.Client.StandbyServerId == "f2", () => "the standby is ready");

        var messages = watch.Messages.Count;
        f1.StopListening();
        onF1.Dispose();
        await watch.StepsInOrderAsync(0, (StepKind.Moved, Has("moved to the standby f2")));
        await standby.SendAsync("UPDATE /FO/e 5 41 a=older\nIMAGE /FO/e 7 2 a=newer\n");
        var next = await watch.MessageAsync(messages, m => m.Server == "f2", "a message from f2");
        Assert.Equal((RttpMessageKind.Image, 7UL, 2UL, Continuity.Gap), (next.Message.Kind, next.Message.Epoch, next.Message.Seq, next.Continuity));
        Assert.DoesNotContain(watch.Messages, m => m.Message.Epoch == 5);
    }

    [Fact]
    public async Task HotStandby_AStaleStatusOfTheStandbysServer_ReachesTheApplication_WithTheImage()
    {
        var (f1, f2) = await StartAsync(17449);
        await using var s1 = f1;
        await using var s2 = f2;
        await using var watch = new ClientWatch(Options(17449, standby: StandbyMode.Hot));
        var start = watch.StartAsync("/FO/s");
        var onF1 = await f1.NextAsync();
        await start;
        Assert.Equal("SUB /FO/s", await onF1.NextAsync());
        await onF1.SendAsync("IMAGE /FO/s 5 3 a=1\n");
        await watch.MessageAsync(0, m => m.Message.Seq == 3, "seq 3 from f1");

        // The standby's server lost the subject's owner: its copy may be out of date.
        var standby = await f2.NextAsync();
        Assert.Equal("SUB /FO/s", await standby.NextAsync());
        await standby.SendAsync("IMAGE /FO/s 5 3 a=1\nSTATUS /FO/s STALE\n");
        await Eventually.TrueAsync(() => watch.Client.StandbyServerId == "f2", () => "the standby is ready");

        var messages = watch.Messages.Count;
        f1.StopListening();
        onF1.Dispose();
        var image = await watch.MessageAsync(messages, m => m.Server == "f2", "the image from f2");
        Assert.Equal((RttpMessageKind.Image, Continuity.Resumed), (image.Message.Kind, image.Continuity));
        var status = await watch.MessageAsync(messages, m => m.Server == "f2" && m.Message.Kind == RttpMessageKind.Status, "a status from f2");
        Assert.Equal(StreamFarm.Protocol.SubjectStatus.Stale, status.Message.Status);
    }
}
