using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary><c>./bench.sh footprint</c>: start-up time, RSS at rest and RSS per idle subscribed connection of the .NET and native builds, next to nats-server and serf.</summary>
internal static class FootprintBenchCommand
{
    public static Command Create()
    {
        var idle = new Option<int>("--idle") { Description = "idle subscribed connections opened to measure memory per connection", DefaultValueFactory = _ => 2000 };
        var rest = new Option<double>("--rest") { Description = "seconds a started server is left alone before its RSS at rest is read", DefaultValueFactory = _ => 5 };
        var runs = new Option<int>("--runs") { Description = "starts per server, alternating", DefaultValueFactory = _ => 5 };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (one address per server)", DefaultValueFactory = _ => "127.0.58" };
        var native = new Option<string?>("--native") { Description = "the native executable (default: artifacts/native/streamfarm of this checkout, made by scripts/native.sh; left out when absent)" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var serf = new Option<string?>("--serf") { Description = "path of serf (default: on PATH)" };
        var command = new Command("footprint", "Start to ready, RSS at rest and RSS per idle subscribed connection: the .NET and native builds next to nats-server and serf")
        {
            idle, rest, runs, prefix, native, nats, serf,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new FootprintSettings
            {
                IdleConnections = p.GetValue(idle),
                RestSeconds = p.GetValue(rest),
                Runs = p.GetValue(runs),
                Prefix = p.GetValue(prefix)!,
            };
            if (settings.IdleConnections < 1 || settings.RestSeconds < 0 || settings.Runs < 1)
            {
                throw new CliError("--idle and --runs must be positive, --rest not negative", ExitCodes.Usage);
            }

            var jit = BenchCommand.StreamFarmLauncher();
            var servers = new List<FootprintServer>
            {
                new(jit.Arguments.Count > 0 ? "StreamFarm (.NET)" : "StreamFarm", jit.FileName, jit.Arguments, FootprintKind.StreamFarm),
            };
            var nativePath = p.GetValue(native) ?? FindNative();
            if (nativePath is not null && jit.Arguments.Count > 0)
            {
                if (!File.Exists(nativePath))
                {
                    throw new CliError($"--native: '{nativePath}' does not exist (scripts/native.sh makes artifacts/native/streamfarm)", ExitCodes.Usage);
                }

                servers.Add(new("StreamFarm (native)", nativePath, [], FootprintKind.StreamFarm));
            }

            servers.Add(new("nats-server", p.GetValue(nats) ?? BenchCommand.FindNatsServer(), [], FootprintKind.Nats));
            servers.Add(new("serf", p.GetValue(serf) ?? MembershipBenchCommand.FindSerf(), [], FootprintKind.Serf));
            try
            {
                var results = await FootprintBenchmark.RunAsync(settings, servers, Console.Error, cancel);
                Console.Out.Write(FootprintBenchmark.Report(results, settings));
                return ExitCodes.Success;
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }
        });
        return command;
    }

    /// <summary>artifacts/native/streamfarm in the checkout this program was built in, if it is there.</summary>
    internal static string? FindNative()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "artifacts", "native", "streamfarm");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
