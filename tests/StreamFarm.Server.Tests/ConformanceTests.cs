using System.Net.WebSockets;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// The rules docs/protocol.md states for questions a client writer asks (sections 1-3, 5, 6), each
/// checked against a real node over TCP and over WebSocket.
/// </summary>
public sealed class ConformanceTests
{
    /// <summary>Sends PING with a token and returns every line before its PONG (what the server said to the lines sent before it).</summary>
    private static async Task<List<string>> UntilPongAsync(IWire c, string token = "sync")
    {
        await c.SendAsync("PING " + token);
        var lines = new List<string>();
        while (await c.NextAsync() is { } line && line != "PONG " + token)
        {
            lines.Add(line);
        }

        return lines;
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("ws")]
    public async Task Spaces_AroundAndBetweenTokens_AreIgnored(string transport)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await Wire.OpenAsync(node, transport);
        await c.SendAsync("   PUB   /c/sp   x=1   ");
        await c.SendAsync("SUB /c/sp  ");
        var image = await c.NextAsync();
        Assert.StartsWith("IMAGE /c/sp ", image, StringComparison.Ordinal);
        Assert.EndsWith(" x=1", image, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tcp", "PUB /c/f a b\\s=1", "ERR SYNTAX ")]
    [InlineData("tcp", "PUB /c/f b\\s=1", "ERR BAD_FIELD ")]
    [InlineData("ws", "PUB /c/f a b\\s=1", "ERR SYNTAX ")]
    [InlineData("ws", "PUB /c/f b\\s=1", "ERR BAD_FIELD ")]
    [InlineData("tcp", "PING a=b", "ERR SYNTAX ")]
    [InlineData("tcp", "PING a b", "ERR SYNTAX ")]
    [InlineData("ws", "PING a=b", "ERR SYNTAX ")]
    [InlineData("tcp", "PING a\\sb", "PONG a\\sb")]
    [InlineData("ws", "PING a\\sb", "PONG a\\sb")]
    public async Task FirstOffendingToken_DecidesTheError_AndPingTokensComeBackAsSent(string transport, string line, string expected)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await Wire.OpenAsync(node, transport);
        await c.SendAsync(line);
        Assert.StartsWith(expected, await c.NextAsync(), StringComparison.Ordinal);
        Assert.Empty(await UntilPongAsync(c)); // not fatal, nothing else said
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("ws")]
    public async Task SubWithOneBadSubject_NamesIt_AndSubscribesToNone(string transport)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await Wire.OpenAsync(node, transport);
        await c.SendAsync("SUB /c/g1 bad /c/g2");
        var err = await c.NextAsync();
        Assert.StartsWith("ERR BAD_SUBJECT bad ", err, StringComparison.Ordinal);
        await c.SendAsync("PUB /c/g1 x=1");
        await c.SendAsync("PUB /c/g2 x=1");
        Assert.Empty(await UntilPongAsync(c)); // no IMAGE: neither good subject was taken
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("ws")]
    public async Task SubOfASubjectHeld_IsLeftAsItIs_UnsubThenSubGivesAFreshImage(string transport)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await Wire.OpenAsync(node, transport);
        await c.SendAsync("PUB /c/h x=1");
        await c.SendAsync("SUB /c/h");
        Assert.StartsWith("IMAGE /c/h ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("SUB /c/h");
        Assert.Empty(await UntilPongAsync(c));
        await c.SendAsync("UNSUB /c/h");
        await c.SendAsync("SUB /c/h");
        Assert.StartsWith("IMAGE /c/h ", await c.NextAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("ws")]
    public async Task OwnPublications_ReachThePublisher_AndDuplicateFieldsApplyInOrder(string transport)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await Wire.OpenAsync(node, transport);
        await c.SendAsync("SUB /c/o");
        Assert.Equal("STATUS /c/o NOT_FOUND", await c.NextAsync());
        await c.SendAsync("PUB /c/o x=0");
        Assert.EndsWith(" x=0", await c.NextAsync(), StringComparison.Ordinal); // its own IMAGE: no echo suppression
        await c.SendAsync("PUB /c/o x=1 x=2");
        var update = await c.NextAsync();
        Assert.StartsWith("UPDATE /c/o ", update, StringComparison.Ordinal);
        Assert.EndsWith(" x=1 x=2", update, StringComparison.Ordinal); // both, in order
        await c.SendAsync("UNSUB /c/o");
        await c.SendAsync("SUB /c/o");
        Assert.EndsWith(" x=2", await c.NextAsync(), StringComparison.Ordinal); // the record kept the last
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("ws")]
    public async Task MaximalPub_IsTooLarge_NothingApplied_AndNoLineExceedsMaxline(string transport)
    {
        const int maxLine = 1024;
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxLineBytes = maxLine);
        await using var c = await Wire.OpenAsync(node, transport);
        var head = "PUB /c/big x=";
        await c.SendAsync(head + new string('v', maxLine - head.Length));
        Assert.StartsWith("ERR TOO_LARGE @subject=/c/big ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("SUB /c/big");
        Assert.Equal("STATUS /c/big NOT_FOUND", await c.NextAsync());

        // A record grows by PUBs up to the limit (maxline - subject - 80), exactly: rewriting a field
        // counts its new length only; one more field is refused; PUBIMAGE starts again.
        var room = maxLine - "/c/big".Length - 80;
        var a = new string('a', room - 3); // " x=" + value
        await c.SendAsync($"PUB /c/big @ack=1 x={a}");
        var (ack, image) = await AckAndRecordAsync(c);
        Assert.Equal("ACK 1", ack);
        Assert.StartsWith("IMAGE /c/big ", image, StringComparison.Ordinal);
        Assert.True(image.Length <= maxLine, $"an IMAGE of {image.Length} bytes, over maxline {maxLine}");
        await c.SendAsync($"PUB /c/big @ack=2 x={a[1..]}b");
        (ack, var update) = await AckAndRecordAsync(c);
        Assert.Equal("ACK 2", ack);
        Assert.StartsWith("UPDATE /c/big ", update, StringComparison.Ordinal);
        await c.SendAsync("PUB /c/big @ack=3 y=1");
        Assert.StartsWith("NACK 3 TOO_LARGE ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("PUBIMAGE /c/big @ack=4 y=1");
        (ack, image) = await AckAndRecordAsync(c);
        Assert.Equal("ACK 4", ack);
        Assert.EndsWith(" y=1", image, StringComparison.Ordinal);
    }

    /// <summary>The ACK and the IMAGE or UPDATE of one publication, in whichever order they came.</summary>
    private static async Task<(string Ack, string Record)> AckAndRecordAsync(IWire c)
    {
        var first = await c.NextAsync() ?? "<closed>";
        var second = await c.NextAsync() ?? "<closed>";
        return first.StartsWith("ACK ", StringComparison.Ordinal) ? (first, second) : (second, first);
    }

    [Fact]
    public async Task WebSocketMessage_EndsItsLastLine_WithOrWithoutLf()
    {
        await using var node = await TestNode.StartAsync();
        await using var ws = await WsWire.ConnectAsync(node);
        await ws.SendMessageAsync("HELLO 1 client=test"u8.ToArray());
        Assert.StartsWith("WELCOME 1 ", await ws.NextAsync(), StringComparison.Ordinal);
        await ws.SendMessageAsync("PING x"u8.ToArray());
        await ws.SendMessageAsync("PING y\nPING z"u8.ToArray());
        Assert.Equal("PONG x", await ws.NextAsync()); // was joined with the next message: "PING xPING y"
        Assert.Equal("PONG y", await ws.NextAsync());
        Assert.Equal("PONG z", await ws.NextAsync());
    }

    [Fact]
    public async Task WebSocketMessage_NotUtf8_ClosesWith1007()
    {
        await using var node = await TestNode.StartAsync();
        await using var ws = await WsWire.ConnectAsync(node);
        await ws.SendAsync("HELLO 1 client=test");
        Assert.StartsWith("WELCOME 1 ", await ws.NextAsync(), StringComparison.Ordinal);
        await ws.SendMessageAsync([.. "PUB /x a="u8, 0xC3, 0x28, (byte)'\n']);
        while (await ws.NextAsync() is not null)
        {
        }

        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, ws.CloseStatus);
    }
}
