using System.CommandLine;
using StreamFarm.BenchCli;
using StreamFarm.Cli;
using StreamFarm.Client;

// ./bench.sh <benchmark> [options]: StreamFarm next to its peers (docs/benchmarks.md).
var root = BenchCommand.Create();
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"streamfarm-bench: {error.Message}");
    }

    Console.Error.WriteLine("try './bench.sh --help'");
    return ExitCodes.Usage;
}

try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
}
catch (CliError e)
{
    Console.Error.WriteLine($"streamfarm-bench: {e.Message}");
    return e.ExitCode;
}
catch (RttpConnectionException e)
{
    Console.Error.WriteLine($"streamfarm-bench: {e.Message}");
    return ExitCodes.RuntimeFailure;
}
