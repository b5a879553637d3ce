using System.CommandLine;
using StreamFarm.Cli.Commands;

namespace StreamFarm.Cli;

/// <summary>
/// The <c>streamfarm</c> command and its subcommands, built in one place: <c>Program</c> runs it, and
/// tests parse with it (the Kubernetes manifests' arguments are checked against it).
/// </summary>
internal static class CliRoot
{
    public static RootCommand Create()
    {
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
        return root;
    }
}
