using System.Text.Json;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

public sealed class HttpTests
{
    [Fact]
    public async Task Healthz_Farm_Metrics_ReflectLiveState()
    {
        await using var node = await TestNode.StartAsync(o => { o.Id = "web1"; o.Group = "eu"; o.Capacity = 500; });
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PUB /m v=1");
        await c.SendAsync("SUB /m");
        await c.ExpectAsync("IMAGE ");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{node.HttpEndPoint.Port}") };

        Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));

        using var farm = JsonDocument.Parse(await http.GetStringAsync("/farm"));
        var me = Assert.Single(farm.RootElement.EnumerateArray().ToList());
        Assert.Equal("web1", me.GetProperty("id").GetString());
        Assert.Equal("eu", me.GetProperty("group").GetString());
        Assert.Equal("active", me.GetProperty("state").GetString());
        Assert.Equal("alive", me.GetProperty("liveness").GetString());
        Assert.Equal(500, me.GetProperty("capacity").GetInt32());
        Assert.Equal($"127.0.0.1:{node.TcpEndPoint.Port}", me.GetProperty("addresses").GetProperty("tcp").GetString());

        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("streamfarm_connections 1", metrics, StringComparison.Ordinal);
        Assert.Contains("streamfarm_users 1", metrics, StringComparison.Ordinal);
        Assert.Contains("streamfarm_subscriptions 1", metrics, StringComparison.Ordinal);
        Assert.Contains("streamfarm_messages_in_total", metrics, StringComparison.Ordinal);
        Assert.Contains("streamfarm_conflations_total 0", metrics, StringComparison.Ordinal);
        Assert.Contains("streamfarm_slow_consumer_closes_total 0", metrics, StringComparison.Ordinal);

        var page = await http.GetStringAsync("/status");
        Assert.Contains("web1", page, StringComparison.Ordinal);
        Assert.Contains("<title>StreamFarm dashboard</title>", await http.GetStringAsync("/"), StringComparison.Ordinal);
        Assert.Contains("<title>StreamFarm price grid</title>", await http.GetStringAsync("/grid"), StringComparison.Ordinal);
        using var script = await http.GetAsync("/assets/dashboard.js");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.True((await script.Content.ReadAsByteArrayAsync()).Length > 10_000); // the client and uPlot, bundled
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync("/assets/nope.js")).StatusCode);
    }

    [Fact]
    public async Task FarmUsers_UpdatedAndPushedAsDelta()
    {
        await using var node = await TestNode.StartAsync();
        await using var watcher = await node.ConnectAsync();
        await using var other = await node.ConnectAsync();

        // The table is refreshed on a timer; wait (by outcome) for the delta that shows two users.
        string? line;
        do
        {
            line = await watcher.ReadLineAsync();
        }
        while (line is not null && !(line.StartsWith("SERVER ", StringComparison.Ordinal) && line.Contains(" users=2 ", StringComparison.Ordinal)));

        Assert.NotNull(line);
        Assert.Equal(2, node.Server.Farm.Current.Members[0].Users);
    }
}
