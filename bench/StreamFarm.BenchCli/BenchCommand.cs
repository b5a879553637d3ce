using System.CommandLine;
using System.Globalization;
using StreamFarm.Bench;
using StreamFarm.Cli;

namespace StreamFarm.BenchCli;

/// <summary>
/// <c>./bench.sh fanout</c>: the side-by-side fan-out benchmark. It starts a StreamFarm node
/// (the product, as <c>dotnet streamfarm.dll node ...</c>) and nats-server, one at a time, on
/// their own loopback addresses, drives both over raw sockets, and prints a Markdown (or JSON) report.
/// </summary>
internal static class BenchCommand
{
    public static RootCommand Create()
    {
        var command = new RootCommand("streamfarm-bench: StreamFarm next to nats-server, knot and serf, side by side (docs/benchmarks.md)");
        command.Subcommands.Add(CreateFanout());
        command.Subcommands.Add(DnsBenchCommand.Create());
        command.Subcommands.Add(MembershipBenchCommand.Create());
        command.Subcommands.Add(ClientBenchCommand.CreateFailover());
        command.Subcommands.Add(ClientBenchCommand.CreateBalance());
        command.Subcommands.Add(ClientBenchCommand.CreateTakeover());
        command.Subcommands.Add(ClientBenchCommand.CreateSoak());
        command.Subcommands.Add(RouteBenchCommand.Create());
        command.Subcommands.Add(LatencyBenchCommand.Create());
        command.Subcommands.Add(TlsBenchCommand.Create());
        command.Subcommands.Add(FootprintBenchCommand.Create());
        command.Subcommands.Add(SubjectsBenchCommand.Create());
        command.Subcommands.Add(ScaleoutBenchCommand.Create());
        command.Subcommands.Add(SubscribersBenchCommand.Create());
        command.Subcommands.Add(ConnectionsBenchCommand.Create());
        command.Subcommands.Add(FarmSizeBenchCommand.Create());
        command.Subcommands.Add(IdleClientsBenchCommand.Create());
        return command;
    }

    private static Command CreateFanout()
    {
        var duration = new Option<double>("--duration") { Description = "seconds measured per scenario", DefaultValueFactory = _ => 5 };
        var warmup = new Option<double>("--warmup") { Description = "seconds of publishing before each measurement", DefaultValueFactory = _ => 1 };
        var sizes = new Option<string>("--sizes") { Description = "payload sizes in bytes, comma-separated", DefaultValueFactory = _ => "16,128" };
        var fanouts = new Option<string>("--fanouts") { Description = "subscribers per scenario (one publisher), comma-separated", DefaultValueFactory = _ => "1,10,100" };
        var window = new Option<int>("--window") { Description = "most messages the publisher may be ahead of the slowest subscriber", DefaultValueFactory = _ => 1000 };
        var nats = new Option<string?>("--nats-server") { Description = "path of nats-server (default: on PATH, else /usr/sbin/nats-server)" };
        var json = new Option<bool>("--json") { Description = "print the report as JSON instead of Markdown" };
        var tls = new Option<bool>("--tls") { Description = "every connection over TLS, both servers with the same certificate (streamfarm cert)" };
        var command = new Command("fanout", "One publisher, N subscribers on one subject: StreamFarm against nats-server, deliveries/s and server CPU per delivery")
        {
            duration, warmup, sizes, fanouts, window, nats, json, tls,
        };
        command.SetAction(async (p, cancel) =>
        {
            var windowSize = p.GetValue(window);
            var settings = new FanoutSettings
            {
                Duration = Seconds(p.GetValue(duration), "--duration"),
                Warmup = Seconds(p.GetValue(warmup), "--warmup"),
                PayloadSizes = ParseList(p.GetValue(sizes), "--sizes"),
                Fanouts = ParseList(p.GetValue(fanouts), "--fanouts"),
                Window = windowSize,
                Batch = Math.Max(1, windowSize / 10),
            };
            Validate(settings.Validate);

            var natsServer = p.GetValue(nats) ?? FindNatsServer();
            var launcher = StreamFarmLauncher();
            RaiseCapacity(); // a 1:10,000 fan-out needs 10,001 connections, one more than a server's default capacity

            BenchReport report;
            try
            {
                if (p.GetValue(tls))
                {
                    settings = settings with
                    {
                        Tls = await BenchTls.CreateAsync(launcher, [System.Net.IPAddress.Parse(settings.StreamFarmAddress), System.Net.IPAddress.Parse(settings.NatsAddress)], cancel),
                    };
                }

                report = await FanoutBenchmark.RunAsync(settings, launcher, natsServer, line => Console.Error.WriteLine($"bench: {line}"), cancel);
            }
            catch (BenchException e)
            {
                throw new CliError(e.Message, e);
            }

            Print(p.GetValue(json), report.WriteJson, report.ToMarkdown);

            return report.Clean ? ExitCodes.Success : ExitCodes.RuntimeFailure;
        });
        return command;
    }

