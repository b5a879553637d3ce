using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

/// <summary>
/// Lines a client sent while its server was frozen are not applied late. The farm's ownership
/// fencing needs a pause longer than the shortest dead verdict (4 s with the lan preset), but a
/// client gives up on a silent server after about 2-3 s and may publish newer values elsewhere:
/// a server silent longer than <c>RecordClock.StaleInputLimit</c> (1.5 s) closes its clients
/// with <c>BYE PAUSED</c> instead of applying what waited. Deterministic (fake clock).
/// </summary>
public sealed class StaleInputTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void APublicationSentDuringAPauseShorterThanTheVerdict_IsNotAppliedAfterTheResume(int seed)
    {
        using var farm = new SimFarm(new SimFarmOptions { Servers = 3, Seed = seed, Preset = "lan" });
        farm.Eventually(farm.Converged, TimeSpan.FromSeconds(30), "farm converged");
        var sub = farm.AddClient("sub", "s2", ["/SIM/stale"]);
        var pub = farm.AddClient("pub", "s1", [], reconnect: false);
        farm.Eventually(() => sub.IsWelcomed && pub.IsWelcomed, TimeSpan.FromSeconds(5), "clients welcomed");
        farm.Run(TimeSpan.FromMilliseconds(300));
        Assert.True(pub.Publish("/SIM/stale", "v", 1));
        farm.Eventually(() => sub.Events.Any(e => e.Line.Contains(" v=1", StringComparison.Ordinal)), TimeSpan.FromSeconds(5), "v=1 delivered");

        farm.Pause("s1");
        Assert.True(pub.Publish("/SIM/stale", "v", 2)); // waits in the frozen server's socket
        farm.Run(TimeSpan.FromMilliseconds(2500));
        farm.Resume("s1");
        farm.Run(TimeSpan.FromSeconds(3));

        Assert.Contains(pub.Events, e => e.Line.StartsWith("BYE PAUSED", StringComparison.Ordinal));
        Assert.DoesNotContain(sub.Events, e => e.Line.Contains(" v=2", StringComparison.Ordinal));
    }
}
