using StreamFarm.Protocol;

namespace StreamFarm.Server.Tests.Kit;

/// <summary>
/// In-process servers with membership and routes on <c>subnet.2</c>, <c>.3</c>, ... (real sockets,
/// preset <c>local</c>), converged before they are handed out.
/// </summary>
internal sealed class RouteFarm : IAsyncDisposable
{
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(7, 32).Select(i => (byte)i).ToArray());
    private readonly List<StreamFarmNode> _nodes = [];

    public List<StreamFarmNode> Nodes => _nodes;

    public IReadOnlyList<string> Ids => [.. _nodes.Select(n => n.Server.Options.Id)];

    /// <summary>Starts <paramref name="servers"/> servers; <paramref name="configure"/> runs on each one's options last.</summary>
    public static async Task<RouteFarm> StartAsync(string subnet, int servers = 3, Action<ServerOptions>? configure = null)
    {
        var farm = new RouteFarm();
        try
        {
            foreach (var n in Enumerable.Range(2, servers))
            {
                farm._nodes.Add(await TestNode.StartAsync(o =>
                {
                    o.Id = $"s{n}";
                    o.Listen = $"{subnet}.{n}";
                    o.Farm.GossipKeys = [Key];
                    o.Farm.GossipPort = 0;
                    o.Farm.Preset = "local";
                    o.Farm.Name = "route-tests";
                    o.Farm.Seeds = n == 2 ? [] : [farm._nodes[0].GossipAddress!];
                    configure?.Invoke(o);
                }));
            }

            await Eventually.TrueAsync(
                () => farm._nodes.All(o => farm._nodes.All(n => o.Server.Farm.Current.Members.Any(m => m.Id == n.Server.Options.Id && m.State == "active" && m.Liveness == "alive"))),
                "the farm converges");
            return farm;
        }
        catch
        {
            await farm.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until every server has a route up to each other one.</summary>
    public Task RoutesUpAsync() => Eventually.TrueAsync(
        () => _nodes.All(n => n.Server.Routes!.RoutesUp == _nodes.Count - 1 && n.Server.Routes.Ownership.Owners.Count == _nodes.Count),
        "every route is up");

    /// <summary>A subject name (prefix + number) that this farm gives to <paramref name="owner"/>.</summary>
    /// <summary>A subject <paramref name="owner"/> owns (and, if given, whose successor, the server that keeps its standby copy, is <paramref name="successor"/>).</summary>
    public string SubjectOwnedBy(string owner, string prefix, string? successor = null)
    {
        var ownership = new Ownership(Ids);
        return Enumerable.Range(0, 1000).Select(i => $"{prefix}{i}").First(s => ownership.OwnerOf(s) == owner && (successor is null || ownership.SuccessorOf(s) == successor));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }
}