    /// <summary>The nats-server to run when <paramref name="systems"/> has nats (<paramref name="given"/>, else found), or null; a missing program is an error.</summary>
    internal static string? NatsServerFor(IReadOnlyList<string> systems, string? given)
    {
        var natsServer = systems.Contains("nats") ? given ?? FindNatsServer() : null;
        if (natsServer is not null && !File.Exists(natsServer))
        {
            throw new CliError($"nats-server not found at {natsServer}: run scripts/setup.sh --bench (it installs Debian's nats-server), or give --nats-server PATH");
        }

        return natsServer;
    }

    /// <summary>Prints a report: JSON (one document and a line feed) or Markdown.</summary>
    internal static void Print(bool asJson, Action<Stream> writeJson, Func<string> markdown)
    {
        if (asJson)
        {
            using var stdout = Console.OpenStandardOutput();
            writeJson(stdout);
            stdout.Write("\n"u8);
        }
        else
        {
            Console.Out.Write(markdown());
        }
    }

    /// <summary>The server to benchmark is this program: <c>dotnet streamfarm.dll</c>, whether we run through dotnet or the apphost.</summary>
    internal static ServerLauncher StreamFarmLauncher()
    {
        LiftPerAddressLimits();
        var dll = FindServer() ?? throw new CliError("cannot find streamfarm.dll to start the servers from: build src/StreamFarm.Cli (./bench.sh does), or set STREAMFARM_BENCH_SERVER to its path");
        if (!dll.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            return new ServerLauncher(dll, []); // an executable: the native build (scripts/native.sh)
        }

        var host = Environment.ProcessPath;
        if (host is null || !Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.Ordinal))
        {
            host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        }

        return new ServerLauncher(host, [dll]);
    }

    /// <summary>
    /// Every client of a benchmark comes from one address (this machine's loopback): the
    /// per-address limits that protect a server from one client (operations.md 6) would cap
    /// the load, so the servers the benchmarks start (children of this process) run without them.
    /// </summary>
    internal static void LiftPerAddressLimits()
    {
        Environment.SetEnvironmentVariable("STREAMFARM_LIMITS__MAXCONNECTIONSPERADDRESS", "0");
        Environment.SetEnvironmentVariable("STREAMFARM_LIMITS__HTTPREQUESTSPERSECONDPERADDRESS", "0");
    }

    /// <summary>The servers this process starts take up to 20,000 connections (the default capacity is 10,000), unless STREAMFARM_CAPACITY says otherwise.</summary>
    internal static void RaiseCapacity()
    {
        if (Environment.GetEnvironmentVariable("STREAMFARM_CAPACITY") is null)
        {
            Environment.SetEnvironmentVariable("STREAMFARM_CAPACITY", "20000");
        }
    }

    /// <summary>
    /// The product's streamfarm.dll: <c>STREAMFARM_BENCH_SERVER</c> (a .dll, or an executable such as
    /// the native build, artifacts/native/streamfarm), else the CLI's build output of
    /// the same configuration in this checkout (this program lives in bench/StreamFarm.BenchCli/bin/&lt;configuration&gt;/&lt;tfm&gt;/).
    /// </summary>
    private static string? FindServer()
    {
        if (Environment.GetEnvironmentVariable("STREAMFARM_BENCH_SERVER") is { Length: > 0 } given)
        {
            return File.Exists(given) ? given : null;
        }

        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = here.Name;
        var configuration = here.Parent?.Name;
        for (var dir = here; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "StreamFarm.Cli", "bin", configuration ?? "Release", tfm, "streamfarm.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    internal static string FindNatsServer()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Append("/usr/sbin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(dir, "nats-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new CliError("nats-server not found on PATH or in /usr/sbin: run scripts/setup.sh --bench (it installs Debian's nats-server), or give --nats-server PATH");
    }

    internal static TimeSpan Seconds(double value, string option) =>
        double.IsFinite(value) && value >= 0 && value <= 3600 ? TimeSpan.FromSeconds(value) : throw new CliError($"{option} must be between 0 and 3600 seconds", ExitCodes.Usage);

    /// <summary>Runs a settings record's <c>Validate</c>; its <see cref="ArgumentException"/> becomes a usage error.</summary>
    internal static void Validate(Action validate)
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

    /// <summary>A list option such as <c>--systems</c>: comma-separated names, trimmed, in lower case.</summary>
    internal static List<string> SystemList(string? text) =>
        [.. (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => x.ToLowerInvariant())];

    internal static List<int> ParseList(string? text, string option)
    {
        var values = new List<int>();
        foreach (var part in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                throw new CliError($"{option}: '{part}' is not a whole number", ExitCodes.Usage);
            }

            values.Add(v);
        }

        return values.Count > 0 ? values : throw new CliError($"{option} needs at least one number", ExitCodes.Usage);
    }
}
