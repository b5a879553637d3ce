using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh farmsize</c>: the cost curve of servers per farm (docs/benchmarks.md, "Servers per
/// farm"). The membership benchmark's scenarios (<see cref="MembershipBenchmark"/>) for each farm size,
/// StreamFarm next to serf, several runs, all on one loopback /24; besides gossip at rest and the
/// convergence times, one more server joins after rest, and an RTTP client of the seed logs the FARM
/// table lines it is sent. Needs root for nftables.
/// </summary>
internal static class FarmSizeBenchCommand
{
    public static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "servers per farm, comma-separated (2 to 100)", DefaultValueFactory = _ => "3,6,12" };
        var systems = new Option<string>("--systems") { Description = "lan, local (StreamFarm presets) and serf, comma-separated", DefaultValueFactory = _ => "lan,serf" };
        var runs = new Option<int>("--runs") { Description = "runs of every system and size", DefaultValueFactory = _ => 3 };
        var rest = new Option<double>("--rest") { Description = "seconds over which traffic at rest is measured", DefaultValueFactory = _ => 10 };
        var restAfter = new Option<double>("--rest-after") { Description = "traffic at rest is measured no sooner than this many seconds after the processes started", DefaultValueFactory = _ => 12 };
        var poll = new Option<int>("--poll-ms") { Description = "milliseconds between two polls of a member's view", DefaultValueFactory = _ => 20 };
        var churn = new Option<double>("--churn") { Description = "seconds of the churn phase (every server's users count changing; 0: none)", DefaultValueFactory = _ => 5 };
        var churnRate = new Option<double>("--churn-rate") { Description = "users-count changes per server and second in the churn phase", DefaultValueFactory = _ => 2 };
        var subnet = new Option<string>("--subnet") { Description = "the loopback /24 the servers take their addresses from (three numbers)", DefaultValueFactory = _ => "127.0.83" };
        var serf = new Option<string?>("--serf") { Description = "path of serf (default: on PATH, else /usr/bin/serf)" };
        var command = new Command("farmsize", "How cost grows with the servers per farm: gossip at rest per server, join / status / one more server / kill -9 convergence, next to serf; and the FARM table lines an RTTP client gets. STREAMFARM_BENCH_SERVER picks the build")
        {
            sizes, systems, runs, rest, restAfter, poll, churn, churnRate, subnet, serf,
        };
        command.SetAction(async (p, cancel) =>
        {
            var restSeconds = p.GetValue(rest);
            var restAfterSeconds = p.GetValue(restAfter);
            var settings = new MembershipSettings
            {
                Sizes = BenchCommand.ParseList(p.GetValue(sizes), "--sizes"),
                Systems = [.. (p.GetValue(systems) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => x.ToLowerInvariant())],
                Runs = p.GetValue(runs),
                Rest = double.IsFinite(restSeconds) && restSeconds is > 0 and <= 3600 ? TimeSpan.FromSeconds(restSeconds) : throw new CliError("--rest must be between 0 and 3600 seconds", ExitCodes.Usage),
                MinUptime = double.IsFinite(restAfterSeconds) && restAfterSeconds is >= 0 and <= 3600 ? TimeSpan.FromSeconds(restAfterSeconds) : throw new CliError("--rest-after must be between 0 and 3600 seconds", ExitCodes.Usage),
                PollInterval = TimeSpan.FromMilliseconds(p.GetValue(poll)),
                FaultsFromSize = int.MaxValue,
                Subnet = p.GetValue(subnet),
                Churn = p.GetValue(churn) is var c && double.IsFinite(c) && c is >= 0 and <= 600 ? TimeSpan.FromSeconds(c) : throw new CliError("--churn must be between 0 and 600 seconds", ExitCodes.Usage),
                ChurnRate = p.GetValue(churnRate),
                FarmClient = true,
                JoinOne = true,
            };
            try
            {
                settings.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CliError(e.Message, ExitCodes.Usage);
            }

            var serfPath = settings.Systems.Contains("serf") ? p.GetValue(serf) ?? MembershipBenchCommand.FindSerf() : null;
            var launcher = BenchCommand.StreamFarmLauncher();
            MembershipReport report;
            try
            {
                report = await MembershipBenchmark.RunAsync(settings, launcher, serfPath, line => Console.Error.WriteLine($"bench: {line}"), cancel);
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }

            var name = launcher.Arguments.Count > 0 ? "StreamFarm (.NET)" : $"StreamFarm ({Path.GetFileName(launcher.FileName)}, native)";
            Console.Out.Write(FarmSizeReport.ToMarkdown(report, name));
            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }
}
