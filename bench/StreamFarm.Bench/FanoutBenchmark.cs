using System.Net;

namespace StreamFarm.Bench;

/// <summary>
/// The whole fan-out benchmark: for StreamFarm, then for NATS, start the server as a child process on
/// its own loopback address, run every scenario (fan-out × payload size) against it, and stop it.
/// </summary>
public static class FanoutBenchmark
{
    /// <summary>Runs every scenario against both servers and returns the report.</summary>
    /// <param name="settings">scenarios and timings</param>
    /// <param name="streamFarm">how to run the StreamFarm server (the arguments before <c>node ...</c>)</param>
    /// <param name="natsServer">path of the nats-server program</param>
    /// <param name="log">progress lines</param>
    /// <param name="cancel">stops the run</param>
    public static async Task<BenchReport> RunAsync(FanoutSettings settings, ServerLauncher streamFarm, string natsServer, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new BenchReport(settings, DateTimeOffset.UtcNow, await NatsVersionAsync(natsServer, cancel));
        foreach (var kind in new[] { ServerKind.StreamFarm, ServerKind.Nats })
        {
            var ip = IPAddress.Parse(kind == ServerKind.StreamFarm ? settings.StreamFarmAddress : settings.NatsAddress);
            ServerProcess? server = null;
            try
            {
                foreach (var fanout in settings.Fanouts)
                {
                    foreach (var size in settings.PayloadSizes)
                    {
                        if (server is null || server.HasExited)
                        {
                            if (server is not null)
                            {
                                report.Notes.Add($"{kind.Name()} exited during the run (before fan-out 1:{fanout}, {size} B) and was started again; its last output: {string.Join(" | ", server.RecentOutput())}");
                                await server.DisposeAsync();
                            }

                            server = await StartAsync(kind, ip, streamFarm, natsServer, settings, cancel);
                            report.Commands[kind] = server.CommandLine;
                            log($"{kind.Name()}: started pid {server.Pid} on {server.Endpoint}: {server.CommandLine}");
                            await PrimeAsync(server, settings, log, report, cancel);
                        }

                        log($"{kind.Name()}: fan-out 1:{fanout}, {size} B payload ...");
                        var result = await new FanoutScenario(server, fanout, size, settings).RunAsync(cancel);
                        report.Results.Add(result);
                        log($"  {BenchReport.Describe(result)}");
                        await Task.Delay(200, cancel); // let the server close the sessions before the next scenario
                    }
                }
            }
            catch (BenchException e)
            {
                report.Notes.Add($"{kind.Name()}: {e.Message}");
                log($"{kind.Name()}: {e.Message}");
            }
            finally
            {
                if (server is not null)
                {
                    log($"{kind.Name()}: stopping pid {server.Pid}");
                    await server.DisposeAsync();
                }
            }
        }

        return report;
    }

    /// <summary>Runs an unreported scenario so the first measured one does not pay for JIT compilation and buffer growth.</summary>
    private static async Task PrimeAsync(ServerProcess server, FanoutSettings settings, Action<string> log, BenchReport report, CancellationToken cancel)
    {
        if (settings.Priming <= TimeSpan.Zero)
        {
            return;
        }

        log($"{server.Kind.Name()}: priming with an unreported 1:10, 16 B run of {settings.Priming.TotalSeconds:0.#} s");
        var prime = await new FanoutScenario(server, 10, 16, settings with { Warmup = TimeSpan.Zero, Duration = settings.Priming }).RunAsync(cancel);
        if (!prime.Measured || prime.Problems.Count > 0)
        {
            report.Notes.Add($"{server.Kind.Name()}: the priming run went wrong: {BenchReport.Describe(prime)}");
        }

        await Task.Delay(200, cancel);
    }

    private static Task<ServerProcess> StartAsync(ServerKind kind, IPAddress ip, ServerLauncher streamFarm, string natsServer, FanoutSettings settings, CancellationToken cancel) => kind switch
    {
        ServerKind.StreamFarm => ServerProcess.StartStreamFarmAsync(streamFarm, ip, cancel, settings.Tls),
        _ => ServerProcess.StartNatsAsync(natsServer, ip, cancel, settings.Tls),
    };

    /// <summary><c>nats-server --version</c> as it prints it, or "unknown"; a nats-server that cannot be run ends the benchmark here.</summary>
    public static async Task<string> NatsVersionAsync(string natsServer, CancellationToken cancel) =>
        (await ChildProcess.RunToEndAsync(natsServer, ["--version"], TimeSpan.FromSeconds(5), cancel)).FirstLine() ?? "unknown";
}
