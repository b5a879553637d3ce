using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh latency</c>: publish → deliver latency percentiles at fixed rates, with the
/// publisher and subscriber on the subject's owner, the publisher on the owner (one hop) and the
/// subscriber elsewhere, or both off the owner; next to a single nats-server and a cluster of two.
/// </summary>
internal static class LatencyBenchCommand
{
    public static Command Create()
    {
        var rates = new Option<string>("--rates") { Description = "messages per second, comma-separated", DefaultValueFactory = _ => "1000,10000" };
        var size = new Option<int>("--size") { Description = "payload bytes per message", DefaultValueFactory = _ => 128 };
        var duration = new Option<double>("--duration") { Description = "seconds measured per run", DefaultValueFactory = _ => 5 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of publishing before each measurement", DefaultValueFactory = _ => 1 };
        var systems = new Option<string>("--systems") { Description = "streamfarm and nats, comma-separated", DefaultValueFactory = _ => "streamfarm,nats" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (StreamFarm on .1-.3, nats-servers on .11-.12)", DefaultValueFactory = _ => "127.0.9" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var command = new Command("latency", "Publish → deliver latency (p50, p90, p99, max) at fixed rates: same server, one hop (publisher on the owner), worst case (both off the owner); next to nats-server alone and a cluster of two")
        {
            rates, size, duration, warmup, systems, prefix, nats,
        };
        command.SetAction(async (p, cancel) =>
        {
            List<int> rateList;
            try
            {
                rateList = [.. (p.GetValue(rates) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(r => int.Parse(r, System.Globalization.CultureInfo.InvariantCulture))];
            }
            catch (FormatException)
            {
                throw new CliError("--rates takes whole numbers of messages per second, like 1000,10000", ExitCodes.Usage);
            }

            var settings = new RouteSettings
            {
                Subscribers = 2, // checked by Validate; the latency benchmark uses one subscriber per scenario
                PayloadBytes = p.GetValue(size),
                Duration = TimeSpan.FromSeconds(p.GetValue(duration)),
                Warmup = TimeSpan.FromSeconds(p.GetValue(warmup)),
                Systems = BenchCommand.SystemList(p.GetValue(systems)),
                Prefix = p.GetValue(prefix)!,
                LatencyOnly = true,
            };
            try
            {
                settings.Validate();
                foreach (var r in rateList)
                {
                    (settings with { Rate = r }).Validate();
                }
            }
            catch (ArgumentException e)
            {
                throw new CliError(e.Message, ExitCodes.Usage);
            }

            if (rateList.Count == 0)
            {
                throw new CliError("--rates names no rate", ExitCodes.Usage);
            }

            settings = settings with { Subscribers = 1 };
            var natsServer = settings.Systems.Contains("nats") ? p.GetValue(nats) ?? BenchCommand.FindNatsServer() : null;
            if (natsServer is not null && !File.Exists(natsServer))
            {
                throw new CliError($"nats-server not found at {natsServer}: run scripts/setup.sh --bench (it installs Debian's nats-server), or give --nats-server PATH");
            }

            LatencyReport report;
            try
            {
                report = await LatencyBenchmark.RunAsync(settings, rateList, BenchCommand.StreamFarmLauncher(), natsServer, line => Console.Error.WriteLine($"bench: {line}"), cancel);
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }

            Console.Out.Write(report.ToMarkdown());
            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }
}
