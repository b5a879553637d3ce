using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Dns.Tests.Kit;
using StreamFarm.Server.Tests.Kit;
using static StreamFarm.Dns.Tests.Kit.Wire;

namespace StreamFarm.Dns.Tests;

/// <summary>
/// DNS over TCP under abuse, on real loopback sockets from chosen source addresses (every
/// 127.x.y.z is loopback): one client holding many connections, many clients filling the table,
/// idle, slow-sending and non-reading connections. The idle deadline runs on a fake clock.
/// </summary>
public sealed class DnsServerTcpTests
{
    [Fact]
    public async Task OneSource_300IdleConnections_AnotherSourceIsStillAnswered()
    {
        // The deadline is far away: only the per-client limit protects the others here.
        await using var server = Start(o => o.TcpIdleTimeout = TimeSpan.FromHours(1));
        var hog = new List<Socket>();
        try
        {
            for (var i = 0; i < 300; i++)
            {
                hog.Add(await ConnectAsync(server, "127.0.31.1"));
            }

            await Eventually.TrueAsync(() => server.TcpRefused >= 300 - 16, "the connections over the client's share refused");

            Assert.Equal(16, server.TcpConnections);
            for (var round = 0; round < 3; round++)
            {
                using var other = await ConnectAsync(server, "127.0.31.2");
                var answer = await AskAsync(other, "stream.farm.test", A);
                Assert.Equal(0, answer.Rcode);
                Assert.Single(answer.Answers);
            }

            // The hog's connections beyond its share were closed at once; those within it still work.
            Assert.True(await ClosedAsync(hog[^1]));
            Assert.Single((await AskAsync(hog[0], "stream.farm.test", A)).Answers);
        }
        finally
        {
            hog.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task ManySources_FillTheTable_ANewClientTakesTheIdlePlaceOfTheBiggest()
    {
        await using var server = Start(o =>
        {
            o.TcpIdleTimeout = TimeSpan.FromHours(1);
            o.TcpMaxConnections = 20;
            o.TcpConnectionsPerClient = 8;
        });
        var idle = new List<Socket>();
        try
        {
            // Four clients hold 20 idle connections between them, the first one 8.
            foreach (var (source, count) in new[] { ("127.0.32.1", 8), ("127.0.32.2", 4), ("127.0.32.3", 4), ("127.0.32.4", 4) })
            {
                for (var i = 0; i < count; i++)
                {
                    idle.Add(await ConnectAsync(server, source));
                }
            }

            await Eventually.TrueAsync(() => server.TcpConnections == 20, "20 connections open");

            for (var i = 0; i < 3; i++)
            {
                var newcomer = await ConnectAsync(server, "127.0.32.9");
                idle.Add(newcomer); // kept open: the table stays full
                Assert.Single((await AskAsync(newcomer, "stream.farm.test", A)).Answers);
            }

            Assert.Equal(3, server.TcpEvicted);
            Assert.Equal(0, server.TcpRefused);
            Assert.True(await ClosedAsync(idle[0])); // the biggest client's, idle longest
            Assert.Single((await AskAsync(idle[8], "stream.farm.test", A)).Answers); // the others' are untouched
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task IdleConnection_IsClosedAfterTheIdleTimeoutAndAnActiveOneIsNot()
    {
        var time = new FakeTimeProvider(Farm.Start);
        await using var server = Start(o => o.TcpIdleTimeout = TimeSpan.FromSeconds(3), time);
        using var silent = await ConnectAsync(server, "127.0.33.1");
        using var active = await ConnectAsync(server, "127.0.33.2");
        await Eventually.TrueAsync(() => server.TcpConnections == 2, "both connections open");

        for (var i = 0; i < 3; i++)
        {
            Assert.Single((await AskAsync(active, "stream.farm.test", A)).Answers);
            time.Advance(TimeSpan.FromSeconds(2)); // 6 s in all, never 3 s without an answer
        }

        Assert.True(await ClosedAsync(silent));
        Assert.Single((await AskAsync(active, "stream.farm.test", A)).Answers);
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.True(await ClosedAsync(active));
        await Eventually.TrueAsync(() => server.TcpConnections == 0, "no connection left");
    }

    [Fact]
    public async Task HalfSentMessage_IsClosedAtTheDeadline()
    {
        var time = new FakeTimeProvider(Farm.Start);
        await using var server = Start(o => o.TcpIdleTimeout = TimeSpan.FromSeconds(3), time);
        using var slow = await ConnectAsync(server, "127.0.34.1");
        await Eventually.TrueAsync(() => server.TcpConnections == 1, "the connection open");

        var query = Framed(Query("stream.farm.test", A));
        await slow.SendAsync(query.AsMemory(0, 5)); // and the rest never comes
        time.Advance(TimeSpan.FromSeconds(3));

        Assert.True(await ClosedAsync(slow));
    }

    [Fact]
    public async Task ClientThatNeverReads_IsClosedAtTheDeadline()
    {
        var time = new FakeTimeProvider(Farm.Start);
        await using var server = Start(o => o.TcpIdleTimeout = TimeSpan.FromSeconds(3), time, Farm.Healthy(60));
        using var deaf = await ConnectAsync(server, "127.0.35.1");
        deaf.ReceiveBufferSize = 4096;

        // About 3 KB per answer: far more than the socket buffers hold, so the server's send blocks.
        var query = Framed(Query("_rttp._tcp.stream.farm.test", Srv));
        var burst = Enumerable.Repeat(query, 256).SelectMany(q => q).ToArray();
        using var sending = new CancellationTokenSource();
        var sender = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < 200; i++)
                {
                    await deaf.SendAsync(burst, sending.Token);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                // closed by the server, or stopped by the test
            }
        });
        await Eventually.TrueAsync(() => server.Responses > 0, "answers sent");

        // Each whole query gives a fresh deadline; once the server's send blocks, none comes, and
        // the next step of the clock closes the connection.
        await Eventually.TrueAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(3));
            return server.TcpConnections == 0;
        }, "the non-reading connection closed");
        Assert.InRange(server.Responses, 1, (256 * 200) - 1);
        await sending.CancelAsync();
        await sender;
    }

    // ---- helpers ----

    private static DnsServer Start(Action<DnsOptions> configure, TimeProvider? time = null, Protocol.FarmSnapshot? farm = null)
    {
        var options = Farm.Options(configure);
        var table = farm ?? Farm.Healthy(3);
        var server = new DnsServer(new DnsResponder(options, () => table), options, new IPEndPoint(IPAddress.Loopback, 0), time ?? TimeProvider.System);
        server.Start();
        return server;
    }

    private static async Task<Socket> ConnectAsync(DnsServer server, string source)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
        await s.ConnectAsync(server.EndPoint);
        return s;
    }

    private static async Task<DnsMessage> AskAsync(Socket s, string name, ushort type)
    {
        await s.SendAsync(Framed(Query(name, type)));
        using var deadline = new CancellationTokenSource(Eventually.Patience);
        var length = new byte[2];
        await ReceiveExactlyAsync(s, length, deadline.Token);
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await ReceiveExactlyAsync(s, message, deadline.Token);
        return DnsMessage.Parse(message);
    }

    private static async Task ReceiveExactlyAsync(Socket s, byte[] buffer, CancellationToken cancel)
    {
        for (var read = 0; read < buffer.Length;)
        {
            var n = await s.ReceiveAsync(buffer.AsMemory(read), cancel);
            if (n == 0)
            {
                throw new IOException("closed by the server");
            }

            read += n;
        }
    }

    /// <summary>Whether the server closes the connection (FIN, or RST when it left bytes unread).</summary>
    private static async Task<bool> ClosedAsync(Socket s)
    {
        using var deadline = new CancellationTokenSource(Eventually.Patience);
        var buffer = new byte[4096];
        try
        {
            while (await s.ReceiveAsync(buffer, deadline.Token) > 0)
            {
                // answers already sent before the close
            }

            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static byte[] Framed(byte[] message) => [.. U16((ushort)message.Length), .. message];
}
