using System.CommandLine;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh membership</c>: the side-by-side membership benchmark. For each farm size it
/// runs N StreamFarm servers (preset lan, then preset local) and N serf agents as real processes on
/// their own loopback addresses, and measures join, status propagation, crash detection, traffic at
/// rest and false deaths (docs/benchmarks.md, "Membership"). Needs root for nftables and taskset.
/// </summary>
internal static class MembershipBenchCommand
{
    public static Command Create()
    {
        var common = new CommonOptions("3,10", "lan,local,serf");
        var faultsFrom = new Option<int>("--faults-from") { Description = "farms of at least this size also get the SIGSTOP and CPU-saturation phases (0: none)", DefaultValueFactory = _ => 10 };
        var hogs = new Option<int>("--hogs") { Description = "busy loops sharing the saturated member's core", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var command = new Command("membership", "N StreamFarm servers (presets lan and local) against N serf agents: join, status change, kill -9 detection, traffic at rest, false deaths");
        common.AddTo(command);
        command.Options.Add(faultsFrom);
        command.Options.Add(hogs);
        command.Options.Add(json);
        command.SetAction(async (p, cancel) =>
        {
            var settings = common.Settings(p) with
            {
                FaultsFromSize = p.GetValue(faultsFrom) is > 0 and var f ? f : int.MaxValue,
                Hogs = p.GetValue(hogs),
            };
            var report = await RunAsync(settings, common.Serf(p, settings), BenchCommand.StreamFarmLauncher(), cancel);
            BenchCommand.Print(p.GetValue(json), report.WriteJson, report.ToMarkdown);
            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }

    /// <summary>Checks the settings and runs the benchmark, progress to standard error.</summary>
    internal static async Task<MembershipReport> RunAsync(MembershipSettings settings, string? serf, ServerLauncher launcher, CancellationToken cancel)
    {
        BenchCommand.Validate(settings.Validate);

        try
        {
            return await MembershipBenchmark.RunAsync(settings, launcher, serf, line => Console.Error.WriteLine($"bench: {line}"), cancel);
        }
        catch (BenchException e)
        {
            throw new CliError(e.Message, e);
        }
    }

    internal static string FindSerf()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, "serf");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new CliError("serf not found on PATH or in /usr/bin (apt-get install serf, or give --serf; or leave it out with --systems lan,local)");
    }

    /// <summary>The options <c>membership</c> and <c>farmsize</c> share: sizes, systems, rest, poll interval, serf's path.</summary>
    internal sealed class CommonOptions(string sizesDefault, string systemsDefault)
    {
        private readonly Option<string> _sizes = new("--sizes") { Description = "farm sizes (processes per farm), comma-separated", DefaultValueFactory = _ => sizesDefault };
        private readonly Option<string> _systems = new("--systems") { Description = "lan, local (StreamFarm presets) and serf, comma-separated", DefaultValueFactory = _ => systemsDefault };
        private readonly Option<double> _rest = new("--rest") { Description = "seconds over which traffic at rest is measured", DefaultValueFactory = _ => 10 };
        private readonly Option<double> _restAfter = new("--rest-after") { Description = "traffic at rest is measured no sooner than this many seconds after the processes started (the .NET build recompiles hot code in its first seconds)", DefaultValueFactory = _ => 12 };
        private readonly Option<int> _poll = new("--poll-ms") { Description = "milliseconds between two polls of a member's view", DefaultValueFactory = _ => 20 };
        private readonly Option<string?> _serf = new("--serf") { Description = "path of serf (default: on PATH, else /usr/bin/serf)" };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { _sizes, _systems, _rest, _restAfter, _poll, _serf })
            {
                command.Options.Add(option);
            }
        }

        public MembershipSettings Settings(ParseResult p)
        {
            var restSeconds = p.GetValue(_rest);
            var restAfterSeconds = p.GetValue(_restAfter);
            return new MembershipSettings
            {
                Sizes = BenchCommand.ParseList(p.GetValue(_sizes), "--sizes"),
                Systems = [.. (p.GetValue(_systems) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => x.ToLowerInvariant())],
                Rest = double.IsFinite(restSeconds) && restSeconds is > 0 and <= 3600 ? TimeSpan.FromSeconds(restSeconds) : throw new CliError("--rest must be between 0 and 3600 seconds", ExitCodes.Usage),
                MinUptime = double.IsFinite(restAfterSeconds) && restAfterSeconds is >= 0 and <= 3600 ? TimeSpan.FromSeconds(restAfterSeconds) : throw new CliError("--rest-after must be between 0 and 3600 seconds", ExitCodes.Usage),
                PollInterval = TimeSpan.FromMilliseconds(p.GetValue(_poll)),
            };
        }

        /// <summary>serf's path when the systems include serf, else null.</summary>
        public string? Serf(ParseResult p, MembershipSettings settings) => settings.Systems.Contains("serf") ? p.GetValue(_serf) ?? FindSerf() : null;
    }
}
