using System.Collections.Concurrent;
using System.Globalization;
using StreamFarm.Faults.Tests.Clients;
using StreamFarm.Faults.Tests.Farm;
using Xunit.Abstractions;

namespace StreamFarm.Faults.Tests;

/// <summary>
/// Publishers that publish and close at once (a cron job, <c>printf ... | nc</c>): nobody is left to
/// tell if the farm cannot apply what they sent, so the farm must not drop it. Real
/// <c>streamfarm node</c> processes on 127.0.47, .48 and .49 (one farm per test), nftables between two of them or SIGSTOP.
/// </summary>
[Trait("Category", "Faults")]
public sealed class ScriptPublisherTests(ITestOutputHelper output)
{
    [NftFact]
    public Task ScriptsThatPublishAndClose_WhileTheirServerIsCutOffFromTheOwner_LoseNothing() => CutOffAsync("127.0.47", bothWays: true);

    [NftFact]
    public Task ScriptsThatPublishAndClose_WhileTheirServersPacketsToTheOwnerAreDropped_LoseNothing() => CutOffAsync("127.0.49", bothWays: false);

    /// <summary>
    /// s1 and s3 cannot reach each other (or s1's packets to s3 are dropped, one way); s2 reaches
    /// both, so the farm keeps s3 alive and the owner. Forty scripts, one every 250 ms for 10 s,
    /// each connect to s1, publish the next value of a subject s3 owns, and close. s1's route to s3
    /// goes down (silent, or closed by s3 for idleness, one way) and stays down past the stall
    /// limit (5 s) while scripts still publish. Publications whose publisher had gone used to be
    /// refused then, "their publishers told", and lost (2026-12-07, a million-subject restart);
    /// and one published after the route had been down 5 s was refused at the next tick, told to a
    /// script about to close, and lost (2026-12-08: 8 of these 40). After the heal, s3's subscriber
    /// must get every value, in order.
    /// </summary>
    private async Task CutOffAsync(string subnet, bool bothWays)
    {
        var logDir = ScenarioRun.LogDirOf("script-publishers-" + (bothWays ? "cut" : "one-way"), Environment.ProcessId);
        Directory.CreateDirectory(logDir);
        await using var farm = await FaultFarm.StartAsync(new LoopbackNetwork(subnet), 3, "lan", logDir, DateTime.UtcNow);
        var (at, owner) = (farm.Ids[0], farm.Ids[2]);
        var subject = farm.OwnedBy(owner, Enumerable.Range(0, 100).Select(i => $"/script/{i}"))[0];
        var seen = new ConcurrentQueue<string>();
        var (watcher, why) = await RawConnection.OpenAsync(owner, farm.Address(owner), FaultFarm.RttpPort, "watch", (line, _) => seen.Enqueue(line), CancellationToken.None);
        Assert.True(watcher is not null, $"subscriber at {owner}: {why}");
        await using var watching = watcher;
        Assert.True(await watcher.SendAsync("SUB " + subject));

        using var partition = new Partition(farm);
        partition.CutBetween(at, owner, bothWays);
        await RunScriptsAsync(farm, at, subject);
        partition.Heal();
        await Poll.UntilAsync(() => Task.FromResult(seen.Any(l => l.Contains(" v=40 ", StringComparison.Ordinal))), "v=40 at the owner's subscriber after the heal", TimeSpan.FromSeconds(45));
        var values = seen.Where(l => l.StartsWith("UPDATE ", StringComparison.Ordinal) || l.StartsWith("IMAGE ", StringComparison.Ordinal))
            .Select(l => int.Parse(l.Split(' ').First(t => t.StartsWith("v=", StringComparison.Ordinal))[2..], CultureInfo.InvariantCulture))
            .ToList();
        output.WriteLine($"{owner}'s subscriber saw:\n{string.Join('\n', seen)}\ntimeline:\n{string.Join('\n', farm.Timeline())}");
        Assert.Equal(values.Order(), values); // never back to an older value
        Assert.Empty(Enumerable.Range(1, 40).Except(values)); // and none missing: nothing merged them (the subscriber keeps up)
    }

