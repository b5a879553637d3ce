using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

public sealed class ShutdownTests
{
    [Fact]
    public async Task Stop_ClientsToldWhyThenClosed_NewConnectionsRefused()
    {
        var node = await TestNode.StartAsync();
        await using var a = await node.ConnectAsync();
        await using var b = await node.ConnectAsync();
        var stopping = node.StopAsync();
        Assert.Equal("BYE SHUTDOWN server stopping", (await a.ReadToEndAsync()).Last());
        Assert.Equal("BYE SHUTDOWN server stopping", (await b.ReadToEndAsync()).Last());
        await stopping;
        Assert.Equal(0, node.Server.Connections);
        await node.DisposeAsync();
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(async () => await LineClient.ConnectAsync(node.TcpEndPoint));
    }

    [Fact]
    public async Task Stop_ClientNotReading_StopStillBounded()
    {
        var node = await TestNode.StartAsync(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(500));
        await using var pub = await node.ConnectAsync();
        await using var stuck = await LineClient.ConnectAsync(node.TcpEndPoint, receiveBuffer: 4096);
        await stuck.SendAsync("HELLO 1");
        await stuck.SendAsync("SUB /big");
        var pad = new string('z', 8000);
        for (var i = 0; i < 2000; i++)
        {
            await pub.SendAsync($"PUB /big n={i} pad={pad}");
        }

        // Completes (the test would hang otherwise) although one client never reads.
        await node.DisposeAsync();
        Assert.Equal(0, node.Server.Connections);
    }
}
