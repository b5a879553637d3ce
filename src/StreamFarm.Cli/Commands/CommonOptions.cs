using System.CommandLine;

namespace StreamFarm.Cli.Commands;

/// <summary>Options several commands share, with the names ../shared/CLI.md fixes.</summary>
internal static class CommonOptions
{
    public static Option<string?> Server() => new("--server") { Description = "HOST:PORT of an RTTP server (TCP port 7400 by default)" };

    public static Option<string?> Service() => new("--service") { Description = "service name to resolve through the farm's DNS (a bare name is completed with the zone)" };

    public static Option<string?> Dns() => new("--dns") { Description = "IP:PORT of the DNS server to ask for --service" };

    public static Option<string?> User() => new("--user") { Description = "user name, if the server requires credentials" };

    public static Option<string?> Password() => new("--password") { Description = "password (or STREAMFARM_PASSWORD)" };

    public static Option<string?> Token() => new("--token") { Description = "bearer token (or STREAMFARM_TOKEN)" };

    public static Option<bool> Verbose() => new("--verbose", "-v") { Description = "print each connection step on standard error" };
}
