using System.CommandLine;
using System.Globalization;
using System.Net;
using StreamFarm.Cli.Hosting;
using StreamFarm.Dns;
using StreamFarm.Membership;
using StreamFarm.Server;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm dns</c>: the farm's DNS system as its own process. It joins the farm as an
/// observer member (it sees the table, serves no RTTP clients, is not in the FARM table) and answers
/// the zone from the live table.
/// </summary>
internal static class DnsCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = "IP:PORT to answer DNS on (53 in production)", Required = true };
        var seeds = new Option<string>("--seeds") { Description = "IP[:PORT] or HOST[:PORT],... of farm members (gossip port 7401 by default; a name stands for every address it resolves to)", Required = true };
        var gossipKey = new Option<string?>("--gossip-key") { Description = "the farm's shared key, base64 (or STREAMFARM_GOSSIP_KEY)" };
        var gossipPort = new Option<int>("--gossip-port") { Description = "this observer's gossip port (default 7401)", DefaultValueFactory = _ => 7401 };
        var farmName = new Option<string>("--farm-name") { Description = "the farm's name", DefaultValueFactory = _ => "streamfarm" };
        var preset = new Option<string>("--preset") { Description = "membership timing: lan or local", DefaultValueFactory = _ => "lan" };
        var id = new Option<string?>("--id") { Description = "this observer's member id (default dns-<ip>)" };
        var zone = new Option<string>("--zone") { Description = "the farm's zone", DefaultValueFactory = _ => "farm.test" };
        var service = new Option<string>("--service") { Description = "the service label", DefaultValueFactory = _ => "stream" };
        var method = new Option<BalanceMethod>("--dns-method") { Description = "RoundRobin, Random, FewestUsers, Weighted, Group", DefaultValueFactory = _ => BalanceMethod.RoundRobin };
        var answers = new Option<int>("--dns-answers") { Description = "addresses per answer", DefaultValueFactory = _ => 1 };
        var ttl = new Option<int>("--ttl") { Description = "TTL of answers in seconds", DefaultValueFactory = _ => 5 };
        var command = new Command("dns", "Run the farm's DNS system as its own process (an observer of the farm)")
        {
            listen, seeds, gossipKey, gossipPort, farmName, preset, id, zone, service, method, answers, ttl,
        };
        command.SetAction(async (p, cancel) =>
        {
            if (!IPEndPoint.TryParse(p.GetValue(listen)!, out var dnsEndPoint))
            {
                throw new CliError($"--listen '{p.GetValue(listen)}' is not IP:PORT", ExitCodes.Usage);
            }

            var key = p.GetValue(gossipKey) ?? Environment.GetEnvironmentVariable("STREAMFARM_GOSSIP_KEY")
                ?? throw new CliError("the DNS system joins the farm: give the farm's --gossip-key", ExitCodes.Usage);
            var options = new DnsOptions
            {
                Zone = p.GetValue(zone)!,
                Service = p.GetValue(service)!,
                Method = p.GetValue(method),
                AnswerCount = p.GetValue(answers),
                Ttl = TimeSpan.FromSeconds(p.GetValue(ttl)),
                NameServerAddress = dnsEndPoint.Address.ToString(),
            };
            MembershipOptions membershipOptions;
            Keyring keyring;
            try
            {
                options.Validate();
                keyring = Keyring.FromBase64([key]);
                membershipOptions = (p.GetValue(preset) == "local" ? MembershipOptions.Local : MembershipOptions.Lan) with { FarmName = p.GetValue(farmName)! };
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

            await using (var observer = await DnsObserver.StartAsync(dnsEndPoint, p.GetValue(gossipPort), options, membershipOptions, keyring, seedList, p.GetValue(id)))
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"streamfarm dns {observer.Id} answering {options.Service}.{options.Zone} on {observer.EndPoint} (udp+tcp, {options.Method}, ttl {options.Ttl.TotalSeconds} s); observing the farm through {string.Join(' ', seedList)}"));
                await NodeCommand.WaitForStopSignalAsync(cancel);
            }

            Console.Out.WriteLine("streamfarm dns: stopped");
            return ExitCodes.Success;
        });
        return command;
    }
}
