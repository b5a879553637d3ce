using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary><c>./bench.sh subjects</c>: memory per subject and the create, update, subscribe and fan-out rates as a server holds more subjects.</summary>
internal static class SubjectsBenchCommand
{
    public static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "subjects held by the server, comma-separated (a fresh server each)", DefaultValueFactory = _ => "10000,100000,1000000" };
        var runs = new Option<int>("--runs") { Description = "runs of every size", DefaultValueFactory = _ => 1 };
        var perSubscriber = new Option<int>("--per-subscriber") { Description = "subjects each subscriber connection takes (at most the server's limits.maxSubscriptionsPerConnection)", DefaultValueFactory = _ => 10_000 };
        var address = new Option<string>("--address") { Description = "loopback address for the server", DefaultValueFactory = _ => "127.0.63.1" };
        var command = new Command("subjects", "How cost grows with the subjects a server holds: memory per subject; create, update, subscribe (IMAGE) and fan-out rates with the server's CPU per operation. STREAMFARM_BENCH_SERVER picks the build (the native executable, or a streamfarm.dll)")
        {
            sizes, runs, perSubscriber, address,
        };
        command.SetAction(async (p, cancel) =>
        {
            var settings = new SubjectsSettings
            {
                Sizes = BenchCommand.ParseList(p.GetValue(sizes)!, "--sizes"),
                Runs = p.GetValue(runs),
                SubjectsPerSubscriber = p.GetValue(perSubscriber),
                Address = p.GetValue(address)!,
            };
            if (settings.Runs < 1 || settings.SubjectsPerSubscriber < 1 || settings.Sizes.Any(n => n < 1))
            {
                throw new CliError("--sizes, --runs and --per-subscriber must be positive", ExitCodes.Usage);
            }

            var launcher = BenchCommand.StreamFarmLauncher();
            try
            {
                var results = await SubjectsBenchmark.RunAsync(settings, launcher, Console.Error, cancel);
                var name = launcher.Arguments.Count > 0 ? "StreamFarm (.NET)" : $"StreamFarm ({Path.GetFileName(launcher.FileName)}, native)";
                Console.Out.Write(SubjectsBenchmark.Report(results, name));
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
