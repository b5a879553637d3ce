using StreamFarm.Faults.Tests.Farm;
using Xunit.Abstractions;

namespace StreamFarm.Faults.Tests;

/// <summary>
/// Real <c>streamfarm node</c> processes under faults, judged by <see cref="Checking.HistoryChecker"/>
/// from what independent raw-socket clients saw. Each scenario draws its schedule from a seed
/// (printed; FAULTS_SEED=n replays it) and has a loopback subnet of its own (127.0.40 to 127.0.44,
/// and 127.0.60 for the upgrade).
/// The assembly runs its tests one at a time (xunit.runner.json), so the farms do not compete for
/// the machine's cores with each other.
/// </summary>
[Trait("Category", "Faults")] // scripts/faults.sh; not in ./test.sh while they fail now and then (see the README)
public sealed class FaultScenarioTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RollingKill9_OfServers_RestartedWithTheSameIdAndAddress_WhilePublishing()
    {
        await using var run = await ScenarioRun.StartAsync("kill9", "127.0.40", 4, "lan", output);
        await run.RunAsync(async r =>
        {
            foreach (var id in r.Farm.Ids.OrderBy(_ => r.Random.Next()).Take(2).ToList())
            {
                await r.LoadAsync(2000, 4000);
                await r.Farm.Kill9Async(id);
                await r.LoadAsync(2000, 8000); // sometimes back before the farm's verdict (about 5 s on lan), sometimes after
                await r.Farm.RestartAsync(id);
            }
        });
    }

    [Fact]
    public async Task RollingKill9_WithThePresetLocal()
    {
        await using var run = await ScenarioRun.StartAsync("kill9-local", "127.0.44", 3, "local", output);
        await run.RunAsync(async r =>
        {
            foreach (var id in r.Farm.Ids.OrderBy(_ => r.Random.Next()).Take(2).ToList())
            {
                await r.LoadAsync(1500, 3000);
                await r.Farm.Kill9Async(id);
                await r.LoadAsync(500, 3000);
                await r.Farm.RestartAsync(id);
            }
        });
    }

    [Fact]
    public async Task SigStop_OfASubjectOwnerFor20Seconds_ThenAShortOneOf1500Ms()
    {
        await using var run = await ScenarioRun.StartAsync("sigstop", "127.0.41", 3, "lan", output);
        await run.RunAsync(async r =>
        {
            var owner = r.Farm.Ids[r.Random.Next(r.Farm.Ids.Count)];
            await r.LoadAsync(1000, 2000);
            r.Farm.Freeze(owner);
            await Task.Delay(20_000);
            r.Farm.Thaw(owner);
            await r.LoadAsync(4000, 6000);
            var brief = r.Farm.Ids[r.Random.Next(r.Farm.Ids.Count)];
            r.Farm.Freeze(brief);
            await Task.Delay(1500);
            r.Farm.Thaw(brief);
        });
    }

    [NftFact]
    public async Task Partition_OfAServerBothWaysFor15Seconds_ThenOneWay()
    {
        await using var run = await ScenarioRun.StartAsync("partition", "127.0.42", 3, "lan", output);
        using var partition = new Partition(run.Farm);
        await run.RunAsync(async r =>
        {
            var cut = r.Farm.Ids[r.Random.Next(r.Farm.Ids.Count)];
            await r.LoadAsync(1000, 2000);
            partition.Cut(cut, bothWays: true);
            await Task.Delay(15_000);
            partition.Heal();
            await r.LoadAsync(4000, 6000);
            var oneWay = r.Farm.Ids[r.Random.Next(r.Farm.Ids.Count)];
            partition.Cut(oneWay, bothWays: false);
            await Task.Delay(10_000);
            partition.Heal();
        }, partition);
    }

    [Fact]
    public async Task Drain_OfAServerUnderLoad()
    {
        await using var run = await ScenarioRun.StartAsync("drain", "127.0.43", 3, "lan", output);
        await run.RunAsync(async r =>
        {
            var drained = r.Farm.Ids[r.Random.Next(r.Farm.Ids.Count)];
            await r.LoadAsync(1000, 3000);
            await r.Farm.DrainAsync(drained, spreadSeconds: 3);
            await r.LoadAsync(6000, 8000);
        });
    }

    /// <summary>
    /// A rolling upgrade under load: two servers of an earlier build (scripts/old-build.sh) and one
    /// of this build serve side by side, then each old one in turn is drained, stopped and started on
    /// this build. The same invariants hold across the versions as under faults
    /// (docs/operations.md, "Upgrading a farm"). STREAMFARM_UPGRADE_FROM=&lt;commit&gt; runs it from
    /// another earlier build.
    /// </summary>
    [Fact]
    public async Task Upgrade_TwoServersOfAnEarlierBuildAndOneOfThis_ThenRollingUpgradeWithDrain()
    {
        var old = await OldBuild.PathAsync();
        await using var run = await ScenarioRun.StartAsync("upgrade", "127.0.60", 3, "lan", output, buildOf: id => id == "s3" ? null : old);
        await run.RunAsync(async r =>
        {
            await r.LoadAsync(3000, 5000); // old and new side by side (the farm started whole: every route up across the versions)
            foreach (var id in r.Farm.Ids.Where(id => id != "s3").OrderBy(_ => r.Random.Next()).ToList())
            {
                await r.Farm.DrainAsync(id, spreadSeconds: 2);
                await r.LoadAsync(2500, 3500);
                await r.Farm.RestartOnBuildAsync(id, NodeProcess.ThisBuild);
                await r.Farm.WaitRoutesUpAsync();
                r.Farm.Note("every route up again");
                await r.LoadAsync(1500, 3000);
            }
        });
    }
}
