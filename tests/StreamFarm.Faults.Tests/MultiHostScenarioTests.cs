using System.Globalization;
using System.Text.Json;
using StreamFarm.Faults.Tests.Checking;
using StreamFarm.Faults.Tests.Farm;
using StreamFarm.Faults.Tests.Hosts;
using Xunit.Abstractions;

namespace StreamFarm.Faults.Tests;

/// <summary>
/// A farm across hosts: five network namespaces joined by a bridge stand in for five machines, each
/// running one <c>streamfarm node</c> with the farm's DNS responder on its port 53; a sixth is the
/// clients' machine, with a real <c>unbound</c> that the farm's zone is delegated to. On it the
/// scenario's raw clients publish and subscribe (as in the other scenarios), and the product's own
/// client (<c>streamfarm sub --service stream --dns &lt;unbound&gt;</c>) finds the farm by name.
/// Faults, hosts and timings from the seed: a host cut off from the network and healed, a host's
/// process killed (-9) and started again, a host's wall clock stepped by 30 s (forward or back)
/// while it runs, and then that host's process killed and started again at once with its clock
/// still stepped. Judged by the fault suite's history checker (I1-I5, the product clients among
/// the subscribers) and by what the resolver answers for the service name (<see cref="DnsMonitor"/>).
/// </summary>
[Trait("Category", "Faults")]
public sealed class MultiHostScenarioTests(ITestOutputHelper output)
{
    private const int Servers = 5;
    private static readonly TimeSpan DnsPatience = TimeSpan.FromSeconds(20);

    [HostsFact]
    public async Task FiveHosts_ClientsResolvingThroughUnbound_AHostCutOffAndHealed_AProcessKilled_AClockStepped()
    {
        var seed = ScenarioRun.NewSeed();
        var plan = new Random(seed);
        var order = Enumerable.Range(1, Servers).Select(n => $"s{n}").OrderBy(_ => plan.Next()).ToList();
        var (cutOff, killed, stepped) = (order[0], order[1], order[2]);
        var step = TimeSpan.FromSeconds(plan.Next(2) == 0 ? 30 : -30);
        var cutFor = TimeSpan.FromMilliseconds(plan.Next(12_000, 16_000));
        var downFor = TimeSpan.FromMilliseconds(plan.Next(0, 2000));
        output.WriteLine($"hosts: seed {seed} (replay: FAULTS_SEED={seed}); cut off {cutOff} for {cutFor.TotalSeconds:0.0} s, kill -9 {killed}, step {stepped}'s clock {step.TotalSeconds:+0;-0} s");

        var dir = ScenarioRun.LogDirOf("hosts", seed);
        Directory.CreateDirectory(dir);
        using var hosts = HostNetwork.Create(Servers, dir, stepped);
        await using var unbound = await Unbound.StartAsync(hosts, order.Order(StringComparer.Ordinal), dir);
        await using var run = await ScenarioRun.StartAsync("hosts", seed, hosts, Servers, "lan", output);
        var all = run.Farm.Ids;
        await using var dns = new DnsMonitor(unbound, run.Farm);
        await dns.UntilAsync(all, "the farm is up", DnsPatience);

        List<CliSubscriber> products = [];
        foreach (var name in new[] { "cli1", "cli2" })
        {
            var cli = CliSubscriber.Start(name, hosts, unbound.EndPoint, run.Subjects, dir);
            products.Add(cli);
            run.Add(cli);
        }

        Assert.True(
            await Poll.TryUntilAsync(() => Task.FromResult(products.All(run.Holds)), TimeSpan.FromSeconds(40)),
            $"streamfarm sub --service stream --dns {unbound.EndPoint} on the clients' host did not get every subject within 40 s (seed {seed}, logs in {dir}):\n"
            + string.Join('\n', products.Select(p => $"{p.Name}: {(p.Running ? "running" : "exited")}; {string.Join(" | ", p.Log().TakeLast(4))}")));
        run.Farm.Note($"{string.Join(", ", products.Select(p => p.Name))} (streamfarm sub through unbound) hold every subject");

        using var cut = new HostCut(hosts, run.Farm);
        await run.RunAsync(
            async r =>
            {
                await r.LoadAsync(1000, 2000);

                // A host cut off: the others and the resolver stop handing it out, until the heal.
                var cutAt = DateTime.UtcNow;
                cut.Cut(cutOff);
                if (await dns.UntilAsync([.. all.Where(id => id != cutOff)], $"{cutOff} cut off", DnsPatience))
                {
                    dns.KeepOut(cutOff, $"{cutOff} is cut off");
                }

                await DelayUntil(cutAt + cutFor);
                dns.Release(cutOff);
                cut.Heal();
                await dns.UntilAsync(all, $"{cutOff} healed", DnsPatience + TimeSpan.FromSeconds(10));
                await r.LoadAsync(1000, 3000);

                // A process killed, started again after the resolver stopped handing it out.
                await r.Farm.Kill9Async(killed);
                if (await dns.UntilAsync([.. all.Where(id => id != killed)], $"{killed} killed", DnsPatience))
                {
                    dns.KeepOut(killed, $"{killed} is down");
                }

                await Task.Delay(downFor);
                dns.Release(killed);
                await r.Farm.RestartAsync(killed);
                await dns.UntilAsync(all, $"{killed} restarted", DnsPatience);
                await r.LoadAsync(1000, 2000);

                // A clock stepped: nothing may change for the farm's clients, nor in the DNS answers.
                foreach (var id in all)
                {
                    dns.KeepIn(id, $"{stepped}'s clock stepped; every server stays healthy");
                }

                await StepClockAsync(hosts, r.Farm, step);
                await r.LoadAsync(6000, 9000);
                foreach (var id in all)
                {
                    dns.Release(id);
                }

                // That host's process killed and started again at once, its clock still stepped: a
                // new life whose incarnation (taken from its clock) may be below the last one's.
                await r.Farm.Kill9Async(stepped);
                await r.Farm.RestartAsync(stepped);
                await r.Farm.WaitRoutesUpAsync();
                r.Farm.Note($"every server has its routes up, to {stepped}'s new life too");
                await dns.UntilAsync(all, $"{stepped} restarted with its clock stepped", DnsPatience);
                await r.LoadAsync(2000, 4000);
            },
            cut,
            freshSubscribers: r =>
            {
                var fresh = CliSubscriber.Start("cli-fresh", hosts, unbound.EndPoint, r.Subjects, dir);
                products.Add(fresh);
                r.Add(fresh, fresh: true);
                return Task.CompletedTask;
            },
            moreChecks: async r =>
            {
                await dns.UntilAsync(all, "after every fault settled", DnsPatience);
                List<Violation> found = [.. dns.Violations()];
                found.AddRange(await FarmThroughResolverAsync(hosts, unbound, all));
                foreach (var p in products)
                {
                    var resolutions = p.Resolutions();
                    if (!p.Running)
                    {
                        found.Add(new(DnsMonitor.Invariant, "*", p.Name, "streamfarm sub gave up (exited)", [.. p.Log().TakeLast(5)]));
                    }

                    if (resolutions.Count == 0)
                    {
                        found.Add(new(DnsMonitor.Invariant, "*", p.Name, "streamfarm sub never resolved the service name through the resolver", [.. p.Log().TakeLast(5)]));
                    }

                    r.Farm.Note($"{p.Name}: {resolutions.Count} resolution(s) through unbound, the last: {(resolutions.Count > 0 ? resolutions[^1] : "none")}");
                }

                return found;
            });
    }

