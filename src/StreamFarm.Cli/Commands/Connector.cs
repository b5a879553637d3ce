using System.CommandLine;
using StreamFarm.Client;

namespace StreamFarm.Cli.Commands;

/// <summary>Turns the connection options of sub, pub and farm into a connected <see cref="RttpConnection"/>.</summary>
internal sealed class Connector
{
    private readonly Option<string?> _server = CommonOptions.Server();
    private readonly Option<string?> _service = CommonOptions.Service();
    private readonly Option<string?> _dns = CommonOptions.Dns();
    private readonly Option<string?> _user = CommonOptions.User();
    private readonly Option<string?> _password = CommonOptions.Password();
    private readonly Option<string?> _token = CommonOptions.Token();
    private readonly Option<bool> _verbose = CommonOptions.Verbose();

    public void AddTo(Command command)
    {
        command.Options.Add(_server);
        command.Options.Add(_service);
        command.Options.Add(_dns);
        command.Options.Add(_user);
        command.Options.Add(_password);
        command.Options.Add(_token);
        command.Options.Add(_verbose);
    }

    public bool Verbose(ParseResult p) => p.GetValue(_verbose);

    public async Task<RttpConnection> ConnectAsync(ParseResult p, string clientName, CancellationToken cancel)
    {
        var server = p.GetValue(_server) ?? Environment.GetEnvironmentVariable("STREAMFARM_SERVER");
        if (server is null)
        {
            if (p.GetValue(_service) is not null)
            {
                throw new CliError("--service needs the farm's DNS system and two-step connect, which this build does not have yet; use --server HOST:PORT", ExitCodes.Usage);
            }

            throw new CliError("say which server: --server HOST:PORT", ExitCodes.Usage);
        }

        if (!HostPort.TryParse(server, 7400, out var endpoint))
        {
            throw new CliError($"--server '{server}' is not HOST:PORT", ExitCodes.Usage);
        }

        var options = new RttpConnectionOptions
        {
            ClientName = clientName,
            User = p.GetValue(_user) ?? Environment.GetEnvironmentVariable("STREAMFARM_USER"),
            Password = p.GetValue(_password) ?? Environment.GetEnvironmentVariable("STREAMFARM_PASSWORD"),
            Token = p.GetValue(_token) ?? Environment.GetEnvironmentVariable("STREAMFARM_TOKEN"),
        };
        Step(p, $"connecting to {endpoint}");
        try
        {
            var connection = await RttpConnection.ConnectAsync(endpoint.Host, endpoint.Port, options, cancel);
            Step(p, $"connected to server {connection.ServerId} at {endpoint}; farm table v{connection.Farm.Version} with {connection.Farm.Members.Count} server(s)");
            return connection;
        }
        catch (RttpConnectionException e)
        {
            throw new CliError(e.Message);
        }
    }

    public void Step(ParseResult p, string text)
    {
        if (Verbose(p))
        {
            Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss.fff}] {text}");
        }
    }
}
