using StreamFarm.Dns.Tests.Kit;
using static StreamFarm.Dns.Tests.Kit.Wire;

namespace StreamFarm.Dns.Tests;

/// <summary>The responder's hot path allocates nothing per query once the zone is built (round robin, the default).</summary>
public sealed class ResponderAllocationTests
{
    [Theory]
    [InlineData("stream.farm.test", A)]
    [InlineData("s2.farm.test", A)]
    [InlineData("_rttp._tcp.stream.farm.test", Srv)]
    [InlineData("nonexistent.farm.test", A)]
    [InlineData("outside.example", A)]
    public void Respond_AllocatesNothingPerQuery(string name, ushort type)
    {
        var responder = Farm.Responder(Farm.Table(Farm.Server(1), Farm.Server(2), Farm.Server(3)));
        var query = Query(name, type, edns: true);
        var response = new byte[65536];
        for (var i = 0; i < 100; i++)
        {
            Assert.True(responder.Respond(query, response, Farm.Client, tcp: false) > 0);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            responder.Respond(query, response, Farm.Client, tcp: false);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
