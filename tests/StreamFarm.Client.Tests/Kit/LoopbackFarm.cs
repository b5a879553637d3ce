using System.Net;
using Microsoft.Extensions.Logging;
using StreamFarm.Server;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>
/// Three in-process servers with membership, each on its own loopback address of one /24
/// (<c>{subnet}.2</c> .. <c>.4</c>, ids s2..s4) and the same RTTP port, as a farm's servers are: a
/// client finds the first server as DNS address + <see cref="Port"/>. s2 also answers the farm's DNS
/// zone (<c>stream.farm.test</c>) on <c>{subnet}.1</c>, port chosen by the system. Each test class
/// uses its own subnet, so classes running in parallel do not meet.
/// </summary>
internal sealed class LoopbackFarm : IAsyncDisposable
{
    public const int Port = 17400;
    public const string ServiceName = "stream.farm.test";
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(40, 32).Select(i => (byte)i).ToArray());
    private readonly List<StreamFarmNode> _nodes = [];

    private LoopbackFarm(string subnet)
    {
        Subnet = subnet;
    }

    public string Subnet { get; }

    public SessionLog Sessions { get; } = new();

    public IReadOnlyList<StreamFarmNode> Nodes => _nodes;

    public string[] Ids => [.. _nodes.Select(n => n.Server.Options.Id)];

    /// <summary>Where the farm's DNS zone is answered.</summary>
    public IPEndPoint DnsEndPoint => _nodes[0].Dns!.EndPoint;

    public StreamFarmNode this[string id] => _nodes.Single(n => n.Server.Options.Id == id);

    public IPAddress AddressOf(string id) => IPAddress.Parse($"{Subnet}.{id[1..]}");

    /// <param name="subnet">The first three octets, like <c>127.0.5</c>.</param>
    /// <param name="configure">Adjusts each server's options (the id says which).</param>
    public static async Task<LoopbackFarm> StartAsync(string subnet, Action<ServerOptions>? configure = null)
    {
        var farm = new LoopbackFarm(subnet);
        try
        {
            foreach (var n in new[] { 2, 3, 4 })
            {
                var options = new ServerOptions
                {
                    Id = $"s{n}",
                    Listen = $"{subnet}.{n}",
                    TcpPort = Port,
                    HttpPort = 0,
                    Capacity = 100,
                    ShutdownTimeout = TimeSpan.FromSeconds(3),
                    DnsListen = n == 2 ? $"{subnet}.1:0" : null,
                };
                options.Farm.GossipKeys = [Key];
                options.Farm.GossipPort = 0;
                options.Farm.Preset = "local";
                options.Farm.Name = "client-tests";
                options.Farm.Seeds = n == 2 ? [] : [farm._nodes[0].GossipAddress!];
                configure?.Invoke(options);
                var id = options.Id;
                farm._nodes.Add(await StreamFarmNode.StartAsync(options, l => l.AddProvider(farm.Sessions.For(id, subnet + ".")).SetMinimumLevel(LogLevel.Debug)));
            }

            await farm.ConvergedAsync();
            return farm;
        }
        catch
        {
            await farm.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every running server sees every running server active and alive.</summary>
    public Task ConvergedAsync() => Eventually.TrueAsync(
        () => _nodes.Where(n => !n.Server.IsStopping).All(observer => _nodes.Where(n => !n.Server.IsStopping).All(n =>
            observer.Server.Farm.Current.Members.Any(m => m.Id == n.Server.Options.Id && m.State == "active" && m.Liveness == "alive" && m.Tcp == $"{AddressOf(m.Id)}:{Port}"))),
        () => "the farm converges: " + string.Join(" | ", _nodes.Select(n => $"{n.Server.Options.Id} sees " + string.Join(", ", n.Server.Farm.Current.Members.Select(m => $"{m.Id} {m.State}/{m.Liveness} {m.Users}")))));

    /// <summary>Waits until every running server's table shows these user counts.</summary>
    public Task UsersSeenEverywhereAsync(IReadOnlyDictionary<string, int> users) => Eventually.TrueAsync(
        () => _nodes.All(observer => users.All(u => observer.Server.Farm.Current.Members.Any(m => m.Id == u.Key && m.Users == u.Value))),
        () => "every table shows the users: " + string.Join(" | ", _nodes.Select(n => $"{n.Server.Options.Id} sees " + string.Join(", ", n.Server.Farm.Current.Members.Select(m => $"{m.Id} {m.Users}")))));

    public async ValueTask DisposeAsync()
    {
        List<Exception> errors = [];
        foreach (var node in _nodes)
        {
            try
            {
                await node.DisposeAsync();
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        }

        _nodes.Clear();
        if (errors.Count > 0)
        {
            throw new AggregateException("stopping the farm", errors);
        }
    }
}
