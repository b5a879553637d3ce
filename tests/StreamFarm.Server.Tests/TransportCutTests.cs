using System.Net;
using System.Net.Sockets;
using System.Text;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// A connection the server closed is really gone: a client that does not read cannot keep the
/// server's socket, its buffers and its descriptor after the closing grace period. Checked in the
/// kernel's table of this process's sockets, over real loopback connections.
/// </summary>
public sealed class TransportCutTests
{
    private const int Subjects = 128;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ARouteConnection_AskedToReset_EndsWithAReset_OtherwiseWithAnOrderlyClose(bool reset)
    {
        // A route given up for silence ends with a reset (RouteLink.CheckSilence): the kernel drops
        // what it had not delivered instead of retransmitting it into a partition until it heals,
        // by when its publishers may have been told it was not applied.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepting = listener.AcceptSocketAsync();
        var pipe = await StreamFarm.Server.Transport.SocketConnectionFactory.Instance.ConnectAsync(listener.LocalEndpoint.ToString()!, null, CancellationToken.None);
        using var peer = await accepting;
        await pipe.Output.WriteAsync("PING\n"u8.ToArray());
        var buffer = new byte[16];
        Assert.Equal(5, await peer.ReceiveAsync(buffer));

        if (reset)
        {
            ((StreamFarm.Server.Transport.IResettableConnection)pipe).Reset();
        }

        await pipe.Input.CompleteAsync();
        await pipe.Output.CompleteAsync(); // nothing buffered: completes even after a reset
        if (reset)
        {
            var e = await Assert.ThrowsAsync<SocketException>(async () => await peer.ReceiveAsync(buffer));
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        }
        else
        {
            Assert.Equal(0, await peer.ReceiveAsync(buffer)); // end of stream
        }
    }

    private static Task<StreamFarmNode> StartAsync() => TestNode.StartAsync(o =>
    {
        o.Limits.MaxOutboundBytes = 128 * 1024;
        o.Limits.SlowConsumerTimeout = TimeSpan.FromMilliseconds(300);
        o.Limits.IdleTimeout = TimeSpan.FromMinutes(5);
    });

    private static string SubLine() => "SUB " + string.Join(' ', Enumerable.Range(0, Subjects).Select(i => $"/t/{i}"));

    /// <summary>
    /// Publishes to many subjects (merging cannot shrink that) until <paramref name="cuts"/> clients
    /// were cut. Under the 4× hard limit, a cut comes once the queue stayed over its limit, which
    /// it reaches only when the kernel's buffers of the connection are full.
    /// </summary>
    private static async Task FloodUntilCutAsync(StreamFarmNode node, LineClient pub, int cuts)
    {
        var pad = new string('x', 2000);
        for (var i = 0; node.Server.SlowConsumerCloses < cuts; i++)
        {
            Assert.True(i < 1_000_000, $"only {node.Server.SlowConsumerCloses} of {cuts} clients cut");
            await pub.SendAsync($"PUB /t/{i % Subjects} v={i} pad={pad}");
            if (i % 500 == 0)
            {
                await pub.SendAsync($"PING {i}");
                await pub.ExpectAsync($"PONG {i}"); // the publisher is never held up
            }
        }
    }

    [Fact]
    public async Task NeverReadingTcpSubscribers_CutForSlowConsumer_ServerSocketsClosedAndFreed()
    {
        await using var node = await StartAsync();
        await using var pub = await node.ConnectAsync();
        var stuck = new List<LineClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var c = await LineClient.ConnectAsync(node.TcpEndPoint);
                stuck.Add(c);
                await c.SendAsync("HELLO 1 client=stuck");
                await c.SendAsync(SubLine());
            }

            await Eventually.TrueAsync(() => node.Server.Subscriptions >= 3 * Subjects, "every stuck client subscribed");
            await FloodUntilCutAsync(node, pub, stuck.Count);

            // Within the grace period after each cut, the server's side of the connection is reset
            // and freed; before, it stayed ESTABLISHED with megabytes unsent, for ever.
            foreach (var c in stuck)
            {
                var client = (IPEndPoint)c.Socket.LocalEndPoint!;
                await Eventually.TrueAsync(() => KernelSockets.ServerSideGone(node.TcpEndPoint, client), $"the server's socket for {client} is gone");
            }

            // A client that reads now finds the end (EOF or reset) after what was in its buffers.
            foreach (var c in stuck)
            {
                var lines = await c.ReadToEndAsync();
                Assert.All(lines.Where(l => l.StartsWith("ERR ", StringComparison.Ordinal)), l => Assert.StartsWith("ERR SLOW_CONSUMER ", l, StringComparison.Ordinal));
            }

