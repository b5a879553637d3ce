using System.Net.WebSockets;
using System.Text;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

public sealed class WebSocketTests
{
    private static async Task<ClientWebSocket> OpenAsync(StreamFarmNode node)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://127.0.0.1:{node.HttpEndPoint.Port}/rttp"), CancellationToken.None);
        return ws;
    }

    private static Task SendAsync(ClientWebSocket ws, string lines) =>
        ws.SendAsync(Encoding.UTF8.GetBytes(lines), WebSocketMessageType.Text, true, CancellationToken.None);

    /// <summary>Reads text messages until a line starting with <paramref name="prefix"/> shows up.</summary>
    private static async Task<string> ExpectAsync(ClientWebSocket ws, StringBuilder pending, string prefix)
    {
        var buffer = new byte[8192];
        using var cts = new CancellationTokenSource(LineClient.Patience);
        while (true)
        {
            var text = pending.ToString();
            int nl;
            while ((nl = text.IndexOf('\n', StringComparison.Ordinal)) >= 0)
            {
                var line = text[..nl];
                text = text[(nl + 1)..];
                pending.Clear().Append(text);
                if (line.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return line;
                }
            }

            var r = await ws.ReceiveAsync(buffer, cts.Token);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                return "<closed>";
            }

            Assert.Equal(WebSocketMessageType.Text, r.MessageType);
            pending.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
        }
    }

    [Fact]
    public async Task WebSocket_LineSpanningPipeSegments_EndsItsMessage()
    {
        // A line longer than a pipe segment (4 KiB) spans segments: it goes out whole, in one
        // message that ends on a line boundary (since the bridge sends a multi-segment chunk as one
        // frame; it was one frame per segment, each written and flushed on its own, which held a
        // busy WebSocket subscriber to a third of TCP's rate).
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        using var ws = await OpenAsync(node);
        await SendAsync(ws, "HELLO 1 client=browser\nSUB /BIG\n");
        var pending = new StringBuilder();
        Assert.Equal("STATUS /BIG NOT_FOUND", await ExpectAsync(ws, pending, "STATUS"));
        var big = new string('x', 10_000);
        await pub.SendAsync($"PUB /BIG v={big}");

        var buffer = new byte[64 * 1024];
        var message = new StringBuilder();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3)); // the server pings every second: a message must end well before
        while (!message.ToString().Contains($"v={big}\n", StringComparison.Ordinal))
        {
            message.Clear();
            WebSocketReceiveResult r;
            do
            {
                r = await ws.ReceiveAsync(buffer, cts.Token);
                message.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
            }
            while (!r.EndOfMessage);
            Assert.EndsWith("\n", message.ToString(), StringComparison.Ordinal); // every message ends on a line boundary
        }
    }

    [Fact]
    public async Task WebSocket_SameProtocol_ImageAndUpdatesFromTcpPublisher()
    {
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        using var ws = await OpenAsync(node);
        var pending = new StringBuilder();
        await SendAsync(ws, "HELLO 1 client=browser\nSUB /FX/GBPUSD\n");
        Assert.StartsWith("WELCOME 1 ", await ExpectAsync(ws, pending, "WELCOME"), StringComparison.Ordinal);
        Assert.Equal("STATUS /FX/GBPUSD NOT_FOUND", await ExpectAsync(ws, pending, "STATUS"));
        await pub.SendAsync("PUB /FX/GBPUSD bid=1.27");
        await pub.SendAsync("PUB /FX/GBPUSD bid=1.28");
        Assert.Matches(@"^IMAGE /FX/GBPUSD \d+ 1 bid=1.27$", await ExpectAsync(ws, pending, "IMAGE"));
        Assert.Matches(@"^UPDATE /FX/GBPUSD \d+ 2 bid=1.28$", await ExpectAsync(ws, pending, "UPDATE"));
    }

    [Fact]
    public async Task WebSocket_BinaryMessage_ErrBinaryAndClose()
    {
        await using var node = await TestNode.StartAsync();
        using var ws = await OpenAsync(node);
        var pending = new StringBuilder();
        await SendAsync(ws, "HELLO 1\n");
        await ExpectAsync(ws, pending, "WELCOME");
        await ws.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.StartsWith("ERR BINARY ", await ExpectAsync(ws, pending, "ERR"), StringComparison.Ordinal);
        Assert.Equal("<closed>", await ExpectAsync(ws, pending, "never"));
    }
}
