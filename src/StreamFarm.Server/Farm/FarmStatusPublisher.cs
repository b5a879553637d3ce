using StreamFarm.Membership;
using StreamFarm.Protocol;

namespace StreamFarm.Server.Farm;

/// <summary>
/// Copies this server's live status (users, state, addresses) into its membership record, which
/// changes the record only when something differs. It runs when the server says its status may have
/// changed (<see cref="RttpServer.StatusMayHaveChanged"/>: a client welcomed or gone, draining,
/// stopping, re-joining), at most once per interval (the gossip interval), so a burst of connects
/// becomes one gossiped change: the coalescing that keeps status real-time without flooding the
/// farm. The server's housekeeping tick also runs it, as a safety net for any change nobody
/// announced. It used to poll the status on a timer at the gossip interval, ten wake-ups a second
/// of an idle server for nothing.
/// </summary>
internal sealed class FarmStatusPublisher : IDisposable
{
    private readonly RttpServer _server;
    private readonly MembershipNode _node;
    private readonly TimeSpan _interval;
    private readonly ITimer _timer;
    private readonly Lock _lock = new();
    private readonly Action _nudge;
    private readonly Action<FarmSnapshot, FarmSnapshot> _onFarmChanged;
    private long _last;
    private bool _armed;
    private volatile bool _joinSeen;

    public FarmStatusPublisher(RttpServer server, MembershipNode node, TimeSpan interval)
    {
        _server = server;
        _node = node;
        _interval = interval;
        _timer = TickThread.For(server.Time).CreateTimer(_ => Due(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _nudge = Nudge;
        server.StatusMayHaveChanged += _nudge;
        server.Housekept += Publish;

        // Until a seed has answered this server shows itself "joining"; the membership does not say
        // when that ends, but the table changes then (the seed's members arrive).
        _onFarmChanged = (_, _) =>
        {
            if (!_joinSeen)
            {
                Nudge();
            }
        };
        node.Changed += _onFarmChanged;
    }

    /// <summary>Publishes soon: now if the last publication is an interval old, else when it is.</summary>
    public void Nudge()
    {
        lock (_lock)
        {
            if (_armed)
            {
                return;
            }

            _armed = true;
            var since = _last == 0 ? _interval : _server.Time.GetElapsedTime(_last);
            _timer.Change(since >= _interval ? TimeSpan.Zero : _interval - since, Timeout.InfiniteTimeSpan);
        }
    }

    public void Publish()
    {
        var me = _server.SelfMember();
        var joined = _node.Joined;
        _joinSeen |= joined;
        var state = _server.IsStopping ? "leaving" : _server.IsDraining ? "draining" : joined && !_server.IsRejoining ? "active" : "joining";
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

    public void Dispose()
    {
        _server.StatusMayHaveChanged -= _nudge;
        _server.Housekept -= Publish;
        _node.Changed -= _onFarmChanged;
        _timer.Dispose();
    }

    private void Due()
    {
        lock (_lock)
        {
            _armed = false;
            _last = _server.Time.GetTimestamp();
        }

        Publish();
    }
}
