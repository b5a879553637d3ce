using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StreamFarm.Dns.Sync;
using StreamFarm.Membership;
using StreamFarm.Server;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm dns-sync</c>: keeps a zone on an existing authoritative server (Knot, BIND...)
/// current with RFC 2136 updates signed with TSIG. It joins the farm as an observer member (sees the
/// table, is not in it) and writes the service name's A/AAAA RRsets (alive and active servers) and
/// <c>&lt;id&gt;.&lt;zone&gt;</c> for alive servers; see <see cref="DnsSync"/>.
/// </summary>
internal static class DnsSyncCommand
{
    public static Command Create()
    {
        var server = new Option<string>("--server") { Description = "IP:PORT of the authoritative server that accepts updates for the zone", Required = true };
        var zone = new Option<string>("--zone") { Description = "the zone to update, for example farm.test", Required = true };
        var tsig = new Option<string?>("--tsig") { Description = "TSIG key NAME:ALGORITHM:SECRET, e.g. sync-key:hmac-sha256:<base64> (or STREAMFARM_TSIG)" };
        var seeds = new Option<string>("--seeds") { Description = "IP[:PORT] or HOST[:PORT],... of farm members (gossip port 7401 by default; a name stands for every address it resolves to)", Required = true };
        var gossipKey = new Option<string?>("--gossip-key") { Description = "the farm's shared key, base64 (or STREAMFARM_GOSSIP_KEY)" };
        var service = new Option<string>("--service") { Description = "the service label", DefaultValueFactory = _ => "stream" };
        var ttl = new Option<int>("--ttl") { Description = "TTL of the records written, in seconds", DefaultValueFactory = _ => 5 };
        var listen = new Option<string>("--listen") { Description = "IP this observer gossips from (the farm must reach it)", DefaultValueFactory = _ => "127.0.0.1" };
        var gossipPort = new Option<int>("--gossip-port") { Description = "this observer's gossip port (default: any free port)", DefaultValueFactory = _ => 0 };
        var farmName = new Option<string>("--farm-name") { Description = "the farm's name", DefaultValueFactory = _ => "streamfarm" };
        var preset = new Option<string>("--preset") { Description = "membership timing: lan or local", DefaultValueFactory = _ => "lan" };
        var id = new Option<string?>("--id") { Description = "this observer's member id (default dns-sync-<ip>-<port>)" };
        var timeout = new Option<double>("--timeout") { Description = "seconds to wait for the server's answer to an update", DefaultValueFactory = _ => 5 };
        var command = new Command("dns-sync", "Keep a zone on an authoritative server current with signed dynamic updates (RFC 2136, TSIG) as the farm changes")
        {
            server, zone, tsig, seeds, gossipKey, service, ttl, listen, gossipPort, farmName, preset, id, timeout,
        };
        command.SetAction(async (p, cancel) =>
        {
            if (!IPEndPoint.TryParse(p.GetValue(server)!, out var serverEndPoint) || serverEndPoint.Port == 0)
            {
                throw new CliError($"--server '{p.GetValue(server)}' is not IP:PORT", ExitCodes.Usage);
            }

            if (!IPAddress.TryParse(p.GetValue(listen), out var listenAddress))
            {
                throw new CliError($"--listen '{p.GetValue(listen)}' is not an IP address", ExitCodes.Usage);
            }

            var keyText = p.GetValue(tsig) ?? Environment.GetEnvironmentVariable("STREAMFARM_TSIG")
                ?? throw new CliError("updates are signed: give --tsig NAME:ALGORITHM:SECRET (or STREAMFARM_TSIG)", ExitCodes.Usage);
            var farmKey = p.GetValue(gossipKey) ?? Environment.GetEnvironmentVariable("STREAMFARM_GOSSIP_KEY")
                ?? throw new CliError("dns-sync joins the farm: give the farm's --gossip-key", ExitCodes.Usage);
            var seconds = p.GetValue(timeout);
            var options = new DnsSyncOptions { Zone = p.GetValue(zone)!, Service = p.GetValue(service)!, Ttl = TimeSpan.FromSeconds(p.GetValue(ttl)) };
            TsigKey key;
            Keyring keyring;
            MembershipOptions membership;
            try
            {
                options.Validate();
                key = TsigKey.Parse(keyText);
                keyring = Keyring.FromBase64([farmKey]);
                membership = (p.GetValue(preset) == "local" ? MembershipOptions.Local : MembershipOptions.Lan) with { FarmName = p.GetValue(farmName)! };
                if (!double.IsFinite(seconds) || seconds is <= 0 or > 300)
                {
                    throw new ArgumentException("--timeout must be between 0 and 300 seconds");
                }
            }
            catch (ArgumentException e)
            {
                throw new CliError(e.Message, ExitCodes.Usage);
            }

            var seedList = FarmOptions.SeedList([p.GetValue(seeds)!], 7401);
            if (seedList.FirstOrDefault(s => !FarmOptions.IsSeedAddress(s)) is { } badSeed)
            {
                throw new CliError($"seed '{badSeed}' is not IP[:PORT] or HOST[:PORT]", ExitCodes.Usage);
            }

            UdpMembershipTransport transport;
            try
            {
                transport = new UdpMembershipTransport(new IPEndPoint(listenAddress, p.GetValue(gossipPort)));
            }
            catch (SocketException e)
            {
                throw new CliError($"cannot bind the gossip port {listenAddress}:{p.GetValue(gossipPort)}: {e.Message}");
            }

            await using (transport)
            {
                var self = new MemberInfo
                {
                    Id = p.GetValue(id) ?? $"dns-sync-{transport.LocalAddress.Replace(':', '-').Replace("[", "", StringComparison.Ordinal).Replace("]", "", StringComparison.Ordinal)}",
                    Gossip = transport.LocalAddress,
                    Observer = true,
                    State = "active",
                    Incarnation = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                };
                using var node = new MembershipNode(self, membership, transport, TimeProvider.System, new Random(), keyring, seedList);
                using var sync = new DnsSync(options, new ArsoftUpdateClient(serverEndPoint, key, TimeSpan.FromSeconds(seconds)), TimeProvider.System, Console.Out.WriteLine);
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                node.Changed += (_, next) => sync.Notify(next);
                node.Start();
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"streamfarm dns-sync {node.Id}: keeping {options.ServiceName} and <id>.{options.ZoneName} on {serverEndPoint} current (key {key}, ttl {options.Ttl.TotalSeconds} s); observing the farm through {string.Join(' ', seedList)} from {transport.LocalAddress}"));
                var run = RunAsync(node, sync, stop.Token);
                await NodeCommand.WaitForStopSignalAsync(cancel);
                await stop.CancelAsync();
                try
                {
                    await run;
                }
                catch (OperationCanceledException)
                {
                    // stopping
                }

                // The zone keeps the last table written: stopping dns-sync does not empty the service name.
                node.Leave();
                await Task.Delay(membership.GossipInterval * 3, CancellationToken.None);
            }

            Console.Out.WriteLine("streamfarm dns-sync: stopped");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Waits until a seed has handed over the whole table (never writes a half-known farm), then syncs.</summary>
    private static async Task RunAsync(MembershipNode node, DnsSync sync, CancellationToken cancel)
    {
        var waited = TimeSpan.Zero;
        var step = TimeSpan.FromMilliseconds(100);
        while (!node.Joined)
        {
            await Task.Delay(step, cancel);
            waited += step;
            if (waited.Ticks % TimeSpan.FromSeconds(10).Ticks == 0)
            {
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"streamfarm dns-sync: no seed has answered after {waited.TotalSeconds:0} s; still trying"));
            }
        }

        sync.Notify(node.Snapshot);
        await sync.RunAsync(cancel);
    }
}
