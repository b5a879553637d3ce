using System.Text;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>Every bad-input case over a real socket: a clear ERR, and only protocol-breaking ones close.</summary>
public sealed class BadInputTests
{
    [Theory]
    [InlineData("FROB /x", "ERR UNKNOWN_VERB")]
    [InlineData("SUB", "ERR SYNTAX")]
    [InlineData("SUB FX/no-slash", "ERR BAD_SUBJECT")]
    [InlineData("SUB /FX//double", "ERR BAD_SUBJECT")]
    [InlineData("SUB /FX/*", "ERR BAD_SUBJECT")]
    [InlineData("PUB /x", "ERR SYNTAX")]
    [InlineData("PUB /x 9bad=1", "ERR BAD_FIELD")]
    [InlineData("PUB /x a=1 loose", "ERR SYNTAX")]
    [InlineData(@"PUB /x a=bad\q", "ERR BAD_ESCAPE")]
    [InlineData(@"PUB /x a=trailing\", "ERR BAD_ESCAPE")]
    [InlineData("PUB /x a=\u0001", "ERR SYNTAX")]
    [InlineData("IMAGE /x 1 1 a=1", "ERR SYNTAX")]
    [InlineData("HELLO 1", "ERR DUPLICATE_HELLO")]
    [InlineData("FARM now", "ERR SYNTAX")]
    [InlineData("FARM 1 1", "ERR SYNTAX")]
    [InlineData(@"PUB /x a=\x41", "ERR BAD_ESCAPE")]
    public async Task BadLine_NonFatal_ErrThenSessionContinues(string line, string expected)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync(line);
        Assert.StartsWith(expected + " ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("PING still-here");
        Assert.Equal("PONG still-here", await c.NextAsync());
    }

    [Fact]
    public async Task InvalidUtf8_BadUtf8_SessionContinues()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendRawAsync([.. "PUB /x a="u8, 0xC3, 0x28, (byte)'\n']);
        Assert.StartsWith("ERR BAD_UTF8 ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("PING ok");
        Assert.Equal("PONG ok", await c.NextAsync());
    }

    [Fact]
    public async Task TooManyFields_ErrAndNothingPublished()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxFieldsPerMessage = 4);
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PUB /x a=1 b=2 c=3 d=4 e=5");
        Assert.StartsWith("ERR TOO_MANY_FIELDS ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("SUB /x");
        Assert.Equal("STATUS /x NOT_FOUND", await c.NextAsync());
    }

    [Fact]
    public async Task TooManySubscriptions_ErrNamesFirstRefused_EarlierOnesKept()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxSubscriptionsPerConnection = 2);
        await using var c = await node.ConnectAsync();
        await c.SendAsync("SUB /a /b /c");
        Assert.Equal("STATUS /a NOT_FOUND", await c.NextAsync());
        Assert.Equal("STATUS /b NOT_FOUND", await c.NextAsync());
        Assert.StartsWith("ERR TOO_MANY_SUBS @subject=/c ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("PUB /b v=1");
        Assert.Matches(@"^IMAGE /b \d+ 1 v=1$", await c.NextAsync());
    }

