using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using StreamFarm.Server.Transport;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>The WebSocket bridge alone, over a real loopback connection: what the session writes arrives whole.</summary>
public sealed class WebSocketBridgeTests
{
    private static async Task<(WebSocket Server, WebSocket Client, IDisposable Sockets)> PairAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var server = await listener.AcceptTcpClientAsync();
        listener.Stop();
        var serverWs = WebSocket.CreateFromStream(server.GetStream(), new WebSocketCreationOptions { IsServer = true });
        var clientWs = WebSocket.CreateFromStream(client.GetStream(), new WebSocketCreationOptions { IsServer = false });
        return (serverWs, clientWs, new Both(server, client));
    }

    private sealed class Both(TcpClient a, TcpClient b) : IDisposable
    {
        public void Dispose()
        {
            a.Dispose();
            b.Dispose();
        }
    }

    [Fact]
    public async Task Output_LaterFlushOverManySegments_EveryLineArrivesInOneMessage()
    {
        var (server, client, sockets) = await PairAsync();
        using var _ = sockets;
        var bridge = new WebSocketBridge(server, 16 * 1024, TimeProvider.System);
        var firstSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var expected = new StringBuilder("HELLO-ACK first\n");
        var run = bridge.RunAsync(
            async (pipe, ct) =>
            {
                pipe.Output.Write("HELLO-ACK first\n"u8);
                await pipe.Output.FlushAsync(ct);
                await firstSeen.Task; // the bridge has sent it: the pipe's next segments start further on

                // 40 KB in one flush: the bridge reads it as one sequence of several segments.
                for (var i = 0; i < 400; i++)
                {
                    var line = $"UPDATE /s 1 {i + 1} v={new string('x', 80)}\n";
                    expected.Append(line);
                    pipe.Output.Write(Encoding.ASCII.GetBytes(line));
                }

                await pipe.Output.FlushAsync(ct);
                await pipe.Output.CompleteAsync();
                return TimeSpan.FromSeconds(2);
            },
            () => server.Abort(),
            CancellationToken.None);

        var messages = new List<string>();
        var current = new StringBuilder();
        var buffer = new byte[8192];
        using var cts = new CancellationTokenSource(LineClient.Patience);
        while (true)
        {
            var r = await client.ReceiveAsync(buffer, cts.Token);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
                break;
            }

            current.Append(Encoding.UTF8.GetString(buffer, 0, r.Count));
            if (r.EndOfMessage)
            {
                messages.Add(current.ToString());
                current.Clear();
                firstSeen.TrySetResult();
            }
        }

        await run; // threw ArgumentOutOfRangeException (Parameter 'position') before
        Assert.Equal(expected.ToString(), string.Concat(messages));
        Assert.Equal("", current.ToString()); // the last message was ended
        Assert.All(messages, m => Assert.EndsWith("\n", m, StringComparison.Ordinal)); // each message ends on a line boundary
    }
}
