using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using StreamFarm.Cli.Demo;
using StreamFarm.Cli.Hosting;
using StreamFarm.Client;
using StreamFarm.Dns;
using StreamFarm.Membership;
using StreamFarm.Server;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm demo</c>, the README's run command: a farm of three servers on 127.0.0.2, .3 and .4
/// (same ports), its DNS system on 127.0.0.1:5300, and a sample publisher streaming 200 FX and equity
/// prices, published at the first server; routes between the servers carry them to subscribers on
/// every server.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var servers = new Option<int>("--servers") { Description = "number of servers (127.0.0.2 upwards)", DefaultValueFactory = _ => 3 };
        var subjects = new Option<int>("--subjects") { Description = "number of sample subjects", DefaultValueFactory = _ => 200 };
        var dns = new Option<string>("--dns") { Description = "where the farm's DNS system answers", DefaultValueFactory = _ => "127.0.0.1:5300" };
        var command = new Command("demo", "Run a local farm: three servers, their DNS system and a sample publisher; Ctrl-C stops it all") { servers, subjects, dns };
        command.SetAction(async (p, cancel) =>
        {
            var count = p.GetValue(servers);
            if (count is < 1 or > 50 || !IPEndPoint.TryParse(p.GetValue(dns)!, out var dnsEndPoint))
            {
                throw new CliError("--servers is 1 to 50 and --dns is IP:PORT", ExitCodes.Usage);
            }

            var key = Keyring.NewKeyBase64(); // a fresh farm key per demo run
            var seeds = new List<string> { "127.0.0.2:7401" };
            if (count > 1)
            {
                seeds.Add("127.0.0.3:7401");
            }

            var nodes = new List<StreamFarmNode>();
            DnsObserver? observer = null;
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var options = new ServerOptions { Id = $"s{i + 1}", Listen = $"127.0.0.{i + 2}", Group = i % 2 == 0 ? "east" : "west" };
                    options.Farm.GossipKeys = [key];
                    options.Farm.Seeds = seeds;
                    options.Farm.Preset = "local";
                    try
                    {
                        nodes.Add(await StreamFarmNode.StartAsync(options, l => l.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning), cancel: cancel));
                    }
                    catch (IOException e)
                    {
                        throw new CliError($"cannot start demo server {options.Id} on {options.Listen}: {e.Message} (is another demo running?)");
                    }
                }

                var dnsOptions = new DnsOptions();
                observer = await DnsObserver.StartAsync(dnsEndPoint, 7401, dnsOptions, MembershipOptions.Local, Keyring.FromBase64([key]), seeds, "dns");
                var names = SamplePublisher.SubjectNames(p.GetValue(subjects));
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                var publishers = new List<RttpConnection>();
                foreach (var node in nodes)
                {
                    publishers.Add(await RttpConnection.ConnectAsync(node.Server.Options.Listen, node.TcpEndPoint.Port, new RttpConnectionOptions { ClientName = "demo-publisher" }, cancel));
                }

                var feed = new SamplePublisher(publishers, names.Count, seed: 7).RunAsync(stop.Token);
                Console.Out.WriteLine($"""
                    StreamFarm demo: {count} servers, their DNS system, {names.Count} live subjects
                    (published at {nodes[0].Server.Options.Id}; routes carry them to every server).

                      servers:        {string.Join("  ", nodes.Select(n => $"{n.Server.Options.Id}={n.Server.Addresses.Tcp} ({n.Server.Options.Group})"))}
                      DNS:            {observer.EndPoint}  (dig @{observer.EndPoint.Address} -p {observer.EndPoint.Port} stream.farm.test)

                      watch prices through the farm (each step shown):
                        ./streamfarm sub {names[0]} {names[^1]} --service stream --dns {observer.EndPoint} -v
                      the farm table, live:
                        ./streamfarm farm --service stream --dns {observer.EndPoint}
                      live dashboard: {nodes[0].Server.Addresses.Http}/   (every server serves one: {string.Join("  ", nodes.Skip(1).Select(n => n.Server.Addresses.Http + "/"))})
                      price grid:     {nodes[0].Server.Addresses.Http}/grid   ({names.Count} ticking subjects through the farm, each connection step shown)

                    Stop a server (see the client move):  kill the demo, or use 'streamfarm node' farms (docs/operations.md).
                    Ctrl-C stops everything.
                    """);
                await NodeCommand.WaitForStopSignalAsync(cancel);
                Console.Out.WriteLine("demo: stopping");
                await stop.CancelAsync();
                try
                {
                    await feed;
                }
                catch (Exception e) when (e is OperationCanceledException or RttpConnectionException or IOException)
                {
                    // stopping
                }

                foreach (var publisher in publishers)
                {
                    await publisher.DisposeAsync();
                }
            }
            finally
            {
                if (observer is not null)
                {
                    await observer.DisposeAsync();
                }

                foreach (var node in nodes)
                {
                    await node.DisposeAsync();
                }
            }

            Console.Out.WriteLine("demo: stopped");
            return ExitCodes.Success;
        });
        return command;
    }
}
