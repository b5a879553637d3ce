using StreamFarm.Server.Auth;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

public sealed class AuthTests
{
    private static Task<StreamFarmNode> StartSecuredAsync() => TestNode.StartAsync(o =>
    {
        o.Auth.Users.Add(new UserEntry { Name = "alice", PasswordHash = PasswordHasher.HashPassword("s3cret", 1000), Subscribe = ["/FX/>"], Publish = ["/FX/*"] });
        o.Auth.Tokens.Add(new TokenEntry { Name = "feed", TokenHash = PasswordHasher.HashToken("tok-123"), Subscribe = ["/>"], Publish = ["/>"] });
    });

    [Fact]
    public async Task NoCredentials_WhenUsersConfigured_AuthFailed()
    {
        await using var node = await StartSecuredAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("HELLO 1");
        Assert.StartsWith("ERR AUTH_FAILED ", Assert.Single(await c.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GroupOnlyServer_RefusesAnotherGroup_WithWrongGroup_ServesItsOwnAndClientsWithoutGroup()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Group = "west";
            o.GroupOnly = true;
        });
        await using (var east = await node.ConnectAsync(hello: false))
        {
            await east.SendAsync("HELLO 1 client=x group=east");
            Assert.Equal("ERR WRONG_GROUP @group=west @after=0 server t1 serves group west only, not east: choose a server of your group", Assert.Single(await east.ReadToEndAsync()));
        }

        await using var west = await node.ConnectAsync(extra: "group=west");
        await using var unknown = await node.ConnectAsync();
        Assert.Equal(2, node.Server.Users);
    }

    [Fact]
    public async Task WrongPassword_AuthFailed()
    {
        await using var node = await StartSecuredAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("HELLO 1 user=alice password=wrong");
        Assert.StartsWith("ERR AUTH_FAILED ", Assert.Single(await c.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownUser_AuthFailed()
    {
        await using var node = await StartSecuredAsync();
        await using var c = await node.ConnectAsync(hello: false);
        await c.SendAsync("HELLO 1 user=mallory password=s3cret");
        Assert.StartsWith("ERR AUTH_FAILED ", Assert.Single(await c.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task User_PermissionsByPattern_DeniedSubscribeAndPublish()
    {
        await using var node = await StartSecuredAsync();
        await using var c = await node.ConnectAsync(extra: "user=alice password=s3cret");
        await c.SendAsync("SUB /EQ/VOD /FX/GBPUSD");
        Assert.Equal("STATUS /EQ/VOD DENIED", await c.NextAsync());
        Assert.Equal("STATUS /FX/GBPUSD NOT_FOUND", await c.NextAsync());
        await c.SendAsync("PUB /FX/deep/er a=1");
        Assert.StartsWith("ERR DENIED ", await c.NextAsync(), StringComparison.Ordinal);
        await c.SendAsync("PUB /FX/GBPUSD a=1");
        Assert.Matches(@"^IMAGE /FX/GBPUSD \d+ 1 a=1$", await c.NextAsync());
    }

    [Fact]
    public async Task Token_Accepted_WrongTokenRefused()
    {
        await using var node = await StartSecuredAsync();
        await using (var ok = await node.ConnectAsync(extra: "token=tok-123"))
        {
            await ok.SendAsync("PUB /anything a=1");
            await ok.SendAsync("PING t");
            Assert.Equal("PONG t", await ok.NextAsync());
        }

        await using var bad = await node.ConnectAsync(hello: false);
        await bad.SendAsync("HELLO 1 token=nope");
        Assert.StartsWith("ERR AUTH_FAILED ", Assert.Single(await bad.ReadToEndAsync()), StringComparison.Ordinal);
    }

    [Fact]
    public void PasswordHash_VerifiesOnlyTheRightPassword()
    {
        var hash = PasswordHasher.HashPassword("pw", 1000);
        Assert.True(PasswordHasher.VerifyPassword("pw", hash));
        Assert.False(PasswordHasher.VerifyPassword("pW", hash));
        Assert.False(PasswordHasher.VerifyPassword("pw", "garbage"));
        Assert.NotEqual(hash, PasswordHasher.HashPassword("pw", 1000)); // salted
    }

    [Fact]
    public void Options_BadPattern_Rejected()
    {
        var o = new ServerOptions();
        o.Auth.AnonymousPublish = ["FX/no-slash"];
        Assert.Throws<ArgumentException>(o.Validate);
    }

    [Theory]
    [InlineData("node=1")]
    [InlineData("two words")]
    [InlineData("")]
    public void Options_IdThatCannotTravelAsAToken_Rejected(string id)
    {
        Assert.Throws<ArgumentException>(new ServerOptions { Id = id }.Validate);
    }
}
