using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using StreamFarm.Server;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm node</c>: runs one server. Settings come from the config file, then STREAMFARM_*
/// environment variables, then options, each overriding the one before.
/// </summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var id = new Option<string?>("--id") { Description = "stable unique server id" };
        var listen = new Option<string?>("--listen") { Description = "IP address to listen on (every server of a one-machine farm has its own 127.x address)" };
        var group = new Option<string?>("--group") { Description = "the server's group (for example a region)" };
        var capacity = new Option<int?>("--capacity") { Description = "most users (and connections) this server takes" };
        var groupOnly = new Option<bool?>("--group-only") { Description = "serve clients of this server's group only (others get ERR WRONG_GROUP)" };
        var tcpPort = new Option<int?>("--tcp-port") { Description = "RTTP over TCP port (default 7400)" };
        var httpPort = new Option<int?>("--http-port") { Description = "HTTP port: status, /farm, /healthz, /metrics, WebSocket /rttp (default 7480)" };
        var seeds = new Option<string?>("--seeds") { Description = "IP[:PORT] or HOST[:PORT],... of farm members to join (gossip port 7401 by default; a name stands for every address it resolves to; needs --gossip-key)" };
        var gossipKey = new Option<string?>("--gossip-key") { Description = "the farm's shared key, base64 (streamfarm keygen); enables membership" };
        var gossipPort = new Option<int?>("--gossip-port") { Description = "membership UDP and TCP port (default 7401)" };
        var routePort = new Option<int?>("--route-port") { Description = "TCP port for routes from the other servers of the farm (default 7402)" };
        var farmName = new Option<string?>("--farm-name") { Description = "the farm's name (default streamfarm)" };
        var preset = new Option<string?>("--preset") { Description = "membership timing: lan (default) or local (one machine, faster)" };
        var dns = new Option<string?>("--dns") { Description = "IP:PORT to answer the farm's DNS zone on (53 in production)" };
        var dnsMethod = new Option<string?>("--dns-method") { Description = "load balancing of the service name: RoundRobin (default), Random, FewestUsers, Weighted, Group" };
        var dnsAnswers = new Option<int?>("--dns-answers") { Description = "addresses per DNS answer (default 1)" };
        var zone = new Option<string?>("--zone") { Description = "the farm's DNS zone (default farm.test)" };
        var service = new Option<string?>("--service") { Description = "the common service name (default stream)" };
        var external = new Option<string?>("--external") { Description = "HOST:PORT at which clients outside the farm's network reach this server's RTTP port" };
        var config = new Option<string?>("--config") { Description = "JSON config file (see docs/operations.md)" };
        var tlsCert = new Option<string?>("--tls-cert") { Description = "PEM certificate (then its chain): turns on RTTP over TLS (port 7443) and HTTPS/WSS (port 7481); reloaded when the file changes" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key of --tls-cert" };
        var tlsCa = new Option<string?>("--tls-ca") { Description = "PEM of the farm's CA: routes between servers use mutual TLS and accept only certificates it signed (every server needs it)" };
        var tlsPort = new Option<int?>("--tls-port") { Description = "RTTP over TLS port (default 7443)" };
        var httpsPort = new Option<int?>("--https-port") { Description = "HTTPS port: the HTTP pages and WebSocket RTTP over TLS (default 7481)" };
        var tlsOnly = new Option<bool?>("--tls-only") { Description = "no plain ports: RTTP over TCP (7400) and HTTP/WebSocket (7480) stay closed; clients use TLS, WSS and HTTPS only (needs --tls-cert and --tls-key)" };
        var tlsName = new Option<string?>("--tls-name") { Description = "the name on the certificate, used in the farm table's TLS addresses (default: the listen address)" };
        var logLevel = new Option<LogLevel?>("--log-level") { Description = "Trace, Debug, Information (default), Warning, Error" };
        var command = new Command("node", "Run a StreamFarm server") { id, listen, group, groupOnly, capacity, tcpPort, httpPort, seeds, gossipKey, gossipPort, routePort, farmName, preset, dns, dnsMethod, dnsAnswers, zone, service, external, tlsCert, tlsKey, tlsCa, tlsPort, httpsPort, tlsOnly, tlsName, config, logLevel };
        command.SetAction(async (p, cancel) =>
        {
            var overrides = new Dictionary<string, string?>();
            void Set<T>(Option<T> o, string key)
            {
                var v = p.GetValue(o);
                if (v is not null)
                {
                    overrides[key] = Convert.ToString(v, CultureInfo.InvariantCulture);
                }
            }

            Set(id, "id");
            Set(listen, "listen");
            Set(group, "group");
            Set(capacity, "capacity");
            Set(groupOnly, "groupOnly");
            Set(tcpPort, "tcpPort");
            Set(httpPort, "httpPort");
            Set(gossipPort, "farm:gossipPort");
            Set(routePort, "farm:routePort");
            Set(dns, "dnsListen");
            Set(external, "externalAddress");
            Set(zone, "dns:zone");
            Set(service, "dns:service");
            Set(dnsMethod, "dns:method");
            Set(dnsAnswers, "dns:answerCount");
            Set(farmName, "farm:name");
            Set(preset, "farm:preset");
            Set(tlsCert, "tls:certFile");
            Set(tlsKey, "tls:keyFile");
            Set(tlsCa, "tls:caFile");
            Set(tlsPort, "tls:port");
            Set(httpsPort, "tls:httpsPort");
            Set(tlsOnly, "tls:only");
            Set(tlsName, "tlsName");
            var seedList = List(p.GetValue(seeds) ?? Environment.GetEnvironmentVariable("STREAMFARM_SEEDS"));
            var keyList = List(p.GetValue(gossipKey) ?? Environment.GetEnvironmentVariable("STREAMFARM_GOSSIP_KEY"));

            // Lists given as an option or variable replace the file's list whole (binding would
            // merge them element by element).
            static List<string>? List(string? value) =>
                value?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

            var options = LoadOptions(p.GetValue(config) ?? Environment.GetEnvironmentVariable("STREAMFARM_CONFIG"), overrides, o =>
            {
                o.Farm.Seeds = seedList ?? o.Farm.Seeds;
                o.Farm.GossipKeys = keyList ?? o.Farm.GossipKeys;
            });

            return await RunAsync(options, p.GetValue(logLevel) ?? LogLevel.Information, cancel);
        });
        return command;
    }

    public static ServerOptions LoadOptions(string? configFile, IDictionary<string, string?> overrides, Action<ServerOptions>? replace = null)
    {
        var builder = new ConfigurationBuilder();
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
            {
                throw new CliError($"config file '{configFile}' does not exist", ExitCodes.Usage);
            }

            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        }

        builder.AddEnvironmentVariables("STREAMFARM_");
        builder.AddInMemoryCollection(overrides);
        var options = new ServerOptions();
        try
        {
            builder.Build().Bind(options);
            replace?.Invoke(options);
            options.Validate();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new CliError($"bad configuration: {e.Message}", ExitCodes.Usage);
        }

        return options;
    }

    public static async Task<int> RunAsync(ServerOptions options, LogLevel level, CancellationToken cancel)
    {
        StreamFarmNode node;
        try
        {
            // The node owns the log and flushes it when it is disposed, after its last lines.
            node = await StreamFarmNode.StartAsync(options, Hosting.ConsoleLogging.Create(level), ownsLogging: true, cancel: cancel);
        }
        catch (InvalidDataException e)
        {
            throw new CliError(e.Message, ExitCodes.Usage);
        }
        catch (IOException e)
        {
            throw new CliError($"cannot listen on {options.Listen} ({(options.Tls.Only ? "TLS only" : $"tcp {options.TcpPort}, http {options.HttpPort}")}{(options.Farm.Enabled && options.Farm.Routes ? $", routes {options.Farm.RoutePort}" : "")}): {e.Message}");
        }

        Console.Out.WriteLine($"streamfarm node {options.Id} (group {options.Group}, capacity {options.Capacity}) listening:");
        if (node.HasPlainPorts)
        {
            Console.Out.WriteLine($"  RTTP/TCP   {node.Server.Addresses.Tcp}");
            Console.Out.WriteLine($"  WebSocket  {node.Server.Addresses.Ws}");
            Console.Out.WriteLine($"  HTTP       {node.Server.Addresses.Http}  (status page, /farm, /healthz, /metrics)");
        }
        else
        {
            Console.Out.WriteLine("  RTTP/TCP   off (TLS only)");
            Console.Out.WriteLine("  HTTP       off (TLS only: the status page, /farm, /healthz and /metrics are on HTTPS)");
        }

        if (node.Server.TlsAddresses.Tls.Length > 0)
        {
            Console.Out.WriteLine($"  RTTP/TLS   {node.Server.TlsAddresses.Tls}");
            Console.Out.WriteLine($"  HTTPS      https://{node.Server.TlsAddresses.Wss["wss://".Length..^"/rttp".Length]}  (and {node.Server.TlsAddresses.Wss})");
        }

        Console.Out.WriteLine(node.GossipAddress is { } gossip
            ? $"  Gossip     {gossip}  (farm '{options.Farm.Name}', seeds: {(options.Farm.SeedAddresses.Count == 0 ? "none" : string.Join(' ', options.Farm.SeedAddresses))})"
            : "  Gossip     off (no gossip key: a farm of one)");
        if (node.Server.RouteAddress.Length > 0)
        {
            Console.Out.WriteLine($"  Routes     {node.Server.RouteAddress}  (from the other servers of the farm)");
        }

        if (node.Dns is not null)
        {
            Console.Out.WriteLine($"  DNS        {node.Dns.EndPoint}  ({options.Dns.Service}.{options.Dns.Zone}, {options.Dns.Method})");
        }
        await WaitForStopSignalAsync(cancel);
        Console.Out.WriteLine($"streamfarm node {options.Id}: stopping (telling {node.Server.Connections} client(s) why)");
        await node.DisposeAsync();
        Console.Out.WriteLine($"streamfarm node {options.Id}: stopped");
        return ExitCodes.Success;
    }

    /// <summary>Completes on SIGTERM, SIGINT (Ctrl-C) or cancellation, keeping the process alive for a graceful stop.</summary>
    public static async Task WaitForStopSignalAsync(CancellationToken cancel)
    {
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Handler(PosixSignalContext c)
        {
            c.Cancel = true;
            stop.TrySetResult();
        }

        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handler);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Handler);
        using var reg = cancel.Register(() => stop.TrySetResult());
        await stop.Task;
    }
}
