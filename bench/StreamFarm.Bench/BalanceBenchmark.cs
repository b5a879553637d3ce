using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace StreamFarm.Bench;

/// <summary>Users per server at one moment, and how even that is.</summary>
public sealed record BalanceSnapshot(IReadOnlyDictionary<string, int> Users)
{
    public int Total => Users.Values.Sum(u => Math.Max(0, u));

    public int Max => Users.Values.DefaultIfEmpty(0).Max();

    public double Mean => Users.Count == 0 ? 0 : (double)Total / Users.Count;

    /// <summary>Largest server over the mean: 1.0 is perfectly even, N (servers) is everyone on one.</summary>
    public double MaxOverMean => Mean == 0 ? 0 : Max / Mean;
}

/// <summary>What one policy gave.</summary>
public sealed record BalanceResult
{
    public required string Policy { get; init; }

    /// <summary>Users per server once every client of every burst is connected.</summary>
    public BalanceSnapshot? AfterBursts { get; set; }

    /// <summary>Seconds from the start of the first burst until every client of the last one was connected (gaps between bursts included).</summary>
    public double ConnectSeconds { get; set; }

    /// <summary>Per burst: the largest share of the burst's clients that landed on one server.</summary>
    public List<double> BurstMaxShares { get; init; } = [];

    /// <summary>The server killed (the busiest) and started again.</summary>
    public string? Killed { get; set; }

    /// <summary>Seconds from the kill until every client was connected again.</summary>
    public double? RecoverySeconds { get; set; }

    /// <summary>Users per server once the restarted server is back in the farm and the counts held still.</summary>
    public BalanceSnapshot? AfterRestart { get; set; }

    public List<string> Problems { get; init; } = [];
}

/// <summary>
/// <c>./bench.sh balance</c>: a farm of real server processes and its DNS system; for each
/// policy, N lightweight clients in this process connect in bursts; users per server are read from
/// each server's /metrics; then the busiest server is killed with SIGKILL and started again, its
/// clients fail over, and users per server are read again.
/// </summary>
public static class BalanceBenchmark
{
    public static async Task<BalanceReport> RunAsync(BalanceSettings settings, ServerLauncher launcher, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new BalanceReport(settings, DateTimeOffset.UtcNow);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        log($"starting {settings.Servers} servers on {settings.Prefix}.2-{settings.Servers + 1} and the DNS system on {settings.Prefix}.1:{ClientBenchFarm.DnsPort}");
        await using var farm = new ClientBenchFarm(launcher, settings.Prefix, settings.Servers, key, log);
        await farm.StartAsync(cancel);
        report.Setup.AddRange(farm.CommandLines);
        foreach (var policy in settings.Policies)
        {
            var result = new BalanceResult { Policy = policy };
            report.Results.Add(result);
            try
            {
                await RunPolicyAsync(settings, farm, result, log, cancel);
            }
            catch (Exception e) when (e is BenchException or Client.RttpConnectionException or IOException or HttpRequestException)
            {
                result.Problems.Add(e.Message);
                log($"{policy} FAILED: {e.Message}");
            }
        }

        report.LoadAverages += " → " + LoadAverage.Now();
        return report;
    }

    private static async Task RunPolicyAsync(BalanceSettings settings, ClientBenchFarm farm, BalanceResult result, Action<string> log, CancellationToken cancel)
    {
        var policy = result.Policy;
        var clients = new List<IBalanceClient>(settings.Clients);
        try
        {
            var clock = Stopwatch.StartNew();
            for (var b = 0; b < settings.Bursts; b++)
            {
                if (b > 0)
                {
                    await Task.Delay(settings.BurstGap, cancel);
                }

                var burst = Enumerable.Range(0, settings.BurstSize).Select(_ => policy == "dns"
                    ? (IBalanceClient)new DnsOnlyBalanceClient(farm.Resolver, ClientBenchFarm.TcpPort)
                    : new FarmBalanceClient(farm.Resolver, ClientBenchFarm.TcpPort, FarmBalanceClient.Selector(policy))).ToList();
                clients.AddRange(burst);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                timeout.CancelAfter(settings.Timeout);
                try
                {
                    await Task.WhenAll(burst.Select(c => c.StartAsync(timeout.Token)));
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    throw new BenchException($"{policy}: burst {b + 1}: {burst.Count(c => c.ServerId is null)} client(s) not connected after {settings.Timeout.TotalSeconds:0} s");
                }

                var landed = burst.GroupBy(c => c.ServerId ?? "-").ToDictionary(g => g.Key, g => g.Count());
                result.BurstMaxShares.Add((double)landed.Values.Max() / burst.Count);
                log($"{policy}: burst {b + 1}/{settings.Bursts}: {string.Join(", ", landed.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key} {l.Value}"))}");
            }