    /// <summary>Steps the clock and waits until the server's own HTTP <c>Date</c> header shows it.</summary>
    private static async Task StepClockAsync(HostNetwork hosts, FaultFarm farm, TimeSpan step)
    {
        var id = hosts.ClockServer;
        var at = DateTime.UtcNow;
        hosts.StepClock(step);
        using var http = hosts.Observer(TimeSpan.FromSeconds(2));
        await Poll.UntilAsync(async () =>
        {
            using var response = await http.GetAsync($"http://{hosts.Address(id)}:{FaultFarm.HttpPort}/healthz");
            return response.Headers.Date is { } date && Math.Abs((date - DateTimeOffset.UtcNow - step).TotalSeconds) < 2.5;
        }, $"{id}'s clock shows the step", TimeSpan.FromSeconds(10));
        farm.Note(string.Create(CultureInfo.InvariantCulture, $"{id}'s wall clock stepped {step.TotalSeconds:+0;-0} s (its HTTP Date header shows it {(DateTime.UtcNow - at).TotalSeconds:0.0} s after the step)"));
    }

    /// <summary><c>streamfarm farm --service stream --dns &lt;unbound&gt; --json --once</c> on the clients' host: every server active and alive.</summary>
    private static async Task<List<Violation>> FarmThroughResolverAsync(HostNetwork hosts, Unbound unbound, IReadOnlyList<string> all)
    {
        var info = hosts.StreamfarmOnClientHost(["farm", "--service", "stream", "--dns", unbound.EndPoint, "--json", "--once"]);
        info.RedirectStandardInput = false;
        using var p = System.Diagnostics.Process.Start(info)!;
        var error = p.StandardError.ReadToEndAsync();
        var json = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        var shown = $"exit {p.ExitCode}: {json.Trim()} {(await error).Trim()}";
        try
        {
            using var doc = JsonDocument.Parse(json);
            var healthy = doc.RootElement.EnumerateArray()
                .Where(s => s.GetProperty("state").GetString() == "active" && s.GetProperty("liveness").GetString() == "alive")
                .Select(s => s.GetProperty("id").GetString()).Order(StringComparer.Ordinal).ToList();
            if (p.ExitCode == 0 && healthy.SequenceEqual(all.Order(StringComparer.Ordinal)))
            {
                return [];
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // reported below
        }

        return [new(DnsMonitor.Invariant, "*", "streamfarm farm", "streamfarm farm --service stream --dns <unbound> did not show every server active and alive", [shown])];
    }

    private static async Task DelayUntil(DateTime when)
    {
        var left = when - DateTime.UtcNow;
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left);
        }
    }
}
