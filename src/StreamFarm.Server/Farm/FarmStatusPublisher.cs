using StreamFarm.Membership;

namespace StreamFarm.Server.Farm;

/// <summary>
/// Copies this server's live status (users, state, addresses) into its membership record. It runs
/// on a timer at the gossip interval and changes the record only when something differs, so a burst
/// of connects becomes one gossiped change: the coalescing that keeps status real-time without
/// flooding the farm.
/// </summary>
internal sealed class FarmStatusPublisher : IDisposable
{
    private readonly RttpServer _server;
    private readonly MembershipNode _node;
    private readonly ITimer _timer;

    public FarmStatusPublisher(RttpServer server, MembershipNode node, TimeSpan interval)
    {
        _server = server;
        _node = node;
        _timer = server.Time.CreateTimer(_ => Publish(), null, TimeSpan.Zero, interval);
    }

    public void Publish()
    {
        var me = _server.SelfMember();
        var state = _server.IsStopping ? "leaving" : _server.IsDraining ? "draining" : _node.Joined && !_server.IsRejoining ? "active" : "joining";
        _node.UpdateSelf(m => m with
        {
            Users = me.Users,
            State = state,
            Group = me.Group,
            Capacity = me.Capacity,
            Tcp = me.Tcp,
            Ws = me.Ws,
            Http = me.Http,
            External = me.External,
            Tls = me.Tls,
            Wss = me.Wss,
            Route = me.Route,
        });
    }

    public void Dispose() => _timer.Dispose();
}
