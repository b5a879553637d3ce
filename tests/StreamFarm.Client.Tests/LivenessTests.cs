using System.Net;
using StreamFarm.Client.Tests.Kit;

namespace StreamFarm.Client.Tests;

/// <summary>
/// A server is judged by the PINGs it leaves unanswered, never by its silence: a scripted server
/// (which never pings of its own) that answers every PING is kept however quiet it is; one that
/// stops answering is left. Counted in PINGs, not asserted in milliseconds.
/// </summary>
public sealed class LivenessTests
{
    private static FarmClientOptions Options(ScriptedServer server) => new()
    {
        ServiceName = "scripted.test",
        Port = server.Port,
        Resolver = new FixedResolver(IPAddress.Loopback),
        Selector = new OrderSelector("f1"),
        Random = new Random(3),
        HeartbeatTimeout = TimeSpan.FromMilliseconds(300),
    };

    [Fact]
    public async Task QuietServerAnsweringPings_IsKept_HoweverLongItSendsNothing()
    {
        await using var server = new ScriptedServer();
        await using var watch = new ClientWatch(Options(server));
        var start = watch.StartAsync();
        var peer = await server.NextAsync();
        await start;

        // Ten heartbeats answered (over three heartbeat timeouts of silence from the server).
        for (var pings = 0; pings < 10;)
        {
            var line = await peer.NextAsync();
            Assert.NotNull(line);
            pings += line.StartsWith("PING", StringComparison.Ordinal) ? 1 : 0;
        }

        Assert.DoesNotContain(watch.Steps, s => s.Kind is StepKind.Lost or StepKind.Retried);
        Assert.Equal("f1", watch.Client.ServerId);
    }

    [Fact]
    public async Task ServerLeavingPingsUnanswered_IsLeftAsHung()
    {
        await using var server = new ScriptedServer();
        await using var watch = new ClientWatch(Options(server));
        var start = watch.StartAsync();
        var peer = await server.NextAsync();
        await start;

        // The peer reads nothing more, so no PING is answered.
        var lost = await watch.StepsInOrderAsync(0, (StepKind.Lost, s => s.Contains("PINGs unanswered", StringComparison.Ordinal)), (StepKind.Retried, null));
        Assert.Contains("3 PINGs unanswered", lost[0].Text, StringComparison.Ordinal);
        peer.Dispose();
    }
}
