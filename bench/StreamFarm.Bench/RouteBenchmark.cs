using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// <c>./bench.sh routes</c>: a publication's way between the servers of a farm, next to a NATS
/// cluster doing the same. Three StreamFarm nodes as real processes form a farm (membership, routes);
/// the harness finds which server owns the bench subject (<see cref="FindOwnerAsync"/>), calls it A
/// and the others B and C, and runs three layouts: everything on A (one hop), publisher on A and
/// subscribers on B and C (two hops: A's route carries each update once to each of B and C), and
/// publisher on B with subscribers on A and C (B forwards to the owner A, A delivers to its own
/// subscribers and passes the update on to C: three hops for C). Then the same layouts on three
/// clustered nats-servers (full mesh: a message crosses at most one route).
/// </summary>
public static class RouteBenchmark
{
    /// <summary>Runs the systems of <paramref name="settings"/> one after the other and returns the report.</summary>
    /// <param name="settings">subscribers, payload, timings</param>
    /// <param name="streamFarm">how to run the StreamFarm server (the arguments before <c>node ...</c>)</param>
    /// <param name="natsServer">path of the nats-server program (null when NATS is not run)</param>
    /// <param name="log">progress lines</param>
    /// <param name="cancel">stops the run</param>
    public static async Task<RouteReport> RunAsync(RouteSettings settings, ServerLauncher streamFarm, string? natsServer, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new RouteReport(settings, DateTimeOffset.UtcNow, natsServer is null ? "not used" : await NatsFailover.VersionAsync(natsServer, cancel));
        foreach (var system in settings.Systems)
        {
            var kind = system == "nats" ? ServerKind.Nats : ServerKind.StreamFarm;
            if (kind == ServerKind.Nats && natsServer is null)
            {
                report.Notes.Add("nats-server was not found: the NATS side was skipped (scripts/setup.sh --bench installs it)");
                continue;
            }

            try
            {
                await RunSystemAsync(kind, settings, streamFarm, natsServer, report, log, cancel);
            }
            catch (BenchException e)
            {
                report.Notes.Add($"{kind.Name()}: {e.Message}");
                log($"{kind.Name()}: {e.Message}");
            }

            await Task.Delay(500, cancel);
        }

        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static async Task RunSystemAsync(ServerKind kind, RouteSettings settings, ServerLauncher streamFarm, string? natsServer, RouteReport report, Action<string> log, CancellationToken cancel)
    {
        log($"{kind.Name()}: starting three servers on {settings.Prefix}.{(kind == ServerKind.StreamFarm ? "1-3" : "11-13")}");
        await using var cluster = kind == ServerKind.StreamFarm
            ? await RouteCluster.StartStreamFarmAsync(streamFarm, settings.Prefix, settings.SetupTimeout, cancel)
            : await RouteCluster.StartNatsAsync(natsServer!, settings.Prefix, settings.SetupTimeout, cancel);
        report.Commands[kind] = cluster.CommandLines;
        log($"{kind.Name()}: ready after {cluster.ReadyAfter.TotalSeconds:0.0} s: {string.Join(", ", cluster.Servers.Select(s => $"{s.Name} pid {s.Process.Pid} on {s.Endpoint}"))}");

        RouteServer a, b, c;
        if (kind == ServerKind.StreamFarm)
        {
            var (owner, evidence) = await FindOwnerAsync(cluster, settings, cancel);
            report.Owner = owner.Name;
            report.OwnerEvidence = evidence;
            log($"StreamFarm: {RttpLoadClient.BenchSubject} is owned by {owner.Name} ({evidence})");
            a = owner;
            var others = cluster.Servers.Where(s => s != owner).ToList();
            (b, c) = (others[0], others[1]);
        }
        else
        {
            (a, b, c) = (cluster.Servers[0], cluster.Servers[1], cluster.Servers[2]);
        }

        var scenarios = Scenarios(cluster, kind, a, b, c, settings);
        if (settings.Priming > TimeSpan.Zero)
        {
            // The layout with the most hops, so every path is compiled and its buffers grown.
            var half = settings.Priming / 2;
            var primingSettings = settings with { Warmup = TimeSpan.Zero, Duration = half };
            log($"{kind.Name()}: priming with an unreported {settings.Priming.TotalSeconds:0.#} s run");
            var prime = await scenarios[^1].With(primingSettings).RunAsync(cancel);
            if (prime.Error is not null || prime.Problems.Count > 0)
            {
                report.Notes.Add($"{kind.Name()}: the priming run went wrong: {prime.Error ?? string.Join("; ", prime.Problems)}");
            }

            await Task.Delay(200, cancel);
        }

        foreach (var scenario in scenarios)
        {
            log($"{kind.Name()}: {scenario.Layout.Name()}: {scenario.Placement} ({scenario.Path}) ...");
            var result = await scenario.RunAsync(cancel);
            report.Results.Add(result);
            log($"  {RouteReport.Describe(result)}");
            await Task.Delay(200, cancel); // let the servers close the sessions before the next scenario
        }
    }

    private static List<RouteScenario> Scenarios(RouteCluster cluster, ServerKind kind, RouteServer a, RouteServer b, RouteServer c, RouteSettings settings)
    {
        var owner = kind == ServerKind.StreamFarm ? " (owner)" : "";
        return
        [
            new(cluster, RouteLayout.OneHop, $"{a.Name}{owner} → subscribers on {a.Name}", a, [a], settings),
            new(cluster, RouteLayout.TwoHops, $"{a.Name}{owner} → routes → {b.Name}, {c.Name} → subscribers", a, [b, c], settings),
            kind == ServerKind.StreamFarm
                ? new(cluster, RouteLayout.ThreeHops, $"{b.Name} → route → {a.Name}{owner} → subscribers on {a.Name}, and → route → {c.Name} → subscribers", b, [a, c], settings)
                : new(cluster, RouteLayout.ThreeHops, $"{b.Name} → routes → {a.Name}, {c.Name} → subscribers (no owner: a message crosses one route)", b, [a, c], settings),
        ];
    }

    /// <summary>
    /// Which server owns the bench subject: on each server in turn, a subscriber subscribes and a
    /// publisher sends a few messages; once the subscriber has them (so they went through the owner),
    /// the server's <c>streamfarm_route_forwarded_total</c> has grown by as many if it is not the owner,
    /// and not at all if it is.
    /// </summary>
    internal static async Task<(RouteServer Owner, string Evidence)> FindOwnerAsync(RouteCluster cluster, RouteSettings settings, CancellationToken cancel)
    {
        const int Probes = 10;
        var forwarded = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var server in cluster.Servers)
        {
            await using var sub = await RttpLoadClient.ConnectAsync(server.Endpoint, $"owner-probe-sub@{server.Name}", settings.SetupTimeout, cancel);
            await sub.SubscribeAsync(settings.SetupTimeout, cancel);
            await using var pub = await RttpLoadClient.ConnectAsync(server.Endpoint, $"owner-probe-pub@{server.Name}", settings.SetupTimeout, cancel);
            var message = pub.EncodePublish(FanoutScenario.Payload(8));
            var batch = new byte[message.Length * Probes];
            for (var i = 0; i < Probes; i++)
            {
                message.CopyTo(batch, i * message.Length);
            }

            var before = (await cluster.MetricsAsync(cancel))[server.Name].GetValueOrDefault("streamfarm_route_forwarded_total");
            await pub.WriteAsync(batch, cancel);
            var clock = Stopwatch.StartNew();
            while (sub.Progress < Probes)
            {
                if (clock.Elapsed > settings.SetupTimeout || sub.Failure is not null)
                {
                    throw new BenchException($"finding the owner: a subscriber on {server.Name} got {sub.Progress} of {Probes} messages published there ({sub.Failure ?? "timeout"})");
                }

                await Task.Delay(5, cancel);
            }

            forwarded[server.Name] = (await cluster.MetricsAsync(cancel))[server.Name].GetValueOrDefault("streamfarm_route_forwarded_total") - before;
        }

        var evidence = $"{Probes} publications at each server, forwarded to an owner: {string.Join(", ", forwarded.Select(f => $"{f.Key} {f.Value:0}"))}";
        var owners = cluster.Servers.Where(s => forwarded[s.Name] == 0).ToList();
        if (owners.Count != 1 || cluster.Servers.Any(s => s != owners[0] && forwarded[s.Name] != Probes))
        {
            throw new BenchException($"could not tell the owner of {RttpLoadClient.BenchSubject}: {evidence}");
        }

        return (owners[0], evidence);
    }
}
