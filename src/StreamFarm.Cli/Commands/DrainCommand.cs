using System.CommandLine;
using System.Globalization;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm drain --http HOST:PORT [--spread S] [--admin-token T]</c>: puts a server in
/// lame-duck mode (POST /admin/drain: from loopback, or with the administrative token when the
/// server has <c>http.adminTokenHash</c>): it refuses new clients and moves its clients to other
/// servers over the spread.
/// </summary>
internal static class DrainCommand
{
    public static Command Create()
    {
        var http = new Option<string>("--http") { Description = "HOST:PORT of the server's HTTP side (port 7480 by default)", Required = true };
        var spread = new Option<int>("--spread") { Description = "seconds over which its clients are moved", DefaultValueFactory = _ => 10 };
        var token = new Option<string?>("--admin-token") { Description = "the server's administrative token (http.adminTokenHash), sent as Authorization: Bearer; default: $STREAMFARM_ADMIN_TOKEN" };
        var command = new Command("drain", "Drain a server: refuse new clients and move connected ones elsewhere, spread over time") { http, spread, token };
        command.SetAction(async (p, cancel) =>
        {
            if (!HostPort.TryParse(p.GetValue(http), 7480, out var endpoint))
            {
                throw new CliError($"--http '{p.GetValue(http)}' is not HOST:PORT", ExitCodes.Usage);
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
                return ExitCodes.Success;
            }
            catch (HttpRequestException e)
            {
                throw new CliError($"cannot reach {endpoint}: {e.Message}");
            }
        });
        return command;
    }
}
