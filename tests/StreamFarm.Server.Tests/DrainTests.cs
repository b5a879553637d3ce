using System.Text.Json;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

public sealed class DrainTests
{
    [Fact]
    public async Task Drain_ClientsMovedNewOnesRefused_TableSaysDraining()
    {
        await using var node = await TestNode.StartAsync();
        await using var a = await node.ConnectAsync();
        await using var b = await node.ConnectAsync();
        node.Server.BeginDrain(TimeSpan.Zero);

        Assert.Equal("MOVE DRAINING", await a.ExpectAsync("MOVE"));
        Assert.Equal("MOVE DRAINING", await b.ExpectAsync("MOVE"));
        await a.SendAsync("PING still-served");
        Assert.Equal("PONG still-served", await a.ExpectAsync("PONG"));

        await using var late = await node.ConnectAsync(hello: false);
        Assert.StartsWith("ERR DRAINING ", Assert.Single(await late.ReadToEndAsync()), StringComparison.Ordinal);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{node.HttpEndPoint.Port}") };
        using var farm = JsonDocument.Parse(await http.GetStringAsync("/farm"));
        Assert.Equal("draining", farm.RootElement[0].GetProperty("state").GetString());
    }

    [Fact]
    public async Task DrainEndpoint_FromLoopback_StartsDraining()
    {
        await using var node = await TestNode.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{node.HttpEndPoint.Port}") };
        using var response = await http.PostAsync("/admin/drain?spreadSeconds=1", null);
        Assert.True(response.IsSuccessStatusCode);
        Assert.True(node.Server.IsDraining);
    }
}
