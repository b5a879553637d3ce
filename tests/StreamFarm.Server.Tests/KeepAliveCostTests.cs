using StreamFarm.Server.Farm;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// What a connection costs the server while nothing goes wrong: keep-alive pings and farm-table lines
/// sent to clients that only read. Both grew with the clients connected (found by the cost curves
/// of docs/benchmarks.md: at 10,000 subscribers, as many PING/PONG system calls as updates; at
/// 18,000 connections, a SERVER line to every client for every user who connected).
/// </summary>
public sealed class KeepAliveCostTests
{
    [Fact]
    public async Task SubscriberThatOnlyReads_NotPingedBeforeHalfItsIdleTimeout()
    {
        var ping = TimeSpan.FromSeconds(1);
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.PingInterval = ping;
            o.Limits.IdleTimeout = TimeSpan.FromMinutes(2); // PINGs for input silence from 1 min on
        });
        await using var pub = await node.ConnectAsync();
        await using var sub = await node.ConnectAsync();
        await sub.SendAsync("SUB /reader");
        await sub.ExpectAsync("STATUS /reader NOT_FOUND");

        // Updates keep coming, every 10 ms (so no PING is due for lack of output unless the machine
        // stalls them for a whole second), and the subscriber says nothing for about six ping
        // intervals. Before, it was pinged at every interval of its silence.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var publishing = PublishAsync(pub, "/reader", 600, TimeSpan.FromMilliseconds(10));
        var pings = await ReadUntilAsync(sub, " n=600", answerPings: false);
        await publishing;
        var intervals = clock.Elapsed / ping;
        Assert.True(pings < Math.Max(2, intervals / 4), $"{pings} PING(s) in {intervals:0.0} ping intervals of input silence");
    }

    [Fact]
    public async Task SubscriberThatOnlyReads_PingedOnceHalfItsIdleTimeoutPassed_AndNotCut()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.PingInterval = TimeSpan.FromMilliseconds(100);
            o.Limits.IdleTimeout = TimeSpan.FromSeconds(2); // PINGs for input silence from 1 s on
        });
        await using var pub = await node.ConnectAsync();
        await using var sub = await node.ConnectAsync();
        await sub.SendAsync("SUB /reader");
        await sub.ExpectAsync("STATUS /reader NOT_FOUND");
        var publishing = PublishAsync(pub, "/reader", 400, TimeSpan.FromMilliseconds(10));
        var pings = await ReadUntilAsync(sub, " n=400", answerPings: true);
        await publishing;
        Assert.True(pings >= 1, "a subscriber that only reads must be pinged before its idle timeout");
    }

    [Fact]
    public async Task HelloAskingForRarerPings_GrantedWithAScaledIdleTimeout_WithinTheServersBounds()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.PingInterval = TimeSpan.FromMilliseconds(200);
            o.Limits.IdleTimeout = TimeSpan.FromSeconds(2);
        });

        async Task<string> WelcomeAsync(string ping)
        {
            await using var c = await LineClient.ConnectAsync(node.TcpEndPoint);
            await c.SendAsync("HELLO 1 client=k ping=" + ping);
            var line = await c.ReadLineAsync() ?? "";
            return line.StartsWith("WELCOME ", StringComparison.Ordinal) ? line[line.IndexOf(" ping=", StringComparison.Ordinal)..] : line;
        }

        Assert.Equal(" ping=1000 idle=10000", await WelcomeAsync("1000")); // granted; idle in the server's proportion
        Assert.Equal(" ping=200 idle=2000", await WelcomeAsync("10")); // never more often than the server's own
        Assert.Equal(" ping=300000 idle=3000000", await WelcomeAsync("3600000")); // at most 5 minutes
        Assert.StartsWith("ERR SYNTAX ", await WelcomeAsync("0"), StringComparison.Ordinal);
        Assert.StartsWith("ERR SYNTAX ", await WelcomeAsync("soon"), StringComparison.Ordinal);

        // Granted 1 s: the first PING comes at least a second after the HELLO (the server's own
        // interval would have sent one after 200 ms), and 3 s without a word from the client is no
        // longer than its idle timeout (the server's own 2 s would have cut it).
        await using var quiet = await LineClient.ConnectAsync(node.TcpEndPoint);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await quiet.SendAsync("HELLO 1 client=quiet ping=1000");
        await quiet.ExpectAsync("WELCOME 1 ");
        string? line;
        while ((line = await quiet.ReadLineAsync()) != "PING")
        {
            Assert.NotNull(line);
        }

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"first PING after {clock.Elapsed.TotalMilliseconds:0} ms");
        while (clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            var next = quiet.ReadLineAsync();
            var first = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(3) - clock.Elapsed + TimeSpan.FromMilliseconds(1)));
            if (first == next)
            {
                Assert.Equal("PING", await next); // never ERR IDLE, never a close
            }
            else
            {
                break;
            }
        }
    }

    private static Task PublishAsync(LineClient pub, string subject, int count, TimeSpan every) => Task.Run(async () =>
    {
        for (var i = 1; i <= count; i++)
        {
            await pub.SendAsync($"PUB {subject} n={i}");
            await Task.Delay(every);
        }
    });

    /// <summary>Reads until a line ending with <paramref name="end"/>; fails on ERR IDLE or a close; returns the PINGs seen.</summary>
    private static async Task<int> ReadUntilAsync(LineClient sub, string end, bool answerPings)
    {
        var pings = 0;
        while (true)
        {
            var line = await sub.ReadLineAsync() ?? throw new InvalidOperationException("closed: the reading subscriber was cut");
            Assert.DoesNotContain("ERR IDLE", line, StringComparison.Ordinal);
            if (line == "PING")
            {
                pings++;
                if (answerPings)
                {
                    await sub.SendAsync("PONG");
                }
            }
            else if (line.EndsWith(end, StringComparison.Ordinal))
            {
                return pings;
            }
        }
    }

    [Fact]
    public async Task UserCountsAlone_SentToClientsAtMostOncePerInterval()
    {
        await using var node = await TestNode.StartAsync(o => o.Farm.ClientUsersInterval = TimeSpan.FromHours(1));
        var farm = Assert.IsType<LocalFarm>(node.Server.Farm);
        await using var a = await node.ConnectAsync();
        await using var b = await node.ConnectAsync();
        farm.Refresh(); // the table now counts both users: a change of counts alone, held
        Assert.Contains(" users=2", string.Join("\n", Farm(node)), StringComparison.Ordinal);

        await a.SendAsync("PING held");
        var before = await LinesUntilAsync(a, "PONG held");
        Assert.DoesNotContain(before, l => l.StartsWith("SERVER ", StringComparison.Ordinal));

        // Once the interval has passed, the held counts go out (on the server's next tick).
        node.Server.Options.Farm.ClientUsersInterval = TimeSpan.Zero;
        var line = await a.ExpectAsync("SERVER ");
        Assert.Contains(" users=2", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientWelcomedWhileCountsWait_GetsItsOwnLinesFromTheTableItWasSent()
    {
        await using var node = await TestNode.StartAsync(o => o.Farm.ClientUsersInterval = TimeSpan.Zero);
        var farm = Assert.IsType<LocalFarm>(node.Server.Farm);
        await using var a = await node.ConnectAsync();
        await WaitUntilAsync(() => Refresh(farm) == 1); // sent to the clients at once: they hold users=1
        node.Server.Options.Farm.ClientUsersInterval = TimeSpan.FromHours(1);
        await using var b = await node.ConnectAsync();
        await WaitUntilAsync(() => Refresh(farm) == 2); // held
        await using var c = await node.ConnectAsync(); // welcomed with the held table: users=2

        // a and b leave: the count is back to what the other clients hold, but c holds 2.
        await a.DisposeAsync();
        await b.DisposeAsync();
        await WaitUntilAsync(() => Refresh(farm) == 1);
        var line = await c.ExpectAsync("SERVER ");
        Assert.Contains(" users=1", line, StringComparison.Ordinal);
    }

    private static int Refresh(LocalFarm farm)
    {
        farm.Refresh();
        return farm.Current.Members[0].Users;
    }

    private static IEnumerable<string> Farm(StreamFarmNode node) => node.Server.Farm.Current.Members.Select(m => $"{m.Id} users={m.Users}");

    private static async Task<List<string>> LinesUntilAsync(LineClient client, string last)
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await client.ReadLineAsync() ?? throw new InvalidOperationException($"closed before '{last}'");
            if (line == last)
            {
                return lines;
            }

            lines.Add(line);
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + LineClient.Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached");
            await Task.Delay(10);
        }
    }
}
