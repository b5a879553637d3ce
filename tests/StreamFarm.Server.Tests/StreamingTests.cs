using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

public sealed class StreamingTests
{
    [Fact]
    public async Task Hello_AnonymousAllowed_WelcomeThenFarmOfOne()
    {
        await using var node = await TestNode.StartAsync(o => o.Id = "solo");
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("HELLO 1 client=t");
        var welcome = await c.ExpectAsync("WELCOME ");
        Assert.Contains("server=solo", welcome, StringComparison.Ordinal);
        Assert.Contains("maxline=16384", welcome, StringComparison.Ordinal);
        Assert.Matches(@"^FARM \d+ 1$", await c.ReadLineAsync());
        var server = await c.ReadLineAsync();
        Assert.Contains("id=solo", server, StringComparison.Ordinal);
        Assert.Contains("state=active", server, StringComparison.Ordinal);
        Assert.Contains($"tcp=127.0.0.1:{node.TcpEndPoint.Port}", server, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hello_SeveralVersions_PicksOne()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("HELLO 3,2,1");
        Assert.StartsWith("WELCOME 1 ", await c.ReadLineAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sub_ThenPub_ImageFirstThenUpdatesInOrder()
    {
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        await using var sub = await node.ConnectAsync();
        await pub.SendAsync("PUB /FX/GBPUSD bid=1.27 ask=1.28");
        await pub.SendAsync("PING sync");
        await pub.ExpectAsync("PONG sync");
        await sub.SendAsync("SUB /FX/GBPUSD");
        var image = await sub.ExpectAsync("IMAGE ");
        var parts = image.Split(' ');
        Assert.Equal("/FX/GBPUSD", parts[1]);
        Assert.Equal("1", parts[3]);
        Assert.Equal(["bid=1.27", "ask=1.28"], parts[4..]);
        for (var i = 0; i < 50; i++)
        {
            await pub.SendAsync($"PUB /FX/GBPUSD bid={i}");
        }

        for (var i = 0; i < 50; i++)
        {
            var update = (await sub.NextAsync())!.Split(' ');
            Assert.Equal("UPDATE", update[0]);
            Assert.Equal(parts[2], update[2]); // same epoch
            Assert.Equal((i + 2).ToString(System.Globalization.CultureInfo.InvariantCulture), update[3]);
            Assert.Equal($"bid={i}", update[4]);
        }
    }

    [Fact]
    public async Task Sub_UnknownSubject_NotFoundThenImageOnFirstPublish()
    {
        await using var node = await TestNode.StartAsync();
        await using var sub = await node.ConnectAsync();
        await using var pub = await node.ConnectAsync();
        await sub.SendAsync("SUB /SCORES/m1 /SCORES/m2");
        Assert.Equal("STATUS /SCORES/m1 NOT_FOUND", await sub.NextAsync());
        Assert.Equal("STATUS /SCORES/m2 NOT_FOUND", await sub.NextAsync());
        await pub.SendAsync("PUB /SCORES/m2 home=1");
        Assert.Matches(@"^IMAGE /SCORES/m2 \d+ 1 home=1$", await sub.NextAsync());
        await pub.SendAsync("PUB /SCORES/m2 away=2");
        Assert.Matches(@"^UPDATE /SCORES/m2 \d+ 2 away=2$", await sub.NextAsync());
    }

    [Fact]
    public async Task PubImage_ReplacesRecord_SubscribersGetImageWithoutOldFields()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PUB /a/b x=1 y=2");
        await c.SendAsync("SUB /a/b");
        Assert.Matches(@"^IMAGE /a/b \d+ 1 x=1 y=2$", await c.NextAsync());
        await c.SendAsync("PUBIMAGE /a/b z=3");
        Assert.Matches(@"^IMAGE /a/b \d+ 2 z=3$", await c.NextAsync());
        await c.SendAsync("PUB /a/b z=4 w=5");
        Assert.Matches(@"^UPDATE /a/b \d+ 3 z=4 w=5$", await c.NextAsync());
        await c.SendAsync("UNSUB /a/b");
        await c.SendAsync("SUB /a/b");
        Assert.Matches(@"^IMAGE /a/b \d+ 3 z=4 w=5$", await c.NextAsync());
    }

    [Fact]
    public async Task Pub_EscapedValues_ArriveEscapedAndIntact()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("SUB /x");
        Assert.Equal("STATUS /x NOT_FOUND", await c.NextAsync());
        await c.SendAsync(@"PUB /x name=LSE\sIOB path=a\\b eq=a=b");
        Assert.Matches(@"^IMAGE /x \d+ 1 name=LSE\\sIOB path=a\\\\b eq=a=b$", await c.NextAsync());
    }

    [Fact]
    public async Task ManySubscribers_AllSeeSameSequence()
    {
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        var subs = new List<LineClient>();
        for (var i = 0; i < 5; i++)
        {
            var s = await node.ConnectAsync();
            await s.SendAsync("SUB /t/1");
            Assert.Equal("STATUS /t/1 NOT_FOUND", await s.NextAsync());
            subs.Add(s);
        }

        for (var i = 1; i <= 200; i++)
        {
            await pub.SendAsync($"PUB /t/1 n={i}");
        }

        foreach (var s in subs)
        {
            Assert.Matches(@"^IMAGE /t/1 \d+ 1 n=1$", await s.NextAsync());
            for (var i = 2; i <= 200; i++)
            {
                Assert.EndsWith($" {i} n={i}", await s.NextAsync(), StringComparison.Ordinal);
            }

            await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task Unsub_StopsUpdates_OtherSubjectsContinue()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PUB /a v=0");
        await c.SendAsync("PUB /b v=0");
        await c.SendAsync("SUB /a /b");
        Assert.StartsWith("IMAGE /a ", await c.NextAsync(), StringComparison.Ordinal);
        Assert.StartsWith("IMAGE /b ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("UNSUB /a");
        await c.SendAsync("PUB /a v=1");
        await c.SendAsync("PUB /b v=1");
        Assert.StartsWith("UPDATE /b ", await c.NextAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ping_WithToken_PongEchoesIt()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PING abc");
        Assert.Equal("PONG abc", await c.NextAsync());
    }

    [Fact]
    public async Task Farm_Requested_FullTableAgain()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("FARM");
        string? line;
        do
        {
            line = await c.ReadLineAsync();
        }
        while (line is "PING" || line!.StartsWith("SERVER ", StringComparison.Ordinal));

        Assert.Matches(@"^FARM \d+ 1$", line);
    }

    [Fact]
    public async Task Bye_FromClient_ServerCloses()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("BYE done");
        Assert.Empty(await c.ReadToEndAsync());
    }

    [Fact]
    public async Task CrLf_Accepted()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendRawAsync("HELLO 1\r\nPING x\r\n"u8.ToArray());
        await c.ExpectAsync("WELCOME ");
        Assert.Equal("PONG x", await c.NextAsync());
    }
}