    [Fact]
    public async Task LineTooLong_FatalErrThenClose_OtherClientsUnaffected()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxLineBytes = 1024);
        await using var other = await node.ConnectAsync();
        await using var c = await node.ConnectAsync();
        await c.SendRawAsync(Encoding.ASCII.GetBytes("PUB /x a=" + new string('z', 5000)));
        var rest = await c.ReadToEndAsync();
        Assert.StartsWith("ERR LINE_TOO_LONG ", Assert.Single(rest), StringComparison.Ordinal);
        await other.SendAsync("PING fine");
        Assert.Equal("PONG fine", await other.NextAsync());
    }

    [Fact]
    public async Task LineTooLong_NeverTerminated_ClosedWithoutBufferingIt()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxLineBytes = 1024);
        await using var c = await node.ConnectAsync();

        // 1 MB with no newline: the server must give up after the limit instead of buffering it all.
        var chunk = Encoding.ASCII.GetBytes(new string('y', 64 * 1024));
        try
        {
            for (var i = 0; i < 16; i++)
            {
                await c.SendRawAsync(chunk);
            }
        }
        catch (IOException)
        {
            // the server closed on us mid-stream: what we want
        }

        Assert.StartsWith("ERR LINE_TOO_LONG ", (await c.ReadToEndAsync()).FirstOrDefault() ?? "ERR LINE_TOO_LONG (reset)", StringComparison.Ordinal);
    }

    [Fact]
    public async Task CommandBeforeHello_FatalHelloRequired()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("SUB /x");
        var lines = await c.ReadToEndAsync();
        Assert.StartsWith("ERR HELLO_REQUIRED ", Assert.Single(lines), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("FOO")]
    [InlineData("hello 1")]
    [InlineData(@"PUB /x a=bad\q")]
    [InlineData("SUB FX/no-slash")]
    [InlineData("PUB /x a=\u0001")]
    [InlineData("HELLOX 1")]
    public async Task BadLineBeforeHello_FatalHelloRequired(string line)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync(line);
        var lines = await c.ReadToEndAsync();
        Assert.StartsWith("ERR HELLO_REQUIRED ", Assert.Single(lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedHello_ItsOwnErrorThenHelloAccepted()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync(@"HELLO 1 client=a\q");
        Assert.StartsWith("ERR BAD_ESCAPE ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("HELLO 1 client=again");
        await c.ExpectAsync("WELCOME 1 ");
    }

    [Fact]
    public async Task NoHello_ClosedWithHelloTimeout()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.HelloTimeout = TimeSpan.FromMilliseconds(200));
        await using var c = await node.ConnectAsync(hello: false);
        var lines = await c.ReadToEndAsync();
        Assert.StartsWith("ERR HELLO_TIMEOUT ", Assert.Single(lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnsupportedVersion_FatalVersion()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("HELLO 2,3");
        var lines = await c.ReadToEndAsync();
        Assert.StartsWith("ERR VERSION ", Assert.Single(lines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentClient_ClosedWithIdle()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.PingInterval = TimeSpan.FromMilliseconds(50);
            o.Limits.IdleTimeout = TimeSpan.FromMilliseconds(300);
        });
        await using var c = await node.ConnectAsync();
        var lines = await c.ReadToEndAsync(); // never answers the PINGs
        Assert.StartsWith("ERR IDLE ", lines.Last(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerFull_NewConnectionRefusedWithFull_ExistingUnaffected()
    {
        await using var node = await TestNode.StartAsync(o => o.Capacity = 2);
        await using var a = await node.ConnectAsync();
        await using var b = await node.ConnectAsync();
        await using var c = await node.ConnectAsync(hello: false);
        var lines = await c.ReadToEndAsync();
        Assert.StartsWith("ERR FULL @after=", Assert.Single(lines), StringComparison.Ordinal);
        await a.SendAsync("PING a");
        Assert.Equal("PONG a", await a.NextAsync());
        Assert.Equal(1, node.Server.RejectedFull);
    }

    [Fact]
    public async Task GarbageFlood_BoundedAndOthersServed()
    {
        await using var node = await TestNode.StartAsync();
        await using var victim = await node.ConnectAsync();
        await using var attacker = await node.ConnectAsync();
        var garbage = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("XX\n", 20_000)));
        await attacker.SendRawAsync(garbage);
        await victim.SendAsync("PUB /v a=1");
        await victim.SendAsync("SUB /v");
        Assert.Matches(@"^IMAGE /v \d+ 1 a=1$", await victim.NextAsync());
        for (var i = 0; i < 20_000; i++)
        {
            Assert.StartsWith("ERR UNKNOWN_VERB", await attacker.NextAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task BusySubscriberThatOnlyAnswersPings_NotCutAsIdle()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            // The subscriber gets its first PING after half the idle timeout of silence and has
            // the other half to answer: wide enough for a test process on a loaded 2-core machine
            // (with 1 s it was cut now and then in full runs, its PONG half a second late). The
            // publications last three idle timeouts, so the cut would have come several times.
            o.Limits.PingInterval = TimeSpan.FromMilliseconds(100);
            o.Limits.IdleTimeout = TimeSpan.FromSeconds(2);
        });
        await using var pub = await node.ConnectAsync();
        await using var sub = await node.ConnectAsync();
        await sub.SendAsync("SUB /busy");
        var publishing = Task.Run(async () =>
        {
            for (var i = 1; i <= 600; i++)
            {
                await pub.SendAsync($"PUB /busy n={i}");
                await Task.Delay(10);
            }
        });

        // The subscriber never writes on its own; it only answers the server's PINGs.
        var last = "";
        while (!last.EndsWith(" n=600", StringComparison.Ordinal))
        {
            var line = await sub.ReadLineAsync() ?? throw new InvalidOperationException("closed: the busy subscriber was cut");
            Assert.DoesNotContain("ERR IDLE", line, StringComparison.Ordinal);
            if (line == "PING")
            {
                await sub.SendAsync("PONG");
            }
            else
            {
                last = line;
            }
        }

        await publishing;
    }

    [Fact]
    public async Task InputThatTakesLongerThanTheIdleTimeoutToApply_SenderNotCutAndNothingDropped()
    {
        // A buffer of publications to thousands of subscribers can take longer to apply than the
        // idle timeout. Its sender was not silent meanwhile: the server was busy. Here the first
        // line of a pipelined burst is made to take twice the idle timeout (the test hook runs
        // between lines, outside every lock), and the session's idle check is run right then, so
        // the check sees a silence longer than the timeout whatever the machine's load.
        var idle = TimeSpan.FromMilliseconds(300);
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Limits.PingInterval = TimeSpan.FromMilliseconds(50);
            o.Limits.IdleTimeout = idle;
        });
        await using var c = await node.ConnectAsync();
        var slowed = 0;
        node.Server.AfterLineForTesting = session =>
        {
            if (Interlocked.Exchange(ref slowed, 1) == 0)
            {
                Thread.Sleep(idle * 2);
                session.Housekeep();
            }
        };

        // The SUB goes in the same burst, so its IMAGE (every publication applied) is read in the
        // loop that answers the server's PINGs: a test thread held up on a loaded machine between
        // two reads must not look like the idle client this test is not about.
        await c.SendRawAsync(Encoding.ASCII.GetBytes("PUB /slow n=1\nPUB /slow n=2\nPUB /slow n=3\nPING burst\nSUB /slow\n"));
        string? image = null;
        var ponged = false;
        while (image is null || !ponged)
        {
            var line = await c.ReadLineAsync() ?? throw new InvalidOperationException("closed: the sender was cut while the server applied its input");
            Assert.DoesNotContain("ERR IDLE", line, StringComparison.Ordinal);
            if (line == "PING")
            {
                await c.SendAsync("PONG");
            }
            else if (line == "PONG burst")
            {
                ponged = true;
            }
            else if (line.StartsWith("IMAGE /slow ", StringComparison.Ordinal))
            {
                image = line;
            }
        }

        Assert.Equal(1, Volatile.Read(ref slowed));
        Assert.Matches(@"^IMAGE /slow \d+ \d+ n=3$", image);
    }
}