            result.ConnectSeconds = clock.Elapsed.TotalSeconds;
            result.AfterBursts = await SettledAsync(farm, settings, settings.Clients, cancel);
            log(string.Create(CultureInfo.InvariantCulture, $"{policy}: after the bursts: {Describe(result.AfterBursts)}"));
            if (!settings.Restart)
            {
                return;
            }

            // kill -9 the busiest server and start it again at once; its clients fail over.
            var victim = result.AfterBursts.Users.OrderByDescending(u => u.Value).ThenBy(u => u.Key, StringComparer.Ordinal).First().Key;
            result.Killed = victim;
            var killedAt = farm.Kill(victim);
            var restart = farm.RestartAsync(victim, cancel);
            var back = Stopwatch.StartNew();
            while (true)
            {
                var snapshot = new BalanceSnapshot(await farm.UsersAsync(cancel));
                if (snapshot.Total == settings.Clients && clients.All(c => c.ServerId is not null))
                {
                    result.RecoverySeconds = Stopwatch.GetElapsedTime(killedAt).TotalSeconds;
                    break;
                }

                if (back.Elapsed > settings.Timeout)
                {
                    result.Problems.Add($"after the restart of {victim}: {clients.Count(c => c.ServerId is null)} client(s) still without a server after {settings.Timeout.TotalSeconds:0} s ({Describe(snapshot)})");
                    break;
                }

                await Task.Delay(20, cancel);
            }

            await restart;
            await farm.WaitWholeAsync(cancel);
            result.AfterRestart = await SettledAsync(farm, settings, settings.Clients, cancel);
            log(string.Create(CultureInfo.InvariantCulture, $"{policy}: killed {victim}, all clients back after {result.RecoverySeconds:0.00} s; after the restart: {Describe(result.AfterRestart)}"));
        }
        finally
        {
            // Close every client (BYE), a burst at a time, and wait until the servers count no one.
            foreach (var chunk in clients.Chunk(100))
            {
                await Task.WhenAll(chunk.Select(c => c.DisposeAsync().AsTask()));
            }

            try
            {
                await SettledAsync(farm, settings with { Settle = TimeSpan.FromMilliseconds(200), Timeout = TimeSpan.FromSeconds(20) }, 0, cancel);
            }
            catch (BenchException e)
            {
                result.Problems.Add($"after closing the clients: {e.Message}");
            }
        }
    }

    /// <summary>Users per server once the total is <paramref name="expected"/> and no count changed for the settle time.</summary>
    private static async Task<BalanceSnapshot> SettledAsync(ClientBenchFarm farm, BalanceSettings settings, int expected, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        BalanceSnapshot? last = null;
        var still = Stopwatch.StartNew();
        while (true)
        {
            var now = new BalanceSnapshot(await farm.UsersAsync(cancel));
            if (last is null || !now.Users.OrderBy(u => u.Key, StringComparer.Ordinal).SequenceEqual(last.Users.OrderBy(u => u.Key, StringComparer.Ordinal)))
            {
                still.Restart();
            }

            last = now;
            if (now.Total == expected && now.Users.Values.All(u => u >= 0) && still.Elapsed >= settings.Settle)
            {
                return now;
            }

            if (clock.Elapsed > settings.Timeout)
            {
                throw new BenchException($"the users counts did not settle at {expected} within {settings.Timeout.TotalSeconds:0} s: {Describe(now)}");
            }

            await Task.Delay(50, cancel);
        }
    }

    private static string Describe(BalanceSnapshot s) =>
        string.Create(CultureInfo.InvariantCulture, $"{string.Join(", ", s.Users.OrderBy(u => u.Key, StringComparer.Ordinal).Select(u => $"{u.Key} {u.Value}"))} (max/mean {s.MaxOverMean:0.00})");
}
