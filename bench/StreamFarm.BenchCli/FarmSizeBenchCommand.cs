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
        var common = new MembershipBenchCommand.CommonOptions("3,6,12", "lan,serf");
        var runs = new Option<int>("--runs") { Description = "runs of every system and size", DefaultValueFactory = _ => 3 };
        var churn = new Option<double>("--churn") { Description = "seconds of the churn phase (every server's users count changing; 0: none)", DefaultValueFactory = _ => 5 };
        var churnRate = new Option<double>("--churn-rate") { Description = "users-count changes per server and second in the churn phase", DefaultValueFactory = _ => 2 };
        var subnet = new Option<string>("--subnet") { Description = "the loopback /24 the servers take their addresses from (three numbers)", DefaultValueFactory = _ => "127.0.83" };
        var command = new Command("farmsize", "How cost grows with the servers per farm: gossip at rest and under churn per server, join / status / one more server / kill -9 convergence, next to serf; and the FARM table lines an RTTP client gets. STREAMFARM_BENCH_SERVER picks the build");
        common.AddTo(command);
        command.Options.Add(runs);
        command.Options.Add(churn);
        command.Options.Add(churnRate);
        command.Options.Add(subnet);
        command.SetAction(async (p, cancel) =>
        {
            var settings = common.Settings(p) with
            {
                Runs = p.GetValue(runs),
                Churn = p.GetValue(churn) is var c && double.IsFinite(c) && c is >= 0 and <= 600 ? TimeSpan.FromSeconds(c) : throw new CliError("--churn must be between 0 and 600 seconds", ExitCodes.Usage),
                ChurnRate = p.GetValue(churnRate),
                FaultsFromSize = int.MaxValue,
                Subnet = p.GetValue(subnet),
                FarmClient = true,
                JoinOne = true,
            };
            var launcher = BenchCommand.StreamFarmLauncher();
            var report = await MembershipBenchCommand.RunAsync(settings, common.Serf(p, settings), launcher, cancel);
            var name = launcher.Arguments.Count > 0 ? "StreamFarm (.NET)" : $"StreamFarm ({Path.GetFileName(launcher.FileName)}, native)";
            Console.Out.Write(FarmSizeReport.ToMarkdown(report, name));
            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }
}
