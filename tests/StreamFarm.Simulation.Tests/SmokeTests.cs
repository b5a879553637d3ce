using System.Diagnostics;
using StreamFarm.TestKit;
using Xunit.Abstractions;

namespace StreamFarm.Simulation.Tests;

public sealed class SmokeTests(ITestOutputHelper output)
{
    [Fact]
    public void ThreeServers_Converge_AndAPublicationReachesSubscribersEverywhere()
    {
        var sw = Stopwatch.StartNew();
        using var farm = new SimFarm(new SimFarmOptions { Servers = 3, Seed = 1, Logging = true });
        var took = farm.Eventually(farm.Converged, TimeSpan.FromSeconds(20), "farm converged");
        output.WriteLine($"pool baseline {Quiescence.Baseline}, busy now {Quiescence.Busy()}");
        output.WriteLine($"converged after {took.TotalSeconds:0.000}s simulated, {sw.ElapsedMilliseconds} ms real");
        string[] subjects = ["/SIM/a", "/SIM/b", "/SIM/c"];
        var subs = farm.ServerIds.Select((id, i) => farm.AddClient($"sub{i}", id, subjects)).ToList();
        var pub = farm.AddClient("pub0", "s1", []);
        farm.Eventually(() => subs.All(s => s.IsWelcomed) && pub.IsWelcomed, TimeSpan.FromSeconds(5), "clients welcomed");
        farm.Run(TimeSpan.FromMilliseconds(200));
        foreach (var s in subjects)
        {
            Assert.True(pub.Publish(s, "p0", 1));
        }

        farm.Eventually(() => subs.All(c => subjects.All(s => c.Events.Any(e => e.Line.StartsWith($"IMAGE {s} ", StringComparison.Ordinal) || e.Line.StartsWith($"UPDATE {s} ", StringComparison.Ordinal)))), TimeSpan.FromSeconds(5), "publications delivered");
        output.WriteLine($"delivered at {farm.NowMs} ms simulated, {sw.ElapsedMilliseconds} ms real, unsettled steps {farm.UnsettledSteps}");
        foreach (var c in subs)
        {
            foreach (var e in c.Events)
            {
                output.WriteLine($"{c.Name}: {e}");
            }
        }

        farm.Run(TimeSpan.FromSeconds(10));
        output.WriteLine($"10 s more: {sw.ElapsedMilliseconds} ms real, unsettled steps {farm.UnsettledSteps}");
    }
}
