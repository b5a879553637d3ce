using System.Net.WebSockets;
using System.Text;

namespace StreamFarm.Server.Tests.Kit;

/// <summary>One RTTP connection to a real node, over TCP or WebSocket, for tests that must hold on both.</summary>
internal interface IWire : IAsyncDisposable
{
    /// <summary>Sends one line (a LF is added).</summary>
    Task SendAsync(string line);

    /// <summary>The next line that is not keep-alive or a farm delta; null when the server closed.</summary>
    Task<string?> NextAsync();
}

internal static class Wire
{
    /// <summary>Opens a connection over <paramref name="transport"/> (<c>tcp</c> or <c>ws</c>) and says HELLO.</summary>
    public static async Task<IWire> OpenAsync(StreamFarmNode node, string transport)
    {
        if (transport == "tcp")
        {
            return new TcpWire(await node.ConnectAsync());
        }

        var ws = await WsWire.ConnectAsync(node);
        await ws.SendAsync("HELLO 1 client=test");
        Assert.StartsWith("WELCOME 1 ", await ws.NextAsync(), StringComparison.Ordinal);
        return ws;
    }

    private sealed class TcpWire(LineClient client) : IWire
    {
        public Task SendAsync(string line) => client.SendAsync(line);

        public Task<string?> NextAsync() => client.NextAsync();

        public ValueTask DisposeAsync() => client.DisposeAsync();
    }
}

/// <summary>RTTP over WebSocket (<c>/rttp</c>): each <see cref="SendAsync"/> is one text message.</summary>
internal sealed class WsWire : IWire
{
    private readonly ClientWebSocket _ws = new();
    private readonly StringBuilder _pending = new();
    private readonly byte[] _buffer = new byte[64 * 1024];

    public WebSocketCloseStatus? CloseStatus => _ws.CloseStatus;

    public static async Task<WsWire> ConnectAsync(StreamFarmNode node)
    {
        var wire = new WsWire();
        await wire._ws.ConnectAsync(new Uri($"ws://{node.HttpEndPoint}/rttp"), CancellationToken.None);
        return wire;
    }

    public Task SendAsync(string line) => SendMessageAsync(Encoding.UTF8.GetBytes(line + "\n"));

    /// <summary>Sends bytes as one text message, as they are.</summary>
    public Task SendMessageAsync(byte[] message) => _ws.SendAsync(message, WebSocketMessageType.Text, true, CancellationToken.None);

    public async Task<string?> NextAsync()
    {
        using var cts = new CancellationTokenSource(LineClient.Patience);
        while (true)
        {
            var text = _pending.ToString();
            var nl = text.IndexOf('\n', StringComparison.Ordinal);
            if (nl >= 0)
            {
                _pending.Remove(0, nl + 1);
                var line = text[..nl];
                if (!LineClient.IsNoise(line))
                {
                    return line;
                }

                continue;
            }

            WebSocketReceiveResult r;
            try
            {
                r = await _ws.ReceiveAsync(_buffer, cts.Token);
            }
            catch (WebSocketException)
            {
                return null;
            }

            if (r.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            _pending.Append(Encoding.UTF8.GetString(_buffer, 0, r.Count));
        }
    }

    public ValueTask DisposeAsync()
    {
        _ws.Dispose();
        return ValueTask.CompletedTask;
    }
}
