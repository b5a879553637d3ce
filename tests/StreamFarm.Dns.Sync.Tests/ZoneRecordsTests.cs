using static StreamFarm.Dns.Sync.Tests.Farm;

namespace StreamFarm.Dns.Sync.Tests;

public sealed class ZoneRecordsTests
{
    private static readonly RRsetKey ServiceA = new("stream.farm.test", RecordKind.A);
    private static readonly RRsetKey ServiceAaaa = new("stream.farm.test", RecordKind.Aaaa);
    private static readonly RRsetKey Registry = new("_streamfarm-sync.farm.test", RecordKind.Txt);

    [Fact]
    public void ServiceName_HoldsOnlyAliveAndActiveServers()
    {
        var table = Table(1,
            Server("s1", "127.0.0.2"),
            Server("s2", "127.0.0.3", state: "draining"),
            Server("s3", "127.0.0.4", liveness: "dead"),
            Server("s4", "127.0.0.5", liveness: "suspect"),
            Server("s5", "127.0.0.6", state: "joining"),
            Server("s6", "127.0.0.7", state: "leaving", liveness: "dead"),
            Server("s7", "127.0.0.8"));

        var zone = ZoneRecords.From(table, Options());

        Assert.Equal(["127.0.0.2", "127.0.0.8"], zone.Sets[ServiceA]);
        Assert.Empty(zone.Sets[ServiceAaaa]);
    }

    [Fact]
    public void ServerNames_ExistForAliveServersInAnyState()
    {
        var table = Table(1,
            Server("S1", "127.0.0.2"),
            Server("s2", "127.0.0.3", state: "draining"),
            Server("s3", "127.0.0.4", liveness: "dead"),
            Server("s4", "127.0.0.5", liveness: "suspect"));

        var zone = ZoneRecords.From(table, Options());

        Assert.Equal(["s1", "s2"], zone.Servers);
        Assert.Equal(["127.0.0.2"], zone.Sets[new RRsetKey("s1.farm.test", RecordKind.A)]);
        Assert.Equal(["127.0.0.3"], zone.Sets[new RRsetKey("s2.farm.test", RecordKind.A)]);
        Assert.False(zone.Sets.ContainsKey(new RRsetKey("s3.farm.test", RecordKind.A)));
        Assert.False(zone.Sets.ContainsKey(new RRsetKey("s4.farm.test", RecordKind.A)));
        Assert.Equal(["s1", "s2"], zone.Sets[Registry]);
    }

    [Fact]
    public void Ipv6Servers_GetAaaaRecords_AndDuplicateAddressesAppearOnce()
    {
        var table = Table(1, Server("a", "2001:db8::1"), Server("b", "127.0.0.2"), Server("c", "127.0.0.2"));

        var zone = ZoneRecords.From(table, Options());

        Assert.Equal(["2001:db8::1"], zone.Sets[ServiceAaaa]);
        Assert.Equal(["127.0.0.2"], zone.Sets[ServiceA]);
        Assert.Equal(["2001:db8::1"], zone.Sets[new RRsetKey("a.farm.test", RecordKind.Aaaa)]);
    }

    [Fact]
    public void IdsThatAreNotOneLabel_HostNames_AndOurOwnNames_GetNoServerName()
    {
        var table = Table(1,
            Server("has.dot", "127.0.0.2"),
            Server("stream", "127.0.0.3"),
            Server("_streamfarm-sync", "127.0.0.4"),
            new Protocol.FarmMember { Id = "named", Tcp = "server.example:7400" },
            new Protocol.FarmMember { Id = "none" });

        var zone = ZoneRecords.From(table, Options());

        Assert.Empty(zone.Servers);
        Assert.Equal(["127.0.0.2", "127.0.0.3", "127.0.0.4"], zone.Sets[ServiceA]); // still serving clients
        Assert.Equal(3, zone.Sets.Count); // service A, AAAA, registry
    }

    [Fact]
    public void Diff_ReplacesOnlyChangedRRsets_WithTheOldContentAsPrerequisite()
    {
        var options = Options();
        var before = ZoneRecords.From(Table(1, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")), options);
        var after = ZoneRecords.From(Table(2, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3", state: "draining")), options);

        var changes = DnsSync.Diff(before.Sets, after.Sets);

        var change = Assert.Single(changes);
        Assert.Equal(ServiceA, change.Key);
        Assert.Equal(["127.0.0.2", "127.0.0.3"], change.Before!);
        Assert.Equal(["127.0.0.2"], change.After);
    }

    [Fact]
    public void Diff_ServerThatDied_LosesItsNameAndRegistryEntry()
    {
        var options = Options();
        var before = ZoneRecords.From(Table(1, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")), options);
        var after = ZoneRecords.From(Table(2, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3", liveness: "dead")), options);

        var changes = DnsSync.Diff(before.Sets, after.Sets).ToDictionary(c => c.Key);

        Assert.Equal(3, changes.Count);
        Assert.Empty(changes[new RRsetKey("s2.farm.test", RecordKind.A)].After);
        Assert.Equal(["127.0.0.2"], changes[ServiceA].After);
        Assert.Equal(["s1"], changes[Registry].After);
    }

    [Theory]
    [InlineData("sync-key:hmac-sha256:c2VjcmV0", "sync-key", "hmac-sha256")]
    [InlineData("Sync-Key.:SHA512:c2VjcmV0", "sync-key", "hmac-sha512")]
    [InlineData("hmac-sha256:sync-key:c2VjcmV0", "sync-key", "hmac-sha256")]
    public void TsigKey_Parses(string text, string name, string algorithm)
    {
        var key = TsigKey.Parse(text);

        Assert.Equal(name, key.Name);
        Assert.Equal(algorithm, key.Algorithm);
        Assert.Equal("secret"u8.ToArray(), key.Secret);
        Assert.DoesNotContain("c2VjcmV0", key.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sync-key:hmac-sha256")]
    [InlineData("sync-key:hmac-foo:c2VjcmV0")]
    [InlineData("sync-key:hmac-sha256:not base64!")]
    [InlineData(":hmac-sha256:c2VjcmV0")]
    public void TsigKey_RejectsMalformedText(string text) => Assert.Throws<ArgumentException>(() => TsigKey.Parse(text));

    [Fact]
    public void UpdateMessage_HasPrerequisitesOnlyForIncrementalChanges()
    {
        var incremental = new ZoneUpdate("farm.test", TimeSpan.FromSeconds(5),
        [
            new RRsetChange(ServiceA, ["127.0.0.2", "127.0.0.3"], ["127.0.0.2"]),
            new RRsetChange(new RRsetKey("s9.farm.test", RecordKind.A), [], ["127.0.0.9"]),
        ], Full: false);
        var full = incremental with { Changes = [.. incremental.Changes.Select(c => c with { Before = null })], Full = true };

        var a = ArsoftUpdateClient.Build(incremental);
        var b = ArsoftUpdateClient.Build(full);

        Assert.Equal(3, a.Prequisites.Count); // two value-dependent records, one "does not exist"
        Assert.Equal(4, a.Updates.Count);     // two deletes, two adds
        Assert.Empty(b.Prequisites);
        Assert.Equal(4, b.Updates.Count);
    }
}
