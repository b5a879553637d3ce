using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// Meta attributes that servers use among themselves (stamps, seeds, hops, merge counts) are
/// refused when a client sends them: a client cannot make its write outlive later ones with a
/// forged stamp, nor pass a seed or a merge count on (they were forwarded to the subject's owner
/// over the route, which believed them).
/// </summary>
public sealed class ForgedMetaTests
{
    [Theory]
    [InlineData("@ts=18446744073709551615")]
    [InlineData("@fts=18446744073709551615")]
    [InlineData("@clr=18446744073709551615 @fts=18446744073709551615")]
    [InlineData("@seed=99999999999999.1 @handover=1")]
    [InlineData("@merged=7 @hop=2")]
    public async Task ServerMetaFromAClient_IsRefusedWithSyntax_NothingPublished_ALaterPublicationWins(string forged)
    {
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        await using var sub = await node.ConnectAsync();
        await pub.SendAsync($"PUB /forged/x {forged} v=1");
        var error = await pub.ExpectAsync("ERR ");
        Assert.StartsWith("ERR SYNTAX @subject=/forged/x ", error, StringComparison.Ordinal);
        Assert.Contains("only @ack", error, StringComparison.Ordinal);
        await pub.SendAsync("PUB /forged/x @ack=a1 v=2");
        await pub.ExpectAsync("ACK a1");
        await pub.SendAsync("PING done");
        await pub.ExpectAsync("PONG done");
        await sub.SendAsync("SUB /forged/x");
        var image = await sub.ExpectAsync("IMAGE /forged/x ");
        Assert.EndsWith(" v=2", image, StringComparison.Ordinal);
        Assert.DoesNotContain("@", image, StringComparison.Ordinal);
    }
}
