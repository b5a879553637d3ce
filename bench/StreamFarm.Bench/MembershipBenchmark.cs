using System.Security.Cryptography;

namespace StreamFarm.Bench;

/// <summary>
/// The whole membership benchmark: for each farm size, for each system (StreamFarm with preset lan,
/// with preset local, serf agents with profile lan), one <see cref="MembershipScenario"/> on its own
/// 127.0.X.0/24 addresses, one after the other, every process killed at the end of each.
/// </summary>
public static class MembershipBenchmark
{
    /// <summary>Runs every scenario and returns the report.</summary>
    /// <param name="settings">sizes, systems and timings</param>
    /// <param name="streamFarm">how to run the StreamFarm server (the arguments before <c>node ...</c>)</param>
    /// <param name="serf">path of the serf program (needed when the systems include serf)</param>
    /// <param name="log">progress lines</param>
    /// <param name="cancel">stops the run</param>
    public static async Task<MembershipReport> RunAsync(MembershipSettings settings, ServerLauncher streamFarm, string? serf, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new MembershipReport(settings, DateTimeOffset.UtcNow, serf is null ? "not used" : await SerfAgent.VersionAsync(serf, cancel));

        // One key for both systems: StreamFarm always encrypts gossip (AES-GCM), and so does serf with -encrypt.
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var next = 1; // with one subnet for all: the first host number of the next scenario
        for (var run = 1; run <= settings.Runs; run++)
        {
            for (var s = 0; s < settings.Sizes.Count; s++)
            {
                foreach (var system in settings.Systems)
                {
                    var size = settings.Sizes[s];
                    if (system == "serf" && serf is null)
                    {
                        report.Notes.Add("serf was not found: its scenarios were skipped");
                        continue;
                    }

                    var hosts = size + (settings.JoinOne ? 1 : 0);
                    string subnet;
                    int first;
                    if (settings.Subnet is { } shared)
                    {
                        // Each scenario on addresses the previous ones did not use (until the /24 is used up).
                        next = next + hosts > 255 ? 1 : next;
                        (subnet, first) = (shared, next);
                        next += hosts;
                    }
                    else
                    {
                        (subnet, first) = ($"127.0.{100 + (10 * IndexOf(system)) + s}", 1);
                    }

                    log($"{MembershipSettings.Name(system)}, {size} members on {subnet}.{first}-{first + hosts - 1}{(settings.Runs > 1 ? $", run {run} of {settings.Runs}" : "")} ...");
                    var result = await new MembershipScenario(settings, system, size, subnet, first, streamFarm, serf, key, log).RunAsync(cancel);
                    result.Run = run;
                    report.Results.Add(result);
                    await Task.Delay(TimeSpan.FromSeconds(1), cancel); // sockets of the killed processes gone
                }
            }
        }

        return report;
    }

    private static int IndexOf(string system)
    {
        for (var i = 0; i < MembershipSettings.AllSystems.Count; i++)
        {
            if (MembershipSettings.AllSystems[i] == system)
            {
                return i;
            }
        }

        return 9;
    }
}
