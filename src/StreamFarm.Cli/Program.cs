using System.CommandLine;
using StreamFarm.Cli;
using StreamFarm.Client;

var root = CliRoot.Create();
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"streamfarm: {error.Message}");
    }

    Console.Error.WriteLine("try 'streamfarm --help'");
    return ExitCodes.Usage;
}

try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
}
catch (CliError e)
{
    Console.Error.WriteLine($"streamfarm: {e.Message}");
    return e.ExitCode;
}
catch (RttpConnectionException e)
{
    Console.Error.WriteLine($"streamfarm: {e.Message}");
    return ExitCodes.RuntimeFailure;
}