            Assert.Equal(1, node.Server.Connections);
            await pub.SendAsync("PING alive");
            await pub.ExpectAsync("PONG alive");
        }
        finally
        {
            foreach (var c in stuck)
            {
                await c.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task NeverReadingWebSocketSubscriber_CutForSlowConsumer_ServerSocketClosedAndFreed()
    {
        await using var node = await StartAsync();
        await using var pub = await node.ConnectAsync();

        // A raw socket speaking WebSocket (so the test knows its port), which never reads.
        using var tcp = new TcpClient(AddressFamily.InterNetwork);
        await tcp.ConnectAsync(node.HttpEndPoint);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET /rttp HTTP/1.1\r\nHost: 127.0.0.1:{node.HttpEndPoint.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
        await stream.WriteAsync(MaskedTextFrame("HELLO 1 client=stuck-ws\n" + SubLine() + "\n"));
        await Eventually.TrueAsync(() => node.Server.Subscriptions >= Subjects, "the WebSocket client subscribed");

        await FloodUntilCutAsync(node, pub, 1);
        var client = (IPEndPoint)tcp.Client.LocalEndPoint!;
        await Eventually.TrueAsync(() => KernelSockets.ServerSideGone(node.HttpEndPoint, client), "the server's socket for the WebSocket client is gone");
        Assert.Equal(1, node.Server.Connections);
        await pub.SendAsync("PING alive");
        await pub.ExpectAsync("PONG alive");
    }

    [Fact]
    public async Task CutClient_ReadsWithinTheGrace_SeesErrSlowConsumerLast()
    {
        // Small socket buffers: the backlog ahead of the ERR is a few tens of KB, which the client
        // reads well within the 2 s grace once it starts.
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.MaxOutboundBytes = 16 * 1024;
            o.Limits.SlowConsumerTimeout = TimeSpan.FromMilliseconds(300);
            o.Limits.SocketSendBufferBytes = 16 * 1024;
            o.Limits.IdleTimeout = TimeSpan.FromMinutes(5);
        });
        await using var pub = await node.ConnectAsync();
        await using var c = await LineClient.ConnectAsync(node.TcpEndPoint, receiveBuffer: 8192);
        await c.SendAsync("HELLO 1 client=late-reader");
        await c.SendAsync(SubLine());
        await Eventually.TrueAsync(() => node.Server.Subscriptions >= Subjects, "subscribed");
        await FloodUntilCutAsync(node, pub, 1);

        var lines = await c.ReadToEndAsync();
        Assert.StartsWith("ERR SLOW_CONSUMER ", lines[^1], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SocketSendBufferBytes_NeverReadingSubscriber_KernelHoldsAboutThatMuch(bool webSocket)
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.SocketSendBufferBytes = 16 * 1024;
            o.Limits.IdleTimeout = TimeSpan.FromMinutes(5);
        });
        await using var pub = await node.ConnectAsync();
        using var tcp = new TcpClient(AddressFamily.InterNetwork);
        var server = webSocket ? node.HttpEndPoint : node.TcpEndPoint;
        await tcp.ConnectAsync(server);
        var stream = tcp.GetStream();
        if (webSocket)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET /rttp HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"));
            await stream.WriteAsync(MaskedTextFrame("HELLO 1\nSUB /b\n"));
        }
        else
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("HELLO 1\nSUB /b\n"));
        }

        await Eventually.TrueAsync(() => node.Server.Subscriptions >= 1, "subscribed");
        var pad = new string('x', 1000);
        for (var i = 0; i < 8000; i++)
        {
            await pub.SendAsync($"PUB /b v={i} pad={pad}");
        }

        await pub.SendAsync("PING done");
        await pub.ExpectAsync("PONG done");

        // 8 MB went to a client that reads nothing: with the operating system's choice, Linux lets
        // the kernel hold megabytes of it (3.8 MB here); bounded, a small multiple of the setting
        // (Linux doubles it for its bookkeeping, and seen up to 78 KB on loopback).
        var client = (IPEndPoint)tcp.Client.LocalEndPoint!;
        await Eventually.TrueAsync(() => KernelSockets.SendQueueOf(server, client) > 16 * 1024, "the client's buffers are full");
        var held = KernelSockets.SendQueueOf(server, client);
        Assert.True(held <= 256 * 1024, $"the kernel holds {held} bytes for the client");
    }

    /// <summary>One client-to-server text frame (masked, as RFC 6455 requires of clients).</summary>
    private static byte[] MaskedTextFrame(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var frame = new List<byte> { 0x81 };
        if (payload.Length < 126)
        {
            frame.Add((byte)(0x80 | payload.Length));
        }
        else
        {
            frame.Add(0x80 | 126);
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }

        byte[] mask = [0x12, 0x34, 0x56, 0x78];
        frame.AddRange(mask);
        frame.AddRange(payload.Select((b, i) => (byte)(b ^ mask[i % 4])));
        return [.. frame];
    }
}
