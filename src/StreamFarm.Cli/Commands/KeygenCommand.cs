using System.CommandLine;
using StreamFarm.Membership;

namespace StreamFarm.Cli.Commands;

/// <summary><c>streamfarm keygen</c>: prints a new random farm key (AES-256, base64) for --gossip-key.</summary>
internal static class KeygenCommand
{
    public static Command Create()
    {
        var command = new Command("keygen", "Print a new random gossip key for the farm (base64, 32 bytes)");
        command.SetAction(_ =>
        {
            Console.Out.WriteLine(Keyring.NewKeyBase64());
            return ExitCodes.Success;
        });
        return command;
    }
}
