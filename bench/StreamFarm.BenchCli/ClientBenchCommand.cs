using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;
using StreamFarm.Client;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh failover</c> and <c>./bench.sh balance</c>: the client-side benchmarks
/// (docs/benchmarks.md, "Client failover and balance"). Both run a farm of real server processes
/// with its DNS system on 127.0.7.x and drive FarmClients in this process.
/// </summary>
internal static class ClientBenchCommand
{
    public static Command CreateFailover()
    {
        var runs = new Option<int>("--runs") { Description = "kills measured per system", DefaultValueFactory = _ => 50 };
        var servers = new Option<int>("--servers") { Description = "StreamFarm servers in the farm (2 to 8; the NATS cluster has 2)", DefaultValueFactory = _ => 2 };
        var interval = new Option<double>("--interval-ms") { Description = "the publisher sends one message to every server this often", DefaultValueFactory = _ => 1 };
        var systems = new Option<string>("--systems") { Description = "streamfarm and nats, comma-separated", DefaultValueFactory = _ => "streamfarm,nats" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (DNS on .1, servers on .2.., nats on .11 and .12)", DefaultValueFactory = _ => "127.0.7" };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var standby = new Option<string>("--standby") { Description = "the FarmClient's standby connection to a second server: none, warm (connected) or hot (subscribed too)", DefaultValueFactory = _ => "none" };
        var command = new Command("failover", "kill -9 the server a FarmClient is on; time to its first message from another server, against a NATS client in a two-server cluster")
        {
            runs, servers, interval, systems, prefix, nats, json, standby,
        };
        command.SetAction(async (p, cancel) =>
        {
            var ms = p.GetValue(interval);
            var settings = new FailoverSettings
            {
                Runs = p.GetValue(runs),
                Servers = p.GetValue(servers),
                PublishInterval = double.IsFinite(ms) ? TimeSpan.FromMilliseconds(ms) : TimeSpan.Zero,
                Systems = Split(p.GetValue(systems)),
                Prefix = p.GetValue(prefix)!,
                Standby = p.GetValue(standby) switch { "warm" => StandbyMode.Warm, "hot" => StandbyMode.Hot, "none" => StandbyMode.None, var other => throw new CliError($"--standby is none, warm or hot, not {other}") },
            };
            Validate(settings.Validate);
            var natsServer = settings.Systems.Contains("nats") ? p.GetValue(nats) ?? BenchCommand.FindNatsServer() : null;
            FailoverReport report;
            try
            {
                report = await FailoverBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), natsServer, Log, cancel);
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

    public static Command CreateTakeover()
    {
        var runs = new Option<int>("--runs") { Description = "owners killed", DefaultValueFactory = _ => 20 };
        var servers = new Option<int>("--servers") { Description = "servers in the farm (3 to 8)", DefaultValueFactory = _ => 3 };
        var interval = new Option<double>("--interval-ms") { Description = "the publisher publishes the subject this often", DefaultValueFactory = _ => 1 };
        var preset = new Option<string>("--preset") { Description = "membership preset of the servers: lan (the node's default), local, wan", DefaultValueFactory = _ => "lan" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (DNS on .1, servers on .2..)", DefaultValueFactory = _ => "127.0.8" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var command = new Command("takeover", "kill -9 a subject's owner while a publisher and a subscriber on other servers go on; time until the new owner's updates flow, and anything lost or out of order")
        {
            runs, servers, interval, preset, prefix, json,
        };
        command.SetAction(async (p, cancel) =>
        {
            var ms = p.GetValue(interval);
            var settings = new TakeoverSettings
            {
                Runs = p.GetValue(runs),
                Servers = p.GetValue(servers),
                PublishInterval = double.IsFinite(ms) ? TimeSpan.FromMilliseconds(ms) : TimeSpan.Zero,
                Preset = p.GetValue(preset)!,
                Prefix = p.GetValue(prefix)!,
            };
            Validate(settings.Validate);
            TakeoverReport report;
            try
            {
                report = await TakeoverBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), Log, cancel);
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

    public static Command CreateSoak()
    {
        var minutes = new Option<double>("--minutes") { Description = "how long the churn goes on", DefaultValueFactory = _ => 30 };
        var servers = new Option<int>("--servers") { Description = "servers in the farm (the first is measured and never killed)", DefaultValueFactory = _ => 3 };
        var rate = new Option<int>("--rate") { Description = "publications per second over all subjects", DefaultValueFactory = _ => 60 };
        var subjects = new Option<int>("--subjects") { Description = "subjects published in turn", DefaultValueFactory = _ => 200 };
        var killEvery = new Option<double>("--kill-every") { Description = "seconds between kills (a peer killed with SIGKILL, restarted 2 s later)", DefaultValueFactory = _ => 20 };
        var preset = new Option<string>("--preset") { Description = "membership preset of the servers: lan (the node's default), local, wan", DefaultValueFactory = _ => "lan" };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (DNS on .1, servers on .2..)", DefaultValueFactory = _ => "127.0.23" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var command = new Command("soak", "memory under churn: peers killed and restarted in turn while publications flow; the surviving server's RSS and managed heap over time, and their slope")
        {
            minutes, servers, rate, subjects, killEvery, preset, prefix, json,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new SoakSettings
            {
                Duration = TimeSpan.FromMinutes(Math.Clamp(p.GetValue(minutes), 0, 24 * 60)),
                Servers = p.GetValue(servers),
                Rate = p.GetValue(rate),
                Subjects = p.GetValue(subjects),
                KillEvery = TimeSpan.FromSeconds(Math.Clamp(p.GetValue(killEvery), 0, 86_400)),
                Preset = p.GetValue(preset)!,
                Prefix = p.GetValue(prefix)!,
            };
            Validate(settings.Validate);
            SoakReport report;
            try
            {
                report = await SoakBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), Log, cancel);
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }

            BenchCommand.Print(p.GetValue(json), report.WriteJson, report.ToMarkdown);
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command CreateBalance()
    {
        var clients = new Option<int>("--clients") { Description = "clients connected per policy", DefaultValueFactory = _ => 1000 };
        var bursts = new Option<int>("--bursts") { Description = "they connect in this many bursts, all of a burst at once", DefaultValueFactory = _ => 10 };
        var gap = new Option<int>("--gap-ms") { Description = "pause between bursts", DefaultValueFactory = _ => 250 };
        var policies = new Option<string>("--policies") { Description = "dns (DNS alone), random, fewest, p2c, weighted, comma-separated", DefaultValueFactory = _ => string.Join(',', BalanceSettings.AllPolicies) };
        var servers = new Option<int>("--servers") { Description = "servers in the farm", DefaultValueFactory = _ => 3 };
        var noRestart = new Option<bool>("--no-restart") { Description = "skip the kill -9 and restart of the busiest server" };
        var settle = new Option<int>("--settle-ms") { Description = "the counts must hold still this long before they are read (longer than the servers' rebalance interval, 2 s, to see rebalancing finish)", DefaultValueFactory = _ => 1000 };
        var prefix = new Option<string>("--prefix") { Description = "the loopback /24 to use (DNS on .1, servers on .2..)", DefaultValueFactory = _ => "127.0.7" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var command = new Command("balance", "Clients connecting in bursts through DNS alone and through each selection policy: users per server, then after a server is killed and restarted")
        {
            clients, bursts, gap, policies, servers, noRestart, settle, prefix, json,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new BalanceSettings
            {
                Clients = p.GetValue(clients),
                Bursts = p.GetValue(bursts),
                BurstGap = TimeSpan.FromMilliseconds(Math.Max(-1, p.GetValue(gap))),
                Policies = Split(p.GetValue(policies)),
                Servers = p.GetValue(servers),
                Restart = !p.GetValue(noRestart),
                Settle = TimeSpan.FromMilliseconds(Math.Max(0, p.GetValue(settle))),
                Prefix = p.GetValue(prefix)!,
            };
            Validate(settings.Validate);
            BalanceReport report;
            try
            {
                report = await BalanceBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), Log, cancel);
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

    private static void Log(string line) => Console.Error.WriteLine($"bench: {line}");

    private static List<string> Split(string? text) =>
        [.. (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => x.ToLowerInvariant())];

    private static void Validate(Action validate)
    {
        try
        {
            validate();
        }
        catch (ArgumentException e)
        {
            throw new CliError(e.Message, ExitCodes.Usage);
        }
    }
}
