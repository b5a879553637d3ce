using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void ThreeServers_Converge_AndAPublicationReachesSubscribersEverywhere()
    {
        using var farm = new SimFarm(new SimFarmOptions { Servers = 3, Seed = 1 });
        farm.Eventually(farm.Converged, TimeSpan.FromSeconds(20), "farm converged");
        string[] subjects = ["/SIM/a", "/SIM/b", "/SIM/c"];
        var subs = farm.ServerIds.Select((id, i) => farm.AddClient($"sub{i}", id, subjects)).ToList();
        var pub = farm.AddClient("pub0", "s1", []);
        farm.Eventually(() => subs.All(s => s.IsWelcomed) && pub.IsWelcomed, TimeSpan.FromSeconds(5), "clients welcomed");
        farm.Run(TimeSpan.FromMilliseconds(200));
        foreach (var s in subjects)
        {
            Assert.True(pub.Publish(s, "p0", 1));
        }

        farm.Eventually(() => subs.All(c => subjects.All(s => c.Events.Any(e => e.Line.StartsWith($"IMAGE {s} ", StringComparison.Ordinal) && e.Line.EndsWith(" p0=1", StringComparison.Ordinal)))), TimeSpan.FromSeconds(5), "publications delivered");
    }
}
