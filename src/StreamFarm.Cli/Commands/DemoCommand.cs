using System.CommandLine;
using Microsoft.Extensions.Logging;
using StreamFarm.Cli.Demo;
using StreamFarm.Client;
using StreamFarm.Server;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm demo</c>, the README's run command: a server on 127.0.0.2 with a sample publisher
/// streaming 200 FX and equity prices. (The three-server farm with its DNS system comes with the
/// membership, DNS and client issues; this command grows with them.)
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = "IP address of the demo server", DefaultValueFactory = _ => "127.0.0.2" };
        var subjects = new Option<int>("--subjects") { Description = "number of sample subjects", DefaultValueFactory = _ => 200 };
        var command = new Command("demo", "Run a local demo: a server and a sample publisher; Ctrl-C stops it") { listen, subjects };
        command.SetAction(async (p, cancel) =>
        {
            var options = new ServerOptions { Id = "s1", Listen = p.GetValue(listen)!, Group = "demo" };
            StreamFarmNode node;
            try
            {
                node = await StreamFarmNode.StartAsync(options, l => l.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning), cancel: cancel);
            }
            catch (IOException e)
            {
                throw new CliError($"cannot start the demo server on {options.Listen}: {e.Message} (is another demo running?)");
            }

            await using (node)
            {
                await using var publisher = await RttpConnection.ConnectAsync(options.Listen, node.TcpEndPoint.Port, new RttpConnectionOptions { ClientName = "demo-publisher" }, cancel);
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                var feed = new SamplePublisher(publisher, p.GetValue(subjects), seed: 7).RunAsync(stop.Token);
                var names = SamplePublisher.SubjectNames(p.GetValue(subjects));
                Console.Out.WriteLine($"""
                    StreamFarm demo running: server s1 with {names.Count} live subjects.

                      watch prices:   ./streamfarm sub {names[0]} {names[^1]} --server {node.Server.Addresses.Tcp}
                      as JSON lines:  ./streamfarm sub {names[1]} --server {node.Server.Addresses.Tcp} --json
                      farm table:     ./streamfarm farm --server {node.Server.Addresses.Tcp}
                      status page:    {node.Server.Addresses.Http}/   (also /farm, /metrics, /healthz)
                      WebSocket RTTP: {node.Server.Addresses.Ws}

                    Ctrl-C stops everything.
                    """);
                await NodeCommand.WaitForStopSignalAsync(cancel);
                await stop.CancelAsync();
                try
                {
                    await feed;
                }
                catch (Exception e) when (e is OperationCanceledException or RttpConnectionException or IOException)
                {
                    // stopping
                }

                Console.Out.WriteLine("demo: stopping");
            }

            Console.Out.WriteLine("demo: stopped");
            return ExitCodes.Success;
        });
        return command;
    }
}
