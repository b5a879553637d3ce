using System.Net;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Client.Tests.Kit;

namespace StreamFarm.Client.Tests;

/// <summary>
/// What an idle connection costs the server (docs/protocol.md, "Keep-alive"): the client answers
/// the server's plain keep-alive PING only when it has written nothing for
/// <c>RttpKeepAlive.QuietPongAfter</c> (2.5 s with the WELCOME's ping=1000 idle=10000), a tokened
/// PING always; and it sends no heartbeat PING of its own while the server keeps talking. Fake time
/// and a scripted server over loopback: lines are read in order, so a tokened PING sent after a
/// plain one shows whether the plain one was answered.
/// </summary>
public sealed class KeepAliveTests
{
    [Fact]
    public async Task PlainPing_AnsweredOnlyAfterAQuietSpell_TokenedPingAlways()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        await using var server = new ScriptedServer();
        var connecting = RttpConnection.ConnectAsync("127.0.0.1", server.Port, new RttpConnectionOptions { ClientName = "keepalive", Time = time });
        using var peer = await server.NextAsync();
        await using var connection = await connecting;

        await peer.SendAsync("PING\nPING t1\n");
        Assert.Equal("PONG t1", await peer.NextAsync(pongs: true)); // HELLO was just written: no PONG for the plain PING

        time.Advance(TimeSpan.FromSeconds(2.5));
        await peer.SendAsync("PING\nPING t2\n");
        Assert.Equal("PONG", await peer.NextAsync(pongs: true)); // quiet for 2.5 s: answered
        Assert.Equal("PONG t2", await peer.NextAsync(pongs: true));

        time.Advance(TimeSpan.FromSeconds(2));
        await peer.SendAsync("PING\nPING t3\n");
        Assert.Equal("PONG t3", await peer.NextAsync(pongs: true)); // the PONG t2 went out 2 s ago: not yet

        Assert.Equal((3L, 1L), (connection.KeepAlivePings, connection.KeepAlivePongs));
    }

    [Fact]
    public async Task ServerThatKeepsTalking_GetsNoHeartbeatPings()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        await using var server = new ScriptedServer();
        await using var watch = new ClientWatch(Options(server, 3) with { Connection = new RttpConnectionOptions { ClientName = "keepalive", Time = time } });
        var start = watch.StartAsync();
        using var peer = await server.NextAsync();
        await start;

        // Ten looks of the client's monitor (one a second), the server's keep-alive PING read
        // before each: the client had news every time, so it sends no PING of its own.
        var lines = new List<string>();
        for (var k = 0; k < 10; k++)
        {
            await peer.SendAsync($"PING\nPING t{k}\n");
            lines.AddRange(await UntilAsync(peer, $"PONG t{k}"));
            time.Advance(TimeSpan.FromSeconds(1));
        }

        await peer.SendAsync("PING end\n");
        lines.AddRange(await UntilAsync(peer, "PONG end"));

        // Before, every look sent one (ten here); at most the first look, if the monitor started
        // after the first round was read, may find nothing new.
        Assert.True(lines.Count(l => l.StartsWith("PING", StringComparison.Ordinal)) <= 1, string.Join(" | ", lines));
        Assert.DoesNotContain(watch.Steps, s => s.Kind is StepKind.Lost or StepKind.Retried);
    }

    [Theory]
    [InlineData(3, null)] // the default heartbeat (a look a second): the server's own interval
    [InlineData(90, 30_000)] // a dashboard that can wait 90 s to learn of a frozen server: pinged every 30 s
    public async Task HeartbeatLongerThanASecond_AskedOfTheServerInHello(int heartbeatSeconds, int? pingMs)
    {
        await using var server = new ScriptedServer();
        await using var watch = new ClientWatch(Options(server, heartbeatSeconds));
        var start = watch.StartAsync();
        using var peer = await server.NextAsync();
        await start;
        if (pingMs is { } ms)
        {
            Assert.EndsWith($" ping={ms}", peer.Hello, StringComparison.Ordinal);
        }
        else
        {
            Assert.DoesNotContain(" ping=", peer.Hello, StringComparison.Ordinal);
        }
    }

    private static FarmClientOptions Options(ScriptedServer server, int heartbeatSeconds) => new()
    {
        ServiceName = "scripted.test",
        Port = server.Port,
        Resolver = new FixedResolver(IPAddress.Loopback),
        Selector = new OrderSelector("f1"),
        Random = new Random(3),
        HeartbeatTimeout = TimeSpan.FromSeconds(heartbeatSeconds),
    };

    private static async Task<List<string>> UntilAsync(ScriptedServer.Peer peer, string last)
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await peer.NextAsync(pongs: true) ?? throw new InvalidOperationException($"closed before {last}");
            if (line == last)
            {
                return lines;
            }

            lines.Add(line);
        }
    }
}
