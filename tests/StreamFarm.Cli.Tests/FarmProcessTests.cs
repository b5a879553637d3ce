using System.Text.Json;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// Three servers as separate processes on 127.0.0.2, .3 and .4 (gossip on port 17401, so a demo on
/// the default ports is not disturbed): they converge; kill -9 of one is seen as dead; restarted, it
/// is active again; stopped gracefully, it is leaving and then gone. Outcomes are polled with a
/// generous deadline; nothing asserts on speed.
/// </summary>
public sealed class FarmProcessTests
{
    private const int GossipPort = 17401;
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

    private static CliProcess StartServer(int n) => CliProcess.Start(
    [
        "node", "--id", $"s{n}", "--listen", $"127.0.0.{n}", "--tcp-port", "0", "--http-port", "0",
        "--gossip-port", $"{GossipPort}", "--seeds", $"127.0.0.2:{GossipPort},127.0.0.3:{GossipPort}",
        "--gossip-key", Key, "--preset", "local", "--farm-name", "process-test",
    ]);

    private static async Task<List<JsonElement>> FarmAsync(string http)
    {
        using var client = new HttpClient();
        using var doc = JsonDocument.Parse(await client.GetStringAsync(http + "/farm"));
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not reached: {what}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task<bool> SeesAsync(string http, string id, string state, string liveness) =>
        (await FarmAsync(http)).Any(m => m.GetProperty("id").GetString() == id && m.GetProperty("state").GetString() == state && m.GetProperty("liveness").GetString() == liveness);

    [Fact]
    public async Task ThreeProcesses_Converge_DetectKill_Rejoin_LeaveGracefully()
    {
        var servers = new Dictionary<int, CliProcess>();
        var http = new Dictionary<int, string>();
        try
        {
            foreach (var n in new[] { 2, 3, 4 })
            {
                servers[n] = StartServer(n);
                http[n] = (await servers[n].WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            }

            // Converge: every server sees all three alive and active.
            foreach (var observer in new[] { 2, 3, 4 })
            {
                foreach (var n in new[] { 2, 3, 4 })
                {
                    await EventuallyAsync(() => SeesAsync(http[observer], $"s{n}", "active", "alive"), $"s{observer} sees s{n} active");
                }
            }

            // kill -9: the others mark it dead.
            servers[4].Signal(9);
            await servers[4].WaitForExitAsync();
            await EventuallyAsync(async () => await SeesAsync(http[2], "s4", "active", "dead") && await SeesAsync(http[3], "s4", "active", "dead"), "s4 dead everywhere");

            // Restarted: active again everywhere.
            await servers[4].DisposeAsync();
            servers[4] = StartServer(4);
            http[4] = (await servers[4].WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            foreach (var observer in new[] { 2, 3, 4 })
            {
                await EventuallyAsync(() => SeesAsync(http[observer], "s4", "active", "alive"), $"s{observer} sees s4 back");
            }

            // Graceful stop: leaving, then gone from every table.
            servers[3].Signal(15);
            Assert.Equal(0, await servers[3].WaitForExitAsync());
            foreach (var observer in new[] { 2, 4 })
            {
                await EventuallyAsync(async () => (await FarmAsync(http[observer])).All(m => m.GetProperty("id").GetString() != "s3"), $"s{observer} forgot s3");
            }

            Assert.DoesNotContain(servers[2].Stdout.Split('\n'), l => l.Contains("dead", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var s in servers.Values)
            {
                await s.DisposeAsync();
            }
        }
    }
}
