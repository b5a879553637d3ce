using System.CommandLine;
using StreamFarm.Server.Auth;

namespace StreamFarm.Cli.Commands;

/// <summary><c>streamfarm hash-password [--token]</c>: reads a secret from standard input, prints the hash for the config.</summary>
internal static class HashPasswordCommand
{
    public static Command Create()
    {
        var token = new Option<bool>("--token") { Description = "hash a bearer token (tokenHash) instead of a password (passwordHash)" };
        var command = new Command("hash-password", "Hash a password or token read from standard input, for the config file") { token };
        command.SetAction(async (p, cancel) =>
        {
            var secret = await Console.In.ReadLineAsync(cancel);
            if (string.IsNullOrEmpty(secret))
            {
                throw new CliError("give the secret on standard input (echo -n SECRET | streamfarm hash-password)", ExitCodes.Usage);
            }

            Console.Out.WriteLine(p.GetValue(token) ? PasswordHasher.HashToken(secret) : PasswordHasher.HashPassword(secret));
            return ExitCodes.Success;
        });
        return command;
    }
}
