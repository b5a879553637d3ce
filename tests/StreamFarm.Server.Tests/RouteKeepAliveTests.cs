using StreamFarm.Protocol;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// What a quiet route costs: each server's session pings the route every ping interval (its link at
/// the other end must hear from it within three), and the link answers a plain PING only when it has
/// written nothing for <see cref="RttpKeepAlive.QuietPongAfter(TimeSpan, TimeSpan)"/>: enough for the pinging side's idle
/// timeout, not one PONG per PING. Two in-process servers on 127.0.22.2–3 (real sockets).
/// </summary>
public sealed class RouteKeepAliveTests
{
    [Fact]
    public void QuietPongAfter_LeavesThePingingSideWithinItsIdleTimeout()
    {
        var second = TimeSpan.FromSeconds(1);
        Assert.Equal(TimeSpan.FromSeconds(2.5), RttpKeepAlive.QuietPongAfter(second, TimeSpan.FromSeconds(10))); // the defaults
        Assert.Equal(TimeSpan.FromMilliseconds(250), RttpKeepAlive.QuietPongAfter(TimeSpan.FromMilliseconds(100), second));
        Assert.Equal(TimeSpan.FromMilliseconds(200), RttpKeepAlive.QuietPongAfter(TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(2))); // idle - 2 × ping is the smaller
        Assert.Equal(TimeSpan.Zero, RttpKeepAlive.QuietPongAfter(second, TimeSpan.FromSeconds(2))); // no room: every PING answered
        Assert.Equal(TimeSpan.Zero, RttpKeepAlive.QuietPongAfter(second, TimeSpan.Zero)); // idle not announced

        // Whatever the settings, a skipped PING and the next interval stay inside the idle timeout.
        foreach (var (pingMs, idleMs) in new[] { (1000, 10_000), (100, 1000), (1000, 3000), (900, 2000), (50, 60_000), (5000, 10_000) })
        {
            var ping = TimeSpan.FromMilliseconds(pingMs);
            var idle = TimeSpan.FromMilliseconds(idleMs);
            Assert.True(RttpKeepAlive.QuietPongAfter(ping, idle) + ping < idle, $"ping {pingMs} ms, idle {idleMs} ms");
        }
    }

    [Fact]
    public async Task QuietRoute_AnswersFewPingsOfItsPeer_AndIsNeverCutAsIdle()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.22", servers: 2, o =>
        {
            o.Limits.PingInterval = TimeSpan.FromMilliseconds(100);
            // A quiet link answers a PING once it has written nothing for 750 ms (idle / 4), so the
            // peer hears from it at least every 850 ms: 2 s to spare, as a loaded 2-core machine may
            // stall a process for a second (with 1 s the test once saw a route cut and reconnected).
            o.Limits.IdleTimeout = TimeSpan.FromSeconds(3);
        });
        await farm.RoutesUpAsync();
        var nodes = farm.Nodes;
        var connects = nodes.Select(n => n.Server.Routes!.LinkConnects).ToArray();
        var start = nodes.Select(n => n.Server.Routes!.KeepAlive.Pings).ToArray();

        // About two idle timeouts of a quiet route (thirty PINGs per idle timeout to each link).
        await Eventually.TrueAsync(() => nodes.Select((n, i) => n.Server.Routes!.KeepAlive.Pings - start[i]).All(p => p >= 60), "sixty PINGs reach each link");

        for (var i = 0; i < nodes.Count; i++)
        {
            var routes = nodes[i].Server.Routes!;
            var (pings, pongs) = routes.KeepAlive;
            Assert.Equal(connects[i], routes.LinkConnects); // the peer never cut the route as idle, nor did the link find it silent
            Assert.Equal(1, routes.RoutesUp);
            Assert.True(pongs >= 1, "a quiet link must still answer now and then");
            Assert.True(pongs * 2 < pings, $"{nodes[i].Server.Options.Id}: {pongs} PONGs for {pings} PINGs: a quiet link answered most PINGs");
        }
    }
}
