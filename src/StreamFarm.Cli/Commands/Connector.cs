using System.CommandLine;
using StreamFarm.Client;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;

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
    private readonly Option<string?> _policy = new("--policy") { Description = "how to choose the server with --service: p2c (default), random, fewest, weighted" };
    private readonly Option<bool> _external = new("--external") { Description = "with --service: connect to the servers' external addresses (outside the farm's network)" };
    private readonly Option<bool> _tls = new("--tls") { Description = "connect over TLS (port 7443 with --server HOST without a port; the farm table's tls addresses with --service)" };
    private readonly Option<string?> _ca = new("--ca") { Description = "PEM of the CA(s) that signed the servers' certificates (default: the system's roots); implies --tls" };
    private readonly Option<string?> _group = new("--group") { Description = "the client's group: preferred with --service (spills over when it has no healthy server), and sent in HELLO (servers with --group-only refuse other groups)" };

    public void AddTo(Command command)
    {
        command.Options.Add(_server);
        command.Options.Add(_service);
        command.Options.Add(_dns);
        command.Options.Add(_user);
        command.Options.Add(_password);
        command.Options.Add(_token);
        command.Options.Add(_verbose);
        command.Options.Add(_policy);
        command.Options.Add(_group);
        command.Options.Add(_external);
        command.Options.Add(_tls);
        command.Options.Add(_ca);
    }

    private bool UsesTls(ParseResult p) => p.GetValue(_tls) || p.GetValue(_ca) is not null;

    public bool Verbose(ParseResult p) => p.GetValue(_verbose);

    /// <summary>True when the command should go through the farm (--service), false for one server (--server).</summary>
    public bool UsesService(ParseResult p) =>
        p.GetValue(_server) is null && (p.GetValue(_service) ?? Environment.GetEnvironmentVariable("STREAMFARM_SERVICE")) is not null;

    /// <summary>
    /// The two-step connect through the service name: DNS, first server, farm table, chosen server.
    /// With -v every step is printed on standard error. <paramref name="beforeStart"/> may open
    /// subscriptions (streams) before the first connect.
    /// </summary>
    public async Task<FarmClient> ConnectFarmAsync(ParseResult p, string clientName, IEnumerable<string> subjects, CancellationToken cancel, Action<FarmClient>? beforeStart = null)
    {
        var service = p.GetValue(_service) ?? Environment.GetEnvironmentVariable("STREAMFARM_SERVICE")!;
        var zone = Environment.GetEnvironmentVariable("STREAMFARM_ZONE") ?? "farm.test";
        var name = service.Contains('.', StringComparison.Ordinal) ? service : $"{service}.{zone}";
        IServiceResolver resolver = new SystemResolver();
        var dns = p.GetValue(_dns) ?? Environment.GetEnvironmentVariable("STREAMFARM_DNS");
        if (dns is not null)
        {
            if (!System.Net.IPEndPoint.TryParse(dns, out var endpoint))
            {
                throw new CliError($"--dns '{dns}' is not IP:PORT", ExitCodes.Usage);
            }

            if (endpoint.Port == 0)
            {
                endpoint.Port = 53;
            }

            resolver = new DnsServerResolver(endpoint);
        }

        var selector = Selectors.Default(Environment.GetEnvironmentVariable("STREAMFARM_GROUP"));
        if (p.GetValue(_policy) is { } policy)
        {
            try
            {
                selector = Selectors.Parse(policy, p.GetValue(_group));
            }
            catch (ArgumentException e)
            {
                throw new CliError(e.Message, ExitCodes.Usage);
            }
        }
        else if (p.GetValue(_group) is { } group)
        {
            selector = Selectors.Default(group);
        }

        var client = new FarmClient(new FarmClientOptions
        {
            ServiceName = name,
            Resolver = resolver,
            Selector = selector,
            Connection = Options(p, clientName),
            UseExternalAddresses = p.GetValue(_external),
            Port = UsesTls(p) ? 7443 : 7400, // the port of the servers DNS names, for the first connection
        });
        if (Verbose(p))
        {
            _ = PrintStepsAsync(client); // ends when the client's step channel completes
        }

        await client.SubscribeAsync(subjects, cancel);
        beforeStart?.Invoke(client);
        using var first = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        first.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            await client.StartAsync(first.Token);
        }
        catch (OperationCanceledException)
        {
            await client.DisposeAsync();
            if (cancel.IsCancellationRequested)
            {
                throw new CliError("interrupted while connecting");
            }

            throw new CliError($"no server of {name} could be reached within 30 s");
        }

        return client;
    }

    private static async Task PrintStepsAsync(FarmClient client)
    {
        await foreach (var s in client.Steps.ReadAllAsync())
        {
            Console.Error.WriteLine($"[{s.At.ToLocalTime():HH:mm:ss.fff}] {s.Kind.ToString().ToLowerInvariant()}: {s.Text}");
        }
    }

    private RttpConnectionOptions Options(ParseResult p, string clientName) => new()
    {
        ClientName = clientName,
        Group = p.GetValue(_group) ?? Environment.GetEnvironmentVariable("STREAMFARM_GROUP"),
        User = p.GetValue(_user) ?? Environment.GetEnvironmentVariable("STREAMFARM_USER"),
        Password = p.GetValue(_password) ?? Environment.GetEnvironmentVariable("STREAMFARM_PASSWORD"),
        Token = p.GetValue(_token) ?? Environment.GetEnvironmentVariable("STREAMFARM_TOKEN"),
        UseTls = UsesTls(p),
        TrustedCertificates = p.GetValue(_ca) is { } ca ? LoadCa(ca) : null,
    };

    private static System.Security.Cryptography.X509Certificates.X509Certificate2Collection LoadCa(string file)
    {
        try
        {
            return StreamFarm.Server.Tls.CertificateStore.LoadAuthority(file);
        }
        catch (InvalidDataException e)
        {
            throw new CliError($"--ca: {e.Message}", ExitCodes.Usage);
        }
    }

    public async Task<RttpConnection> ConnectAsync(ParseResult p, string clientName, CancellationToken cancel)
    {
        var server = p.GetValue(_server) ?? Environment.GetEnvironmentVariable("STREAMFARM_SERVER");
        if (server is null)
        {
            throw new CliError("say which server: --server HOST:PORT, or --service NAME [--dns IP:PORT]", ExitCodes.Usage);
        }

        if (!HostPort.TryParse(server, UsesTls(p) ? 7443 : 7400, out var endpoint))
        {
            throw new CliError($"--server '{server}' is not HOST:PORT", ExitCodes.Usage);
        }

        var options = Options(p, clientName);
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
