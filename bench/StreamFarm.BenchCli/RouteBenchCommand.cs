using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh routes</c>: one hop against two and three, on a farm of three StreamFarm nodes
/// (real processes on 127.0.9.1-3) and on a cluster of three nats-servers (127.0.9.11-13);
/// deliveries/s, server CPU per delivery, and latency at a fixed rate (docs/benchmarks.md, "Routes").
/// </summary>
internal static class RouteBenchCommand
{
    public static Command Create()
    {
        var subscribers = new Option<int>("--subscribers") { Description = "subscribers per scenario (one publisher), split over two servers in the routed scenarios", DefaultValueFactory = _ => 10 };
        var size = new Option<int>("--size") { Description = "payload bytes per message", DefaultValueFactory = _ => 128 };
        var rate = new Option<int>("--rate") { Description = "messages per second the publisher sends in the latency run", DefaultValueFactory = _ => 5000 };
        var duration = new Option<double>("--duration") { Description = "seconds measured per run (each scenario has a latency run and a throughput run)", DefaultValueFactory = _ => 5 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of publishing before each measurement", DefaultValueFactory = _ => 1 };
        var window = new Option<int>("--window") { Description = "throughput run: most messages the publisher may be ahead of the slowest subscriber", DefaultValueFactory = _ => 1000 };
        var systems = new Option<string>("--systems") { Description = "streamfarm and nats, comma-separated", DefaultValueFactory = _ => "streamfarm,nats" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (StreamFarm on .1-.3, nats-servers on .11-.13)", DefaultValueFactory = _ => "127.0.9" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var command = new Command("routes", "A publication's way between three servers (one hop, two hops, publisher off the subject's owner): StreamFarm's routes against a nats-server cluster, deliveries/s, CPU per delivery, latency")
        {
            subscribers, size, rate, duration, warmup, window, systems, prefix, nats, json,
        };
        command.SetAction(async (p, cancel) =>
        {
            var windowSize = p.GetValue(window);
            var settings = new RouteSettings
            {
                Subscribers = p.GetValue(subscribers),
                PayloadBytes = p.GetValue(size),
                Rate = p.GetValue(rate),
                Duration = Seconds(p.GetValue(duration), "--duration"),
                Warmup = Seconds(p.GetValue(warmup), "--warmup"),
                Window = windowSize,
                Batch = Math.Max(1, windowSize / 10),
                Systems = BenchCommand.SystemList(p.GetValue(systems)),
                Prefix = p.GetValue(prefix)!,
            };
            BenchCommand.Validate(settings.Validate);

            var natsServer = BenchCommand.NatsServerFor(settings.Systems, p.GetValue(nats));
            RouteReport report;
            try
            {
                report = await RouteBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), natsServer, line => Console.Error.WriteLine($"bench: {line}"), cancel);
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }

            BenchCommand.Print(p.GetValue(json), report.WriteJson, report.ToMarkdown);

            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }

    private static TimeSpan Seconds(double value, string option) =>
        double.IsFinite(value) && value >= 0 && value <= 3600 ? TimeSpan.FromSeconds(value) : throw new CliError($"{option} must be between 0 and 3600 seconds", ExitCodes.Usage);
}
