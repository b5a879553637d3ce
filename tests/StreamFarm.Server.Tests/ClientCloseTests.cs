using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// What a client sent before it closed is processed: after a half-close (no more input) every line
/// is handled and answered before the server closes; after a full close every line that reached the
/// server is handled. Real loopback sockets.
/// </summary>
public sealed class ClientCloseTests
{
    private const int Burst = 1000;

    // No PING from the server during a test: a client closing with an unread line would reset the
    // connection (its kernel does), which is another case (protocol.md, "Closing").
    private static Task<StreamFarmNode> StartAsync() => TestNode.StartAsync(o =>
    {
        o.Limits.PingInterval = TimeSpan.FromSeconds(30);
        o.Limits.IdleTimeout = TimeSpan.FromMinutes(2);
    });

    private static string BurstLines(string subject) =>
        string.Concat(Enumerable.Range(1, Burst).Select(k => $"PUB {subject} c={k}\n"));

    /// <summary>The subject reaches seq <see cref="Burst"/> with the last value (the server may still be applying the burst when this subscribes).</summary>
    private static async Task AssertAllAppliedAsync(StreamFarmNode node, string subject)
    {
        await using var sub = await node.ConnectAsync();
        await sub.SendAsync("SUB " + subject);
        var seen = new List<string>();
        while (true)
        {
            var line = await sub.NextAsync() ?? throw new InvalidOperationException("closed; saw " + string.Join(" | ", seen.TakeLast(3)));
            seen.Add(line);
            var p = line.Split(' ');
            if (p[0] is "IMAGE" or "UPDATE" && p[3] == Burst.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                Assert.EndsWith($" c={Burst}", line, StringComparison.Ordinal);
                return;
            }
        }
    }

    [Fact]
    public async Task HalfClose_AfterBurst_EveryLineAppliedAndAnsweredThenClosed()
    {
        await using var node = await StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendRawAsync(Encoding.ASCII.GetBytes("HELLO 1 client=p\n" + BurstLines("/close/half") + "PING end\n"));
        c.Socket.Shutdown(SocketShutdown.Send); // what `printf ... | nc host 7400` does

        var lines = await c.ReadToEndAsync(); // the server closes after answering
        Assert.StartsWith("WELCOME 1 ", lines[0], StringComparison.Ordinal);
        Assert.Equal("PONG end", lines[^1]);
        await AssertAllAppliedAsync(node, "/close/half");
        await Eventually.TrueAsync(() => node.Server.Connections == 0, "the half-closed connection ended");
    }

    [Fact]
    public async Task HalfClose_BeforeHello_ErrHelloRequiredSent()
    {
        await using var node = await StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("SUB /x");
        c.Socket.Shutdown(SocketShutdown.Send);
        Assert.StartsWith("ERR HELLO_REQUIRED ", Assert.Single(await c.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FullClose_AfterBurst_EveryLineApplied()
    {
        await using var node = await StartAsync();
        var c = await node.ConnectAsync(); // read WELCOME and the table: nothing unread when it closes
        await c.SendRawAsync(Encoding.ASCII.GetBytes(BurstLines("/close/full")));
        await c.DisposeAsync(); // close(): a FIN right behind the burst
        await AssertAllAppliedAsync(node, "/close/full");
    }

    [Fact]
    public async Task WebSocketCloseFrame_AfterBurst_EveryLineApplied()
    {
        await using var node = await StartAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{node.HttpEndPoint.Port}/rttp"), CancellationToken.None);
        await ws.SendAsync(Encoding.ASCII.GetBytes("HELLO 1 client=p\n"), WebSocketMessageType.Text, true, CancellationToken.None);
        var lines = BurstLines("/close/ws");
        var half = lines.IndexOf('\n', lines.Length / 2) + 1;
        await ws.SendAsync(Encoding.ASCII.GetBytes(lines[..half]), WebSocketMessageType.Text, true, CancellationToken.None);
        await ws.SendAsync(Encoding.ASCII.GetBytes(lines[half..]), WebSocketMessageType.Text, true, CancellationToken.None);
        using var cts = new CancellationTokenSource(LineClient.Patience);
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        await AssertAllAppliedAsync(node, "/close/ws");
    }
}
