using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh dns</c>: Knot DNS and our responder (a <c>streamfarm node --dns</c> in a farm of
/// three) serving the same names, each driven by dnsperf with the same query mix; see
/// <see cref="DnsBenchmark"/> and docs/benchmarks.md ("DNS").
/// </summary>
internal static class DnsBenchCommand
{
    public static Command Create()
    {
        var clients = new Option<int>("--clients", "-c") { Description = "dnsperf clients (-c), the same for both servers", DefaultValueFactory = _ => 8 };
        var threads = new Option<int>("--threads", "-T") { Description = "dnsperf threads (-T)", DefaultValueFactory = _ => 1 };
        var outstanding = new Option<int>("--outstanding", "-q") { Description = "dnsperf's most queries outstanding (-q)", DefaultValueFactory = _ => 100 };
        var duration = new Option<double>("--duration", "-l") { Description = "seconds per measured run (dnsperf -l)", DefaultValueFactory = _ => 10 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of unreported load before each run", DefaultValueFactory = _ => 2 };
        var runs = new Option<int>("--runs") { Description = "measured runs per server, alternating", DefaultValueFactory = _ => 1 };
        var knotd = new Option<string>("--knotd") { Description = "path of knotd", DefaultValueFactory = _ => "/usr/sbin/knotd" };
        var dnsperf = new Option<string>("--dnsperf") { Description = "path of dnsperf", DefaultValueFactory = _ => "/usr/bin/dnsperf" };
        var pin = new Option<bool>("--pin") { Description = "each server on the last core, dnsperf on the others (taskset); Knot with one UDP worker, as many as our UDP loops" };
        var command = new Command("dns", "Our DNS responder against Knot DNS, same names, same dnsperf load: queries/s, latency, lost queries, server CPU")
        {
            clients, threads, outstanding, duration, warmup, runs, knotd, dnsperf, pin,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new DnsBenchSettings
            {
                Clients = p.GetValue(clients),
                Threads = p.GetValue(threads),
                MaxOutstanding = p.GetValue(outstanding),
                Duration = Seconds(p.GetValue(duration), "--duration"),
                Warmup = Seconds(p.GetValue(warmup), "--warmup"),
                Runs = p.GetValue(runs),
                Knotd = p.GetValue(knotd)!,
                Dnsperf = p.GetValue(dnsperf)!,
                Pin = p.GetValue(pin),
            };
            BenchCommand.Validate(settings.Validate);

            foreach (var program in new[] { settings.Knotd, settings.Dnsperf })
            {
                if (!File.Exists(program))
                {
                    throw new CliError($"{program} not found (apt-get install knot dnsperf, or scripts/setup.sh --bench)");
                }
            }

            DnsBenchReport report;
            try
            {
                report = await DnsBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), line => Console.Error.WriteLine($"bench: {line}"), cancel);
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

    private static TimeSpan Seconds(double value, string option) =>
        double.IsFinite(value) && value >= 0 && value <= 3600 ? TimeSpan.FromSeconds(value) : throw new CliError($"{option} must be between 0 and 3600 seconds", ExitCodes.Usage);
}
