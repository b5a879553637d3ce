using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>A server with far more than its share of the farm's users asks half of its excess to move.</summary>
public sealed class RebalanceTests
{
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(60, 32).Select(i => (byte)i).ToArray());

    [Theory]
    [InlineData(30, 0, 8)]   // share 15 each: excess 15, half of it (rounded up) moves
    [InlineData(30, 24, 0)]  // share 27: 30 is within 10 % of it
    [InlineData(40, 20, 5)]  // share 30: an excess of 10, the minimum: half of it moves
    [InlineData(14, 0, 0)]   // share 7: twice its share, but an excess of 7 is under the minimum of 10
    public async Task OverloadedServer_SendsMoveRebalance_ToHalfItsExcess(int onFirst, int onSecond, int expectedMoves)
    {
        await using var first = await StartAsync("a", null);
        await using var second = await StartAsync("b", first.GossipAddress);
        await Eventually.TrueAsync(() => first.Server.Farm.Current.Members.Count(m => m.State == "active" && m.Liveness == "alive") == 2, "the farm of two converges");

        var clients = new List<LineClient>();
        var moved = 0;
        try
        {
            for (var i = 0; i < onSecond; i++)
            {
                clients.Add(await second.ConnectAsync());
            }

            await Eventually.TrueAsync(() => first.Server.Farm.Current.Members.Any(m => m.Id == "b" && m.Users == onSecond), "a sees b's users");
            for (var i = 0; i < onFirst; i++)
            {
                var c = await first.ConnectAsync();
                clients.Add(c);
                _ = Task.Run(async () =>
                {
                    while (await c.NextAsync() is { } line)
                    {
                        if (line == "MOVE REBALANCE")
                        {
                            Interlocked.Increment(ref moved);
                        }
                    }
                });
            }

            first.Server.Options.Rebalance.Enabled = true; // only now that every client is connected
            if (expectedMoves > 0)
            {
                await Eventually.TrueAsync(() => Volatile.Read(ref moved) == expectedMoves, $"{expectedMoves} clients get MOVE REBALANCE (got {Volatile.Read(ref moved)})");
            }
            else
            {
                // Several rebalance checks pass (the housekeeping timer runs every 250 ms).
                await Task.Delay(TimeSpan.FromSeconds(1.5));
            }

            Assert.Equal(expectedMoves, first.Server.RebalanceMoves);
            Assert.Equal(0, second.Server.RebalanceMoves);
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync();
            }
        }
    }

    private static Task<StreamFarmNode> StartAsync(string id, string? seed) => TestNode.StartAsync(o =>
    {
        o.Id = id;
        o.Capacity = 100;
        o.Farm.GossipKeys = [Key];
        o.Farm.GossipPort = 0;
        o.Farm.Preset = "local";
        o.Farm.Name = "rebalance-tests";
        o.Farm.Seeds = seed is null ? [] : [seed];
        o.Rebalance.Enabled = false;                      // switched on by the test once clients are in place
        o.Rebalance.Interval = TimeSpan.FromMinutes(10);  // one round: the test's clients do not move
    });
}
