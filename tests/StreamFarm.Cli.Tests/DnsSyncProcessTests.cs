using System.Diagnostics;
using System.Security.Cryptography;

using StreamFarm.Dns.Sync.Tests;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// The operator's path, end to end with real processes: <c>streamfarm node</c> processes and a
/// <c>streamfarm dns-sync</c> process keeping a real Knot's zone current. Run against the .NET build
/// by default and against the native executable with <c>STREAMFARM_BINARY</c> (test.sh does both):
/// dns-sync's updates go through ARSoft.Tools.Net, the one library whose AOT warnings the native
/// build accepts (scripts/native.sh), so this is where that acceptance is checked.
/// </summary>
public sealed class DnsSyncProcessTests
{
    private const string Subnet = "127.0.53";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [KnotFact]
    public async Task DnsSyncProcess_WritesTheFarmIntoKnot_AndRemovesAServerThatStops()
    {
        await using var knot = await KnotServer.StartAsync();
        var gossipKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var tsig = $"{knot.Key.Name}:{knot.Key.Algorithm}:{Convert.ToBase64String(knot.Key.Secret)}";
        await using var s1 = Start("node", "--id", "s1", "--listen", $"{Subnet}.2", "--tcp-port", "0", "--http-port", "0", "--route-port", "0",
            "--gossip-key", gossipKey, "--preset", "local");
        await using var s2 = Start("node", "--id", "s2", "--listen", $"{Subnet}.3", "--tcp-port", "0", "--http-port", "0", "--route-port", "0",
            "--gossip-key", gossipKey, "--preset", "local", "--seeds", $"{Subnet}.2");
        await using var sync = Start("dns-sync", "--server", knot.EndPoint.ToString(), "--zone", KnotServer.Zone, "--tsig", tsig,
            "--seeds", $"{Subnet}.2", "--gossip-key", gossipKey, "--listen", $"{Subnet}.9", "--preset", "local");

        var service = $"stream.{KnotServer.Zone}";
        await WaitForAsync(async () => (await knot.AddressesAsync(service)).SequenceEqual([$"{Subnet}.2", $"{Subnet}.3"]),
            () => $"Knot never served both servers for {service}: {string.Join(",", knot.AddressesAsync(service).Result)}\n{s1.Stderr}\n{sync.Stdout}\n{sync.Stderr}");
        Assert.Equal([$"{Subnet}.3"], await knot.AddressesAsync($"s2.{KnotServer.Zone}"));

        // s2 stops (SIGTERM: it leaves the farm): dns-sync takes it out of the zone.
        s2.Signal(15);
        await WaitForAsync(async () => (await knot.AddressesAsync(service)).SequenceEqual([$"{Subnet}.2"]),
            () => $"s2 stayed in {service} after it stopped\n{sync.Stdout}\n{sync.Stderr}");
        Assert.Empty(await knot.AddressesAsync($"s2.{KnotServer.Zone}"));
        Assert.False(sync.HasExited, sync.Stderr);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, Func<string> explain)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < Deadline, explain());
            await Task.Delay(100);
        }
    }

    private static CliProcess Start(params string[] args) => CliProcess.Start(args);
}
