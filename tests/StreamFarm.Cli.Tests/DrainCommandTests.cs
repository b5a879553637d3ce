using System.Diagnostics;
using System.Text.Json;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// <c>streamfarm drain</c> as a container's preStop hook runs it: no <c>--http</c> (the server is the
/// one the environment configures), and <c>--wait</c>.
/// </summary>
public sealed class DrainCommandTests
{
    [Fact]
    public async Task Drain_WithoutHttp_DrainsTheServerTheEnvironmentConfiguresAndWaitsTheSpread()
    {
        await using var node = CliProcess.Start(["node", "--id", "d1", "--listen", "127.0.60.20", "--tcp-port", "0", "--http-port", "0"]);
        var http = (await node.WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var port = new Uri(http).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var clock = Stopwatch.StartNew();
        var drain = await CliProcess.RunAsync(["drain", "--spread", "1", "--wait"],
            new Dictionary<string, string> { ["STREAMFARM_LISTEN"] = "127.0.60.20", ["STREAMFARM_HTTPPORT"] = port, ["STREAMFARM_CONFIG"] = "" });
        Assert.True(drain.Code == 0, drain.Stderr);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), "--wait returned before the spread");
        Assert.Contains("draining:", drain.Stdout, StringComparison.Ordinal);
        Assert.Contains("drained", drain.Stdout, StringComparison.Ordinal);

        using var client = new HttpClient();
        using var farm = JsonDocument.Parse(await client.GetStringAsync(http + "/farm"));
        Assert.Equal("draining", farm.RootElement[0].GetProperty("state").GetString());
    }

    [Fact]
    public async Task Drain_WithoutHttpAndNoServerConfiguredHere_UsageError()
    {
        var drain = await CliProcess.RunAsync(["drain"], new Dictionary<string, string> { ["STREAMFARM_LISTEN"] = "", ["STREAMFARM_CONFIG"] = "" });
        Assert.Equal(2, drain.Code);
        Assert.Contains("give --http HOST:PORT", drain.Stderr, StringComparison.Ordinal);
    }
}
