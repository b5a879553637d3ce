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
        var sizes = new Option<string>("--sizes") { Description = "farm sizes (processes per farm), comma-separated", DefaultValueFactory = _ => "3,10" };
        var systems = new Option<string>("--systems") { Description = "lan, local (StreamFarm presets) and serf, comma-separated", DefaultValueFactory = _ => "lan,local,serf" };
        var rest = new Option<double>("--rest") { Description = "seconds over which traffic at rest is measured", DefaultValueFactory = _ => 10 };
        var restAfter = new Option<double>("--rest-after") { Description = "traffic at rest is measured no sooner than this many seconds after the processes started (the .NET build recompiles hot code in its first seconds)", DefaultValueFactory = _ => 12 };
        var poll = new Option<int>("--poll-ms") { Description = "milliseconds between two polls of a member's view", DefaultValueFactory = _ => 20 };
        var faultsFrom = new Option<int>("--faults-from") { Description = "farms of at least this size also get the SIGSTOP and CPU-saturation phases (0: none)", DefaultValueFactory = _ => 10 };
        var hogs = new Option<int>("--hogs") { Description = "busy loops sharing the saturated member's core", DefaultValueFactory = _ => 4 };
        var serf = new Option<string?>("--serf") { Description = "path of serf (default: on PATH, else /usr/bin/serf)" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var command = new Command("membership", "N StreamFarm servers (presets lan and local) against N serf agents: join, status change, kill -9 detection, traffic at rest, false deaths")
        {
            sizes, systems, rest, restAfter, poll, faultsFrom, hogs, serf, json,
        };
        command.SetAction(async (p, cancel) =>
        {
            var restSeconds = p.GetValue(rest);
            var restAfterSeconds = p.GetValue(restAfter);
            var settings = new MembershipSettings
            {
                Sizes = BenchCommand.ParseList(p.GetValue(sizes), "--sizes"),
                Systems = [.. (p.GetValue(systems) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => x.ToLowerInvariant())],
                Rest = double.IsFinite(restSeconds) && restSeconds is > 0 and <= 3600 ? TimeSpan.FromSeconds(restSeconds) : throw new CliError("--rest must be between 0 and 3600 seconds", ExitCodes.Usage),
                MinUptime = double.IsFinite(restAfterSeconds) && restAfterSeconds is >= 0 and <= 3600 ? TimeSpan.FromSeconds(restAfterSeconds) : throw new CliError("--rest-after must be between 0 and 3600 seconds", ExitCodes.Usage),
                PollInterval = TimeSpan.FromMilliseconds(p.GetValue(poll)),
                FaultsFromSize = p.GetValue(faultsFrom) is > 0 and var f ? f : int.MaxValue,
                Hogs = p.GetValue(hogs),
            };
            try
            {
                settings.Validate();
            }
            catch (ArgumentException e)
            {
                throw new CliError(e.Message, ExitCodes.Usage);
            }

            var serfPath = settings.Systems.Contains("serf") ? p.GetValue(serf) ?? FindSerf() : null;
            MembershipReport report;
            try
            {
                report = await MembershipBenchmark.RunAsync(settings, BenchCommand.StreamFarmLauncher(), serfPath, line => Console.Error.WriteLine($"bench: {line}"), cancel);
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
}
