using StreamFarm.Server.Auth;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>The system subjects a node publishes (/~sys/server/id, /~sys/subjects/id) and who may read them.</summary>
public sealed class SystemSubjectTests
{
    /// <summary>The first line about <paramref name="subject"/> that starts with <paramref name="verb"/>, skipping a NOT_FOUND before the first publication.</summary>
    private static async Task<string> FirstAsync(LineClient c, string verb, string subject)
    {
        while (true)
        {
            var line = await c.NextAsync() ?? throw new InvalidOperationException($"closed while waiting for {verb} {subject}");
            if (line.StartsWith($"{verb} {subject} ", StringComparison.Ordinal))
            {
                return line;
            }
        }
    }

    [Fact]
    public async Task ServerStatus_WithoutAuth_ReadableByAnyone_CountersAndLimits()
    {
        await using var node = await TestNode.StartAsync(o => o.Capacity = 77);
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PUB /a/b v=1");
        await c.SendAsync("SUB /~sys/server/t1 /~sys/subjects/t1");
        var image = await FirstAsync(c, "IMAGE", "/~sys/server/t1");
        foreach (var field in new[] { " id=t1 ", " state=active ", " users=1 ", " capacity=77 ", " max_line=16384 ", " max_subs=10000 ", " msgs_in=", " out_rate=" })
        {
            Assert.Contains(field, image, StringComparison.Ordinal);
        }

        var catalog = await FirstAsync(c, "IMAGE", "/~sys/subjects/t1");
        Assert.EndsWith(" count=1 names=/a/b", catalog, StringComparison.Ordinal);
        Assert.StartsWith("UPDATE /~sys/server/t1 ", await FirstAsync(c, "UPDATE", "/~sys/server/t1"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Catalog_ManySubjects_TheFirstNamesInOrderThatFitIn8KiB()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        var random = new Random(16);
        var names = Enumerable.Range(0, 1500).Select(i => $"/n/{new string((char)('a' + random.Next(26)), random.Next(1, 30))}{i}").ToList();
        foreach (var name in names)
        {
            await c.SendAsync($"PUB {name} v=1");
        }

        await c.SendAsync("SUB /~sys/subjects/t1");
        string catalog;
        do
        {
            // the IMAGE, then an UPDATE every 3 s while the list changes
            catalog = await c.NextAsync() ?? throw new InvalidOperationException("closed while waiting for the catalog");
        }
        while (!(catalog.Contains(" /~sys/subjects/t1 ", StringComparison.Ordinal) && catalog.Contains(" count=1500 ", StringComparison.Ordinal)));

        var shown = catalog[(catalog.IndexOf(" names=", StringComparison.Ordinal) + " names=".Length)..];
        var sorted = names.Order(StringComparer.Ordinal).ToList();
        var kept = shown.Split(',');
        Assert.Equal(sorted.Take(kept.Length), kept);
        Assert.True(shown.Length <= Subjects.SystemSubjectPublisher.CatalogBytes, $"{shown.Length} bytes");
        Assert.True(shown.Length + 1 + sorted[kept.Length].Length > Subjects.SystemSubjectPublisher.CatalogBytes, "the next name would have fitted");
    }

    [Fact]
    public async Task Publish_ToASystemSubject_DeniedEvenWithEveryPermission()
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await node.ConnectAsync();
        await c.SendAsync("PUB /~sys/server/t1 users=0");
        Assert.StartsWith("ERR DENIED ", await c.ExpectAsync("ERR "), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithAuth_AWildcardDoesNotReachSystemSubjects_AnExplicitPatternDoes()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Auth.Tokens.Add(new TokenEntry { Name = "all", TokenHash = PasswordHasher.HashToken("tok-all"), Subscribe = ["/>"], Publish = ["/>"] });
            o.Auth.Tokens.Add(new TokenEntry { Name = "ops", TokenHash = PasswordHasher.HashToken("tok-ops"), Subscribe = ["/~sys/>"] });
        });
        await using (var all = await node.ConnectAsync(extra: "token=tok-all"))
        {
            await all.SendAsync("SUB /~sys/server/t1");
            Assert.Equal("STATUS /~sys/server/t1 DENIED", await all.ExpectAsync("STATUS "));
        }

        await using var ops = await node.ConnectAsync(extra: "token=tok-ops");
        await ops.SendAsync("SUB /~sys/server/t1");
        Assert.Contains(" id=t1 ", await FirstAsync(ops, "IMAGE", "/~sys/server/t1"), StringComparison.Ordinal);
    }

    [Fact]
    public void Permissions_SystemSubjects_Table()
    {
        var wildcard = new Permissions("w", ["/>", "/*/server/t1"], ["/>"]);
        Assert.False(wildcard.CanSubscribe("/~sys/server/t1"));
        Assert.True(wildcard.CanSubscribe("/FX/GBPUSD"));
        Assert.False(wildcard.CanPublish("/~sys/server/t1"));
        var explicitly = new Permissions("e", ["/~sys/server/*"], []);
        Assert.True(explicitly.CanSubscribe("/~sys/server/t1"));
        Assert.False(explicitly.CanSubscribe("/~sys/subjects/t1"));
        var open = new Permissions("anonymous", ["/>"], ["/>"], systemReadable: true);
        Assert.True(open.CanSubscribe("/~sys/subjects/t1"));
        Assert.False(open.CanPublish("/~sys/subjects/t1"));
    }
}
