using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm drain [--http HOST:PORT] [--spread S] [--admin-token T] [--wait]</c>: puts a
/// server in lame-duck mode (POST /admin/drain: from loopback, or with the administrative token when
/// the server has <c>http.adminTokenHash</c>): it refuses new clients and moves its clients to other
/// servers over the spread. Without <c>--http</c>, the server is the one this environment configures
/// (its <c>listen</c> and <c>httpPort</c> from <c>STREAMFARM_CONFIG</c> and the <c>STREAMFARM_*</c>
/// variables, as <c>streamfarm node</c> reads them): what a container's <c>preStop</c> hook needs,
/// whose command sees the container's environment but cannot expand it. <c>--wait</c> returns once
/// the spread has passed, so the hook holds the stop until every client was asked to move.
/// </summary>
internal static class DrainCommand
{
    public static Command Create()
    {
        var http = new Option<string?>("--http") { Description = "HOST:PORT of the server's HTTP side (port 7480 by default); default: the server this environment configures (listen and httpPort from $STREAMFARM_CONFIG and $STREAMFARM_LISTEN, $STREAMFARM_HTTPPORT)" };
        var spread = new Option<int>("--spread") { Description = "seconds over which its clients are moved", DefaultValueFactory = _ => 10 };
        var token = new Option<string?>("--admin-token") { Description = "the server's administrative token (http.adminTokenHash), sent as Authorization: Bearer; default: $STREAMFARM_ADMIN_TOKEN" };
        var wait = new Option<bool>("--wait") { Description = "return only when the spread has passed and every client was asked to move (for a preStop hook)" };
        var command = new Command("drain", "Drain a server: refuse new clients and move connected ones elsewhere, spread over time") { http, spread, token, wait };
        command.SetAction(async (p, cancel) =>
        {
            var target = p.GetValue(http) ?? ThisEnvironmentsServer()
                ?? throw new CliError("give --http HOST:PORT (no STREAMFARM_LISTEN, nor listen in $STREAMFARM_CONFIG, names a server here)", ExitCodes.Usage);
            if (!HostPort.TryParse(target, 7480, out var endpoint))
            {
                throw new CliError($"--http '{target}' is not HOST:PORT", ExitCodes.Usage);
            }

            if (p.GetValue(spread) is < 0 or > 3600)
            {
                throw new CliError("--spread is 0 to 3600 seconds", ExitCodes.Usage);
            }

            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            if ((p.GetValue(token) ?? Environment.GetEnvironmentVariable("STREAMFARM_ADMIN_TOKEN")) is { Length: > 0 } admin)
            {
                client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", admin);
            }

            try
            {
                using var response = await client.PostAsync(
                    new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{endpoint}/admin/drain?spreadSeconds={p.GetValue(spread)}")), null, cancel);
                var text = await response.Content.ReadAsStringAsync(cancel);
                if (!response.IsSuccessStatusCode)
                {
                    throw new CliError($"{endpoint} refused: {(int)response.StatusCode} {text.Trim()}");
                }

                Console.Out.Write(text);
                if (p.GetValue(wait))
                {
                    await Task.Delay(TimeSpan.FromSeconds(p.GetValue(spread)), cancel);
                    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"drained: every client was asked to move within {p.GetValue(spread)} s"));
                }

                return ExitCodes.Success;
            }
            catch (HttpRequestException e)
            {
                throw new CliError($"cannot reach {endpoint}: {e.Message}");
            }
        });
        return command;
    }

    /// <summary>
    /// <c>listen:httpPort</c> of the server that <c>streamfarm node</c> would run here: the config file
    /// of <c>STREAMFARM_CONFIG</c>, then the <c>STREAMFARM_*</c> variables; null when neither names a listen address.
    /// </summary>
    private static string? ThisEnvironmentsServer()
    {
        var builder = new ConfigurationBuilder();
        if (Environment.GetEnvironmentVariable("STREAMFARM_CONFIG") is { Length: > 0 } file && File.Exists(file))
        {
            builder.AddJsonFile(Path.GetFullPath(file), optional: true);
        }

        var config = builder.AddEnvironmentVariables("STREAMFARM_").Build();
        return config["listen"] is { Length: > 0 } listen
            ? $"{(listen.Contains(':', StringComparison.Ordinal) ? $"[{listen}]" : listen)}:{config["httpPort"] ?? "7480"}"
            : null;
    }
}
