using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// <c>HELLO ... stamps=1</c>: record lines carry the stamps of their writes, as route lines do, so
/// that a client can keep a field from going back (docs/protocol.md, 4a, "Refusing to go back").
/// A client that did not ask gets the plain lines.
/// </summary>
public sealed class StampedLinesTests
{
    [Fact]
    public async Task ClientAskingForStamps_GetsThemOnImagesAndUpdates_OthersGetPlainLines()
    {
        await using var node = await TestNode.StartAsync();
        await using var pub = await node.ConnectAsync();
        await using var stamped = await LineClient.ConnectAsync(node.TcpEndPoint);
        await stamped.SendAsync("HELLO 1 client=stamped stamps=1");
        Assert.Contains(" stamps=1", await stamped.ExpectAsync("WELCOME 1 "), StringComparison.Ordinal);
        await using var plain = await node.ConnectAsync();

        await pub.SendAsync("PUB /st/x a=1 b=2");
        await pub.SendAsync("PUB /st/x a=3");
        await pub.SendAsync("PING p");
        await pub.ExpectAsync("PONG p");
        await stamped.SendAsync("SUB /st/x");
        await plain.SendAsync("SUB /st/x");

        var image = Stamps(await RecordLineAsync(stamped, "IMAGE /st/x "));
        Assert.Equal(2, image.Fts.Length); // one stamp per field, in field order (a=3 b=2)
        Assert.True(image.Fts[0] > image.Fts[1], $"a was written after b: {string.Join(",", image.Fts)}");
        Assert.DoesNotContain("@", await RecordLineAsync(plain, "IMAGE /st/x "), StringComparison.Ordinal);

        await pub.SendAsync("PUB /st/x b=4");
        var update = Stamps(await RecordLineAsync(stamped, "UPDATE /st/x "));
        Assert.True(update.Ts > image.Fts[0], $"the update's stamp {update.Ts} is later than every earlier write ({string.Join(",", image.Fts)})");
        Assert.DoesNotContain("@", await RecordLineAsync(plain, "UPDATE /st/x "), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2")]
    [InlineData("yes")]
    public async Task StampsOtherThanOneOrZero_AreASyntaxError(string value)
    {
        await using var node = await TestNode.StartAsync();
        await using var c = await LineClient.ConnectAsync(node.TcpEndPoint);
        await c.SendAsync("HELLO 1 client=x stamps=" + value);
        Assert.StartsWith("ERR SYNTAX ", await c.NextAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task InAFarm_StampsReachTheClient_FromTheOwner_AndThroughAReplica()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.23", servers: 2);
        await farm.RoutesUpAsync();
        var (s2, s3) = (farm.Nodes[0], farm.Nodes[1]);
        var ownedHere = farm.SubjectOwnedBy("s3", "/st/own");
        var ownedThere = farm.SubjectOwnedBy("s2", "/st/far");
        await using var pub = await s2.ConnectAsync();
        await using var sub = await s3.ConnectAsync(extra: "stamps=1");
        await sub.SendAsync($"SUB {ownedHere} {ownedThere}");
        await Eventually.TrueAsync(() => s2.Server.Subscriptions >= 1, "the replica subscribed at the owner");

        foreach (var subject in new[] { ownedHere, ownedThere })
        {
            await pub.SendAsync($"PUB {subject} v=1 w=1");
            var image = Stamps(await RecordLineAsync(sub, $"IMAGE {subject} "));
            Assert.Equal(2, image.Fts.Length);
            await pub.SendAsync($"PUB {subject} v=2");
            var update = Stamps(await RecordLineAsync(sub, $"UPDATE {subject} "));
            Assert.True(update.Ts > image.Fts.Max(), $"{subject}: update stamp {update.Ts} after the image's {string.Join(",", image.Fts)}");
        }
    }

    /// <summary>The next IMAGE or UPDATE line of this prefix, past STATUS lines.</summary>
    private static async Task<string> RecordLineAsync(LineClient c, string prefix)
    {
        while (true)
        {
            var line = await c.NextAsync() ?? throw new InvalidOperationException($"closed while waiting for {prefix}");
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }

            Assert.StartsWith("STATUS ", line, StringComparison.Ordinal);
        }
    }

    private static (ulong[] Fts, ulong Ts) Stamps(string line)
    {
        ulong[] fts = [];
        ulong ts = 0;
        foreach (var token in line.Split(' '))
        {
            if (token.StartsWith("@fts=", StringComparison.Ordinal))
            {
                fts = [.. token[5..].Split(',').Select(s => ulong.Parse(s, System.Globalization.CultureInfo.InvariantCulture))];
            }
            else if (token.StartsWith("@ts=", StringComparison.Ordinal))
            {
                ts = ulong.Parse(token[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        Assert.True(fts.Length > 0 || ts != 0, $"no stamps in '{line}'");
        return (fts, ts);
    }
}
