using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh subscribers</c>: how cost grows with the subscribers of one subject: throughput
/// and server CPU per delivery (as <c>fanout</c>) and publish → deliver latency at a fixed budget of
/// deliveries per second, StreamFarm next to nats-server taking turns at each size.
/// </summary>
internal static class SubscribersBenchCommand
{
    public static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "subscriber connections on the one subject, comma-separated", DefaultValueFactory = _ => "1,10,100,1000,10000" };
        var runs = new Option<int>("--runs") { Description = "runs (both servers started afresh each run; which goes first alternates)", DefaultValueFactory = _ => 3 };
        var duration = new Option<double>("--duration") { Description = "seconds measured per pass (latency, throughput)", DefaultValueFactory = _ => 4 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of publishing before each measurement", DefaultValueFactory = _ => 1 };
        var budget = new Option<int>("--budget") { Description = "deliveries per second of the latency pass, over all subscribers (msgs/s = budget / subscribers)", DefaultValueFactory = _ => 20_000 };
        var rate = new Option<int?>("--rate") { Description = "a fixed publication rate (msgs/s) for the latency pass at every size, instead of --budget" };
        var size = new Option<int>("--size") { Description = "payload bytes per message", DefaultValueFactory = _ => 16 };
        var systems = new Option<string>("--systems") { Description = "streamfarm and nats, comma-separated", DefaultValueFactory = _ => "streamfarm,nats" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (StreamFarm on .1, nats-server on .11)", DefaultValueFactory = _ => "127.0.82" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var command = new Command("subscribers", "How cost grows with subscribers per subject (1 to 10,000): deliveries/s, server CPU per delivery, and publish → deliver latency (p50, p90, p99, max) at a fixed budget of deliveries/s; next to nats-server. STREAMFARM_BENCH_SERVER picks the build")
        {
            sizes, runs, duration, warmup, budget, rate, size, systems, prefix, nats,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new SubscribersSettings
            {
                Sizes = BenchCommand.ParseList(p.GetValue(sizes), "--sizes"),
                Runs = p.GetValue(runs),
                Duration = BenchCommand.Seconds(p.GetValue(duration), "--duration"),
                Warmup = BenchCommand.Seconds(p.GetValue(warmup), "--warmup"),
                Budget = p.GetValue(budget),
                Rate = p.GetValue(rate),
                PayloadBytes = p.GetValue(size),
                Systems = BenchCommand.SystemList(p.GetValue(systems)),
                Prefix = p.GetValue(prefix)!,
            };
            BenchCommand.Validate(settings.Validate);

            var natsServer = settings.Systems.Contains("nats") ? p.GetValue(nats) ?? BenchCommand.FindNatsServer() : null;
            var launcher = BenchCommand.StreamFarmLauncher();
            if (Environment.GetEnvironmentVariable("STREAMFARM_CAPACITY") is null)
            {
                // 10,000 subscribers and a publisher are one connection more than a server's default capacity.
                Environment.SetEnvironmentVariable("STREAMFARM_CAPACITY", "20000");
            }

            SubscribersReport report;
            try
            {
                report = await SubscribersBenchmark.RunAsync(settings, launcher, natsServer, line => Console.Error.WriteLine($"bench: {line}"), cancel);
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }

            var name = launcher.Arguments.Count > 0 ? "StreamFarm (.NET)" : $"StreamFarm ({Path.GetFileName(launcher.FileName)}, native)";
            Console.Out.Write($"Server: {name}\n\n");
            Console.Out.Write(report.ToMarkdown());
            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }
}
