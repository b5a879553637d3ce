
namespace StreamFarm.Server.Tests.Kit;

/// <summary>A real node on 127.0.0.1 with OS-chosen ports; options adjusted per test.</summary>
internal static class TestNode
{
    public static Task<StreamFarmNode> StartAsync(Action<ServerOptions>? configure = null)
    {
        var options = new ServerOptions { Id = "t1", Listen = "127.0.0.1", TcpPort = 0, HttpPort = 0, ShutdownTimeout = TimeSpan.FromSeconds(3) };
        options.Farm.RoutePort = 0; // several nodes may share 127.0.0.1: each gets its own route port, advertised in the farm table
        configure?.Invoke(options);
        return StreamFarmNode.StartAsync(options);
    }

    public static async Task<LineClient> ConnectAsync(this StreamFarmNode node, bool hello = true, string? extra = null)
    {
        var client = await LineClient.ConnectAsync(node.TcpEndPoint);
        if (hello)
        {
            await client.SendAsync("HELLO 1 client=test" + (extra is null ? "" : " " + extra));
            await client.ExpectAsync("WELCOME 1 ");
            await client.ExpectAsync("FARM ");
            await client.ExpectAsync("SERVER ");
        }

        return client;
    }
}