    [Fact]
    public async Task ScriptsThatPublishAndClose_WhileTheOwnerIsFrozenLongEnoughToBeDeclaredDead_LoseNothing()
    {
        // s3, the subject's owner, is stopped (SIGSTOP) for the 10 s the scripts run at s1: the farm
        // declares it dead, its subjects move to their next owner (which takes what waited for s3),
        // and when it runs again it re-joins and gets them back. Every script's field must be in
        // the record at the end, wherever it is read.
        var logDir = ScenarioRun.LogDirOf("script-publishers-frozen", Environment.ProcessId);
        Directory.CreateDirectory(logDir);
        await using var farm = await FaultFarm.StartAsync(new LoopbackNetwork("127.0.48"), 3, "lan", logDir, DateTime.UtcNow);
        var (at, owner) = (farm.Ids[0], farm.Ids[2]);
        var subject = farm.OwnedBy(owner, Enumerable.Range(0, 100).Select(i => $"/frozen/{i}"))[0];
        farm.Freeze(owner);
        await RunScriptsAsync(farm, at, subject);
        farm.Thaw(owner);

        foreach (var id in farm.Ids)
        {
            var seen = new ConcurrentQueue<string>();
            var (reader, why) = await RawConnection.OpenAsync(id, farm.Address(id), FaultFarm.RttpPort, "check", (line, _) => seen.Enqueue(line), CancellationToken.None);
            Assert.True(reader is not null, $"reader at {id}: {why}");
            await using (reader)
            {
                // Read again until the image is whole (the subject may still be moving back to s3).
                string? image = null;
                await Poll.UntilAsync(async () =>
                {
                    seen.Clear();
                    await reader.SendAsync("SUB " + subject);
                    await Task.Delay(300);
                    image = seen.LastOrDefault(l => l.StartsWith("IMAGE ", StringComparison.Ordinal));
                    await reader.SendAsync("UNSUB " + subject);
                    return image is not null && Missing(image).Count == 0;
                }, $"every script's field in the image at {id}", TimeSpan.FromSeconds(45));
                output.WriteLine($"{id}: {image}");
            }
        }

        output.WriteLine(string.Join('\n', farm.Timeline()));
    }

    /// <summary>Forty scripts, one every 250 ms, each: connect to <paramref name="at"/>, publish <c>v=n sn=1</c>, close once the server has read it.</summary>
    private static async Task RunScriptsAsync(FaultFarm farm, string at, string subject)
    {
        for (var v = 1; v <= 40; v++)
        {
            var replies = new ConcurrentQueue<string>();
            var (script, failed) = await RawConnection.OpenAsync(at, farm.Address(at), FaultFarm.RttpPort, $"script{v}", (line, _) => replies.Enqueue(line), CancellationToken.None);
            Assert.True(script is not null, $"script {v} at {at}: {failed}");
            await using (script)
            {
                Assert.True(await script.SendAsync($"PUB {subject} v={v} s{v}=1"));

                // Closed once the server has read the line (its PONG comes after): a close with
                // unread input would reset the connection, and a reset may lose what it carried.
                Assert.True(await script.SendAsync($"PING done{v}"));
                await Poll.UntilAsync(() => Task.FromResult(replies.Contains($"PONG done{v}")), $"script {v}'s PONG", TimeSpan.FromSeconds(10));
            }

            await Task.Delay(250);
        }
    }

    /// <summary>The scripts whose field <paramref name="recordLine"/> (an IMAGE or UPDATE) lacks.</summary>
    private static List<int> Missing(string recordLine)
    {
        var fields = recordLine.Split(' ').ToHashSet(StringComparer.Ordinal);
        return [.. Enumerable.Range(1, 40).Where(v => !fields.Contains($"s{v}=1"))];
    }
}
