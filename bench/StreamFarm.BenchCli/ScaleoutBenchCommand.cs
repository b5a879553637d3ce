using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh scaleout</c>: publishers on every server of a farm of 1, 2, 4 servers with routes,
/// many subjects (spread) or one (hot), next to a nats-server cluster of the same size
/// (docs/benchmarks.md, "Scale-out").
/// </summary>
internal static class ScaleoutBenchCommand
{
    public static Command Create()
    {
        var servers = new Option<string>("--servers") { Description = "farm sizes, comma-separated (a fresh farm and NATS cluster each)", DefaultValueFactory = _ => "1,2,4" };
        var subjects = new Option<int>("--subjects") { Description = "subjects the publishers go round in the spread layout", DefaultValueFactory = _ => 1000 };
        var subscribers = new Option<int>("--subscribers") { Description = "subscriber connections per server; connection j takes subjects i with i mod this = j", DefaultValueFactory = _ => 10 };
        var size = new Option<int>("--size") { Description = "payload bytes per message", DefaultValueFactory = _ => 128 };
        var runs = new Option<int>("--runs") { Description = "runs of every size, layout and system", DefaultValueFactory = _ => 3 };
        var duration = new Option<double>("--duration") { Description = "seconds measured per layout", DefaultValueFactory = _ => 4 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of publishing before each measurement", DefaultValueFactory = _ => 1 };
        var window = new Option<int>("--window") { Description = "most publications (all publishers together) ahead of the subscribers", DefaultValueFactory = _ => 2000 };
        var layouts = new Option<string>("--layouts") { Description = "spread (round-robin over all subjects) and hot (every publisher on one subject), comma-separated", DefaultValueFactory = _ => "spread,hot" };
        var systems = new Option<string>("--systems") { Description = "streamfarm and nats, comma-separated", DefaultValueFactory = _ => "streamfarm,nats" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (StreamFarm on .1 up, nats-servers on .11 up)", DefaultValueFactory = _ => "127.0.84" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var command = new Command("scaleout", "Publishers on every server of a farm of 1, 2, 4 servers with routes, many subjects or one hot subject: publications/s, deliveries/s, server CPU per delivery, next to a nats-server cluster. STREAMFARM_BENCH_SERVER picks the build")
        {
            servers, subjects, subscribers, size, runs, duration, warmup, window, layouts, systems, prefix, nats,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new ScaleoutSettings
            {
                Servers = BenchCommand.ParseList(p.GetValue(servers), "--servers"),
                Subjects = p.GetValue(subjects),
                SubscribersPerServer = p.GetValue(subscribers),
                PayloadBytes = p.GetValue(size),
                Runs = p.GetValue(runs),
                Duration = TimeSpan.FromSeconds(p.GetValue(duration)),
                Warmup = TimeSpan.FromSeconds(p.GetValue(warmup)),
                Window = p.GetValue(window),
                Layouts = BenchCommand.SystemList(p.GetValue(layouts)),
                Systems = BenchCommand.SystemList(p.GetValue(systems)),
                Prefix = p.GetValue(prefix)!,
            };
            BenchCommand.Validate(settings.Validate);

            var natsServer = BenchCommand.NatsServerFor(settings.Systems, p.GetValue(nats));

            var launcher = BenchCommand.StreamFarmLauncher();
            var loadBefore = LoadAverage.Now();
            try
            {
                var version = natsServer is null ? "(not run)" : await ScaleoutBenchmark.NatsVersionAsync(natsServer, cancel);
                var results = await ScaleoutBenchmark.RunAsync(settings, launcher, natsServer, line => Console.Error.WriteLine($"bench: {line}"), cancel);
                var name = launcher.Arguments.Count > 0 ? "StreamFarm (.NET)" : $"StreamFarm ({Path.GetFileName(launcher.FileName)}, native)";
                Console.Out.Write(ScaleoutBenchmark.Report(results, settings, name, version, $"{loadBefore} → {LoadAverage.Now()}"));
                return results.All(r => r.Error is null && r.Problems.Count == 0) ? ExitCodes.Success : ExitCodes.RuntimeFailure;
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }
        });
        return command;
    }

}
