using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary><c>./bench.sh connections</c>: memory per subscribed connection and fan-out throughput as a server holds more connections, next to nats-server.</summary>
internal static class ConnectionsBenchCommand
{
    public static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "subscribed connections per server, comma-separated (a fresh server each)", DefaultValueFactory = _ => "1000,2000,5000,10000,18000" };
        var runs = new Option<int>("--runs") { Description = "runs of every size, the systems alternating", DefaultValueFactory = _ => 3 };
        var duration = new Option<double>("--duration") { Description = "seconds measured per server and size", DefaultValueFactory = _ => 5 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of publishing before each measurement", DefaultValueFactory = _ => 2 };
        var systems = new Option<string>("--systems") { Description = "servers to run, comma-separated: streamfarm (the build STREAMFARM_BENCH_SERVER picks, else the .NET one), native (artifacts/native/streamfarm, scripts/native.sh), nats", DefaultValueFactory = _ => "streamfarm,nats" };
        var subjects = new Option<int>("--subjects") { Description = "subjects the connections are spread over (connection i on subject i mod this)", DefaultValueFactory = _ => 100 };
        var window = new Option<int>("--window") { Description = "most rounds (one publication to every subject) the publisher may be ahead of the slowest subscriber; it writes a tenth of that at a time", DefaultValueFactory = _ => 50 };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (one address per system)", DefaultValueFactory = _ => "127.0.81" };
        var command = new Command("connections", "How cost grows with subscribed connections per server: RSS per connection, fan-out deliveries/s and server CPU per delivery, next to nats-server")
        {
            sizes, runs, duration, warmup, systems, subjects, window, nats, prefix,
        };
        command.SetAction(async (p, cancel) =>
        {
            var windowSize = p.GetValue(window);
            var settings = new ConnectionsSettings
            {
                Sizes = BenchCommand.ParseList(p.GetValue(sizes), "--sizes"),
                Runs = p.GetValue(runs),
                Duration = BenchCommand.Seconds(p.GetValue(duration), "--duration"),
                Warmup = BenchCommand.Seconds(p.GetValue(warmup), "--warmup"),
                Subjects = p.GetValue(subjects),
                Window = windowSize,
                Batch = Math.Max(1, windowSize / 10),
                Prefix = p.GetValue(prefix)!,
            };
            try
            {
                settings.Validate(ConnectionsBenchmark.OpenFileLimit());
            }
            catch (ArgumentException e)
            {
                throw new CliError(e.Message, ExitCodes.Usage);
            }

            var chosen = new List<ConnectionsSystem>();
            var natsVersion = "";
            foreach (var name in (p.GetValue(systems) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct())
            {
                switch (name)
                {
                    case "streamfarm":
                        var launcher = BenchCommand.StreamFarmLauncher();
                        chosen.Add(new(launcher.Arguments.Count > 0 ? "StreamFarm (.NET)" : "StreamFarm (native)", ServerKind.StreamFarm, launcher));
                        break;
                    case "native":
                        var native = FootprintBenchCommand.FindNative() ?? throw new CliError("--systems native: artifacts/native/streamfarm not found (scripts/native.sh makes it)", ExitCodes.Usage);
                        chosen.Add(new("StreamFarm (native)", ServerKind.StreamFarm, new ServerLauncher(native, [])));
                        break;
                    case "nats":
                        var natsServer = p.GetValue(nats) ?? BenchCommand.FindNatsServer();
                        natsVersion = await FanoutBenchmark.NatsVersionAsync(natsServer, cancel);
                        chosen.Add(new(natsVersion.Replace(": v", " ", StringComparison.Ordinal), ServerKind.Nats, new ServerLauncher(natsServer, [])));
                        break;
                    default:
                        throw new CliError($"--systems: unknown system '{name}' (streamfarm, native, nats)", ExitCodes.Usage);
                }
            }

            if (chosen.Count == 0 || chosen.Select(c => c.Name).Distinct().Count() != chosen.Count)
            {
                throw new CliError("--systems: name at least one system, each build once", ExitCodes.Usage);
            }

            BenchCommand.LiftPerAddressLimits();
            BenchCommand.RaiseCapacity();
            try
            {
                var results = await ConnectionsBenchmark.RunAsync(settings, chosen, Console.Error, cancel);
                Console.Out.Write(ConnectionsBenchmark.Report(results, settings, natsVersion));
                return results.All(r => r.Clean) ? ExitCodes.Success : ExitCodes.RuntimeFailure;
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }
        });
        return command;
    }
}
