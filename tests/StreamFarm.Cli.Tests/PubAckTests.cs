using System.Text.Json;
using StreamFarm.Server.Auth;

namespace StreamFarm.Cli.Tests;

/// <summary><c>streamfarm pub --ack</c>: waits for each publication's acknowledgement; a refusal exits 1 with the NACK's code and text.</summary>
public sealed class PubAckTests
{
    [Fact]
    public async Task PubAck_AcknowledgedExitsZero_RefusedExitsOneWithCodeAndText_StdinLinesEachAcknowledged()
    {
        var env = new Dictionary<string, string>
        {
            ["STREAMFARM_AUTH__TOKENS__0__NAME"] = "feed",
            ["STREAMFARM_AUTH__TOKENS__0__TOKENHASH"] = PasswordHasher.HashToken("tok-1"),
            ["STREAMFARM_AUTH__TOKENS__0__PUBLISH__0"] = "/FX/*",
        };
        await using var node = CliProcess.Start(["node", "--id", "n1", "--listen", "127.0.0.46", "--tcp-port", "0", "--http-port", "0"], env);
        var tcp = (await node.WaitForOutputAsync("RTTP/TCP")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        string[] auth = ["--token", "tok-1", "--server", tcp];

        var ok = await CliProcess.RunAsync(["pub", "/FX/GBP", "bid=1.27", "--ack", "-v", .. auth]);
        Assert.True(ok.Code == 0, ok.Stderr);
        Assert.Contains("published 1 field(s) to /FX/GBP, acknowledged", ok.Stderr, StringComparison.Ordinal);

        var refused = await CliProcess.RunAsync(["pub", "/EQ/VOD", "a=1", "--ack", .. auth]);
        Assert.Equal(1, refused.Code);
        Assert.Contains("streamfarm: server n1 refused a publication to /EQ/VOD: DENIED feed may not publish to /EQ/VOD", refused.Stderr, StringComparison.Ordinal);

        var lines = await CliProcess.RunAsync(["pub", "/FX/EUR", "--ack", .. auth], stdin: "n=1\nn=2\n\nn=3\n");
        Assert.True(lines.Code == 0, lines.Stderr);
        var sub = await CliProcess.RunAsync(["sub", "/FX/EUR", "--json", "--count", "1", .. auth]);
        using (var image = JsonDocument.Parse(sub.Stdout))
        {
            Assert.Equal(3UL, image.RootElement.GetProperty("seq").GetUInt64());
            Assert.Equal("3", image.RootElement.GetProperty("fields").GetProperty("n").GetString());
        }

        var refusedLine = await CliProcess.RunAsync(["pub", "/EQ/VOD", "--ack", .. auth], stdin: "n=1\nn=2\n");
        Assert.Equal(1, refusedLine.Code);
        Assert.Contains("DENIED feed may not publish to /EQ/VOD", refusedLine.Stderr, StringComparison.Ordinal);

        var unreachable = await CliProcess.RunAsync(["pub", "/FX/GBP", "a=1", "--ack", "--server", "127.0.0.46:1"]);
        Assert.Equal(1, unreachable.Code);
    }
}
