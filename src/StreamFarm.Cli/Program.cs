using System.CommandLine;
using StreamFarm.Cli;
using StreamFarm.Client;
using StreamFarm.Cli.Commands;

var root = new RootCommand("StreamFarm: a farm of real-time streaming servers speaking RTTP.");
root.Subcommands.Add(NodeCommand.Create());
root.Subcommands.Add(SubCommand.Create());
root.Subcommands.Add(PubCommand.Create());
root.Subcommands.Add(FarmCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(HashPasswordCommand.Create());
root.Subcommands.Add(KeygenCommand.Create());
root.Subcommands.Add(CertCommand.Create());
root.Subcommands.Add(DnsCommand.Create());
root.Subcommands.Add(DnsSyncCommand.Create());
root.Subcommands.Add(DrainCommand.Create());

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
