using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary><c>./bench.sh idle-clients</c>: what subscribed clients at rest cost the server, with each system's own .NET client library (docs/benchmarks.md, "Clients at rest").</summary>
internal static class IdleClientsBenchCommand
{
    public static Command Create()
    {
        var clients = new Option<int>("--clients") { Description = "subscribed clients per run", DefaultValueFactory = _ => 1000 };
        var settle = new Option<double>("--settle") { Description = "seconds after the last client subscribed before the window opens", DefaultValueFactory = _ => 5 };
        var window = new Option<double>("--window") { Description = "seconds over which CPU is read", DefaultValueFactory = _ => 30 };
        var runs = new Option<int>("--runs") { Description = "runs of each system, alternating", DefaultValueFactory = _ => 3 };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use", DefaultValueFactory = _ => "127.0.59" };
        var heartbeat = new Option<double>("--heartbeat") { Description = "the FarmClients' HeartbeatTimeout in seconds (over 3, they ask the server for pings a third as often)", DefaultValueFactory = _ => 3 };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var command = new Command("idle-clients", "Subscribed clients at rest, StreamFarm's FarmClient next to NATS.Net on nats-server: server CPU per client and second")
        {
            clients, settle, window, runs, prefix, heartbeat, nats,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new IdleClientsSettings
            {
                Clients = p.GetValue(clients),
                Settle = p.GetValue(settle),
                Window = p.GetValue(window),
                Runs = p.GetValue(runs),
                Prefix = p.GetValue(prefix)!,
                Heartbeat = TimeSpan.FromSeconds(p.GetValue(heartbeat)),
            };
            if (settings.Clients < 1 || settings.Runs < 1 || settings.Window <= 0 || settings.Settle < 0 || settings.Heartbeat <= TimeSpan.Zero)
            {
                throw new CliError("--clients, --runs, --window and --heartbeat must be positive, --settle not negative", ExitCodes.Usage);
            }

            try
            {
                var results = await IdleClientsBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), p.GetValue(nats) ?? BenchCommand.FindNatsServer(), Console.Error, cancel);
                Console.Out.Write(IdleClientsBenchmark.Report(results, settings));
                return ExitCodes.Success;
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }
        });
        return command;
    }
}
