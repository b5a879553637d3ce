using System.Text;
using Microsoft.Extensions.Configuration;
using StreamFarm.Server.Auth;

namespace StreamFarm.Server.Tests;

/// <summary>Options as a config file binds them: configured permission lists replace the defaults.</summary>
public sealed class ConfigBindingTests
{
    private static ServerOptions Bind(string json)
    {
        var options = new ServerOptions();
        new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build().Bind(options);
        options.Validate();
        return options;
    }

    [Fact]
    public void UserSubscribeList_FromConfig_NarrowsWhatTheUserMaySee()
    {
        var hash = PasswordHasher.HashPassword("pw", 1000);
        var o = Bind($$"""{ "auth": { "users": [ { "name": "alice", "passwordHash": "{{hash}}", "subscribe": ["/FX/>"] } ] } }""");
        var p = new Authenticator(o.Auth).Authenticate("alice", "pw", null)!;
        Assert.True(p.CanSubscribe("/FX/GBPUSD"));
        Assert.False(p.CanSubscribe("/EQ/VOD"));
        Assert.False(p.CanPublish("/FX/GBPUSD"));
    }

    [Fact]
    public void AnonymousLists_FromConfig_ReplaceTheDefaults()
    {
        // (An empty JSON list binds as "unset": to allow nothing, set allowAnonymous to false.)
        var o = Bind("""{ "auth": { "anonymousPublish": ["/PUB/x"], "anonymousSubscribe": ["/public/>"] } }""");
        var p = new Authenticator(o.Auth).Authenticate(null, null, null)!;
        Assert.True(p.CanPublish("/PUB/x"));
        Assert.False(p.CanPublish("/Q"));
        Assert.True(p.CanSubscribe("/public/a"));
        Assert.False(p.CanSubscribe("/private/a"));
    }

    [Fact]
    public void NothingConfigured_AnonymousMayDoEverything()
    {
        var p = new Authenticator(Bind("{}").Auth).Authenticate(null, null, null)!;
        Assert.True(p.CanPublish("/a/b"));
        Assert.True(p.CanSubscribe("/a/b"));
    }

    [Theory]
    [InlineData("streamfarm-peers", "streamfarm-peers:7401")]
    [InlineData("streamfarm-0.streamfarm-peers.prod.svc.cluster.local:7501", "streamfarm-0.streamfarm-peers.prod.svc.cluster.local:7501")]
    [InlineData("10.0.0.11", "10.0.0.11:7401")]
    [InlineData("10.0.0.11:7501", "10.0.0.11:7501")]
    [InlineData("fd00::11", "[fd00::11]:7401")]
    public void Seed_ByAddressOrName_Accepted(string seed, string expected)
    {
        var o = Bind($$"""{ "farm": { "gossipKeys": ["{{Convert.ToBase64String(new byte[32])}}"], "seeds": ["{{seed}}"] } }""");
        Assert.Equal([expected], o.Farm.SeedAddresses);
    }

    [Theory]
    [InlineData("not/a/name")]
    [InlineData("not a name:7401")]
    [InlineData("peers:0")]
    [InlineData("peers:70000")]
    [InlineData("peers:x")]
    public void Seed_NeitherAddressNorName_RefusedAtStart(string seed)
    {
        var e = Assert.Throws<ArgumentException>(() => Bind($$"""{ "farm": { "gossipKeys": ["{{Convert.ToBase64String(new byte[32])}}"], "seeds": ["{{seed}}"] } }"""));
        Assert.Contains("is not IP[:PORT] or HOST[:PORT]", e.Message, StringComparison.Ordinal);
    }
}
