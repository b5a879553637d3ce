using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary><c>./bench.sh tls</c>: TLS handshakes per second, server CPU per handshake and memory per idle TLS connection, next to nats-server with the same certificate.</summary>
internal static class TlsBenchCommand
{
    public static Command Create()
    {
        var workers = new Option<int>("--workers") { Description = "concurrent clients making handshakes", DefaultValueFactory = _ => 8 };
        var seconds = new Option<double>("--seconds") { Description = "seconds of handshakes per run", DefaultValueFactory = _ => 5 };
        var idle = new Option<int>("--idle") { Description = "idle TLS connections opened to measure memory", DefaultValueFactory = _ => 2000 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of unmeasured handshakes before each run", DefaultValueFactory = _ => 10 };
        var runs = new Option<int>("--runs") { Description = "runs per server, alternating", DefaultValueFactory = _ => 3 };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (StreamFarm on .1, nats-server on .2)", DefaultValueFactory = _ => "127.0.57" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var command = new Command("tls", "TLS next to nats-server, the same certificate: handshakes/s, server CPU per handshake, memory per idle TLS connection")
        {
            workers, seconds, warmup, idle, runs, prefix, nats,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new TlsBenchSettings
            {
                Workers = p.GetValue(workers),
                Seconds = p.GetValue(seconds),
                IdleConnections = p.GetValue(idle),
                Runs = p.GetValue(runs),
                WarmupSeconds = p.GetValue(warmup),
                Prefix = p.GetValue(prefix)!,
            };
            if (settings.Workers < 1 || settings.Seconds <= 0 || settings.IdleConnections < 1 || settings.Runs < 1)
            {
                throw new CliError("--workers, --seconds, --idle and --runs must be positive", ExitCodes.Usage);
            }

            try
            {
                var results = await TlsBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), p.GetValue(nats) ?? BenchCommand.FindNatsServer(), Console.Error, cancel);
                Console.Out.Write(TlsBenchmark.Report(results, settings));
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
