using StreamFarm.Server.Auth;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>Acknowledged publishing on one server: <c>PUB ... @ack=id</c> answered by ACK or NACK (docs/protocol.md).</summary>
public sealed class AckTests
{
    [Fact]
    public async Task PublishWithAck_IsAcknowledgedAfterItIsApplied_InOrder_AndWithoutAckNothingIsSent()
    {
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        await using var sub = await node.ConnectAsync();
        await sub.SendAsync("SUB /A/x");
        await sub.ExpectAsync("STATUS /A/x NOT_FOUND");

        await pub.SendAsync("PUB /A/x @ack=one a=1");
        await pub.SendAsync("PUB /A/x b=2");
        await pub.SendAsync("PUBIMAGE /A/x @ack=img-2 c=3");
        await pub.SendAsync("PING end");
        Assert.Equal("ACK one", await pub.ExpectAsync("ACK "));
        Assert.Equal("ACK img-2", await pub.ExpectAsync("ACK "));
        Assert.Equal("PONG end", await pub.ExpectAsync("PONG"));

        // The acknowledged publications were applied: the subscriber saw them, in order.
        Assert.StartsWith("IMAGE /A/x ", await sub.ExpectAsync("IMAGE "), StringComparison.Ordinal);
        Assert.EndsWith(" b=2", await sub.ExpectAsync("UPDATE "), StringComparison.Ordinal);
        Assert.EndsWith(" c=3", await sub.ExpectAsync("IMAGE "), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PublishWithAck_Refused_IsNacked_NotAcked_AndBadIdsAreSyntaxErrors()
    {
        await using var node = await TestNode.StartAsync(o =>
            o.Auth.Tokens.Add(new TokenEntry { Name = "feed", TokenHash = PasswordHasher.HashToken("tok-1"), Subscribe = ["/>"], Publish = ["/FX/*"] }));
        await using var pub = await node.ConnectAsync(extra: "token=tok-1");

        await pub.SendAsync("PUB /EQ/VOD @ack=7 a=1");
        Assert.Equal("NACK 7 DENIED feed may not publish to /EQ/VOD", await pub.ExpectAsync("NACK "));

        await pub.SendAsync("PUB /FX/GBP @ack=" + new string('x', 65) + " a=1");
        Assert.StartsWith("ERR SYNTAX ", await pub.ExpectAsync("ERR "), StringComparison.Ordinal);
        await pub.SendAsync("PUB /FX/GBP @ack=a=b a=1"); // it would come back as a field: ACK a=b
        Assert.StartsWith("ERR SYNTAX ", await pub.ExpectAsync("ERR "), StringComparison.Ordinal);

        await pub.SendAsync("PUB /FX/GBP @ack=8 a=1");
        Assert.Equal("ACK 8", await pub.ExpectAsync("ACK "));
    }
}
