using StreamFarm.Protocol;

namespace StreamFarm.Membership;

/// <summary>
/// One member of the farm: SWIM failure detection with Lifeguard's refinements (indirect probes,
/// suspicion that shortens with independent confirmations, local health awareness), gossip of
/// changes with bounded retransmission, and periodic full-state exchange over the stream.
/// All state changes run under one lock on timer and transport callbacks, with time and chance
/// injected, so the same code runs against real sockets and against a seeded in-memory network.
/// Partial files: <c>.Probe.cs</c> (failure detection), <c>.Handlers.cs</c> (incoming messages).
/// </summary>
public sealed partial class MembershipNode : IDisposable
{
    private readonly Lock _lock = new();
    private readonly MembershipOptions _options;
    private readonly IMembershipTransport _transport;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly PacketSealer? _sealer;
    private readonly PacketSealer? _streamSealer;
    private readonly IReadOnlyList<string> _seeds;
    private readonly Dictionary<string, MemberEntry> _members = new(StringComparer.Ordinal);
    private readonly BroadcastQueue _broadcasts = new();
    private readonly Awareness _awareness;
    private readonly List<ITimer> _timers = [];
    private OnDemandTimer? _gossipTimer;
    private OnDemandTimer? _reapTimer;
    private OnDemandTimer? _joinTimer;
    private OnDemandTimer? _reconnectTimer;
    private MemberInfo _self;
    private FarmSnapshot _snapshot = FarmSnapshot.Empty;
    private bool _joined;
    private bool _stopped;

    public MembershipNode(MemberInfo self, MembershipOptions options, IMembershipTransport transport, TimeProvider time, Random random, Keyring? keyring, IEnumerable<string>? seeds = null)
    {
        options.Validate();
        _options = options;
        _transport = transport;
        _time = time;
        _random = random;
        _self = self with { Gossip = transport.LocalAddress, Liveness = Liveness.Alive };
        _sealer = keyring is null ? null : new PacketSealer(keyring, options.FarmName, time);

        // Streams get their own sealer (own boot id, so their own replay window at receivers): a
        // push-pull delayed behind many datagrams must not look like a replay.
        _streamSealer = keyring is null ? null : new PacketSealer(keyring, options.FarmName, time);
        _seeds = [.. (seeds ?? []).Where(s => s != transport.LocalAddress)];
        _awareness = new Awareness(options.AwarenessMaxMultiplier);
        _members[_self.Id] = new MemberEntry(_self, time.GetTimestamp());
        transport.Attach(OnPacket, OnStream);
    }

    /// <summary>The current table: immutable and versioned.</summary>
    public FarmSnapshot Snapshot => Volatile.Read(ref _snapshot);

    /// <summary>Raised under the node's lock with (previous, current) on every change; handlers must be quick.</summary>
    public event Action<FarmSnapshot, FarmSnapshot>? Changed;

    /// <summary>
    /// This member heard that the farm declared it dead (it refutes at once): whatever the farm
    /// gave it may have been given to others meanwhile. Raised under the membership's lock: handlers
    /// must be quick and must not call back.
    /// </summary>
    public event Action? DeclaredDead;

    public MembershipStats Stats { get; } = new();

    public string Id => _self.Id;

    public MemberInfo Self
    {
        get
        {
            lock (_lock)
            {
                return _self;
            }
        }
    }

    /// <summary>Whether a seed (or anyone) has answered: this member is part of a farm.</summary>
    public bool Joined
    {
        get
        {
            lock (_lock)
            {
                return _joined || _seeds.Count == 0;
            }
        }
    }

    public long DroppedPackets => (_sealer?.DroppedTotal ?? 0) + (_streamSealer?.DroppedTotal ?? 0) + Stats.Malformed;

    /// <summary>
    /// Packets and stream messages dropped for <paramref name="reason"/>: by the seal (key, age,
    /// replay), or, <see cref="DropReason.Malformed"/>, opened but not decoded (garbage under the
    /// farm's key, or a member whose build encodes messages another way: see docs/operations.md,
    /// "Upgrading a farm").
    /// </summary>
    public long Dropped(DropReason reason) =>
        (_sealer?.Dropped(reason) ?? 0) + (_streamSealer?.Dropped(reason) ?? 0) + (reason == DropReason.Malformed ? Stats.Malformed : 0);

    /// <summary>Every member this node knows, with its liveness.</summary>
    public IReadOnlyList<MemberInfo> Members
    {
        get
        {
            lock (_lock)
            {
                return [.. _members.Values.Select(e => e.Info)];
            }
        }
    }

    /// <summary>Starts the timers and joins through the seeds (retrying until one answers).</summary>
    public void Start()
    {
        lock (_lock)
        {
            // Gossip, reap and join run only while they have work (a broadcast queued, a dead member
            // to forget, no farm to be part of): a member at rest wakes for its probe and little else.
            // When they run, they tick at the same moments as if they always ran (see OnDemandTimer).
            Every(_options.ProbeInterval, ProbeTick);
            _gossipTimer = Idle(_options.GossipInterval, GossipTick);
            Every(_options.PushPullInterval, PushPullTick);
            _reapTimer = Idle(TimeSpan.FromMilliseconds(Math.Max(50, _options.ProbeInterval.TotalMilliseconds)), ReapTick);
            if (_seeds.Count > 0)
            {
                _joinTimer = Idle(_options.JoinRetryInterval, JoinTick);
                JoinTick();
            }

            _reconnectTimer = Idle(_options.ReconnectInterval, ReconnectTick);
            Publish();
            ArmGossip();
        }
    }

    /// <summary>
    /// Changes this member's own record (users, state, group...). The change gets a new incarnation
    /// and is gossiped; callers coalesce (the server calls this at most once per status interval).
    /// </summary>
    public void UpdateSelf(Func<MemberInfo, MemberInfo> change)
    {
        lock (_lock)
        {
            if (_members[_self.Id].Info.Liveness == Liveness.Left)
            {
                return; // after Leave() nothing may make this member look alive again
            }

            var next = change(_self) with { Id = _self.Id, Gossip = _self.Gossip, Liveness = Liveness.Alive, Incarnation = _self.Incarnation + 1 };
            if (next == _self with { Incarnation = _self.Incarnation + 1 })
            {
                return; // nothing changed
            }

            SetSelf(next);
        }
    }

    /// <summary>Announces a graceful departure; the farm drops this member promptly.</summary>
    public void Leave()
    {
        lock (_lock)
        {
            _self = _self with { State = "leaving", Incarnation = _self.Incarnation + 1 };
            _members[_self.Id] = new MemberEntry(_self with { Liveness = Liveness.Left }, _time.GetTimestamp());
            Broadcast(_self.Id, new Dead(_self.Id, _self.Incarnation, _self.Id, Left: true));
            Publish();

            // Tell every member at once, once each: a departure happens once, and left to gossip
            // alone (each broadcast is sent a few times to members picked at random) one member
            // in a small farm could miss it and keep the leaver as alive until its suspicion ran out.
            var departure = new Dead(_self.Id, _self.Incarnation, _self.Id, Left: true);
            foreach (var e in _members.Values.Where(e => e.Info.Id != _self.Id && e.Info.Liveness is Liveness.Alive or Liveness.Suspect).ToList())
            {
                Send(e.Info.Gossip, departure);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            foreach (var t in _timers)
            {
                t.Dispose();
            }

            _timers.Clear();
            foreach (var e in _members.Values)
            {
                e.Suspicion?.Dispose();
            }
        }
    }

    private void SetSelf(MemberInfo next)
    {
        _self = next;
        _members[_self.Id] = new MemberEntry(_self, _time.GetTimestamp());
        Broadcast(_self.Id, new Alive(_self));
        Publish();
    }

    private void Every(TimeSpan period, Action tick)
    {
        // Random phase so members do not act in lock-step.
        var phase = TimeSpan.FromMilliseconds(_random.NextDouble() * period.TotalMilliseconds);
        _timers.Add(_time.CreateTimer(_ => Locked(tick), null, phase, period));
    }

    /// <summary>A periodic timer that starts disarmed, with a random phase as <see cref="Every"/> (see <see cref="OnDemandTimer"/>).</summary>
    private OnDemandTimer Idle(TimeSpan period, Action tick)
    {
        var phase = TimeSpan.FromMilliseconds(_random.NextDouble() * period.TotalMilliseconds);
        var timer = _time.CreateTimer(_ => Locked(tick), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timers.Add(timer);
        return new OnDemandTimer(timer, _time, _time.GetTimestamp(), phase, period);
    }

    private void Arm(OnDemandTimer? timer)
    {
        if (timer is { Armed: false } && !_stopped)
        {
            timer.Arm();
        }
    }

    private void ArmGossip()
    {
        if (_broadcasts.Count > 0)
        {
            Arm(_gossipTimer);
        }
    }

    /// <summary>
    /// Arms or disarms the timers that have work only in some states: forgetting dead and left
    /// members, and joining (no seed has answered, or this member finds itself alone). Called on
    /// every change of the table (from <see cref="Publish"/>); each tick disarms its own timer once
    /// it has nothing left to do.
    /// </summary>
    private void MaintainTimers()
    {
        if (_members.Values.Any(e => e.Info.Liveness is Liveness.Dead or Liveness.Left && e.Info.Id != _self.Id))
        {
            Arm(_reapTimer);
        }

        if (NeedsJoin)
        {
            Arm(_joinTimer);
        }

        if (_members.Values.Any(e => e.Info.Liveness == Liveness.Dead && e.Info.Id != _self.Id))
        {
            Arm(_reconnectTimer);
        }
    }

    private bool NeedsJoin => _seeds.Count > 0 && !(_joined && LiveCount > 1);

    private void After(TimeSpan due, Action action) =>
        _timers.Add(_time.CreateTimer(_ => Locked(action), null, due, Timeout.InfiniteTimeSpan));

    private void Locked(Action action)
    {
        lock (_lock)
        {
            if (!_stopped)
            {
                action();
            }
        }
    }

    private int LiveCount => _members.Values.Count(e => e.Info.Liveness is Liveness.Alive or Liveness.Suspect);

    private void Broadcast(string memberId, Message message)
    {
        _broadcasts.Enqueue(memberId, MessageCodec.Encode(message));
        ArmGossip();
    }

    /// <summary>Sends one datagram: the message plus as many broadcasts as fit.</summary>
    private void Send(string to, Message? message, Message? second = null)
    {
        var first = message is null ? [] : MessageCodec.Encode(message);
        if (second is not null)
        {
            first = [.. first, .. MessageCodec.Encode(second)];
        }

        var budget = _options.MaxPacketBytes - PacketSealer.Overhead - first.Length;
        var extra = _broadcasts.Take(budget, MembershipMath.RetransmitLimit(_options.RetransmitMult, LiveCount));
        if (first.Length == 0 && extra.Count == 0)
        {
            return;
        }

        var payload = new byte[first.Length + extra.Sum(e => e.Length)];
        first.CopyTo(payload, 0);
        var p = first.Length;
        foreach (var e in extra)
        {
            e.CopyTo(payload, p);
            p += e.Length;
        }

        var packet = _sealer?.Seal(payload) ?? payload;
        Stats.Sent(packet.Length);
        _transport.SendPacket(to, packet);
    }

    private void SendState(string to, bool join, bool reply) => _transport.SendStream(to, SealState(join, reply));

    /// <summary>This member's state as a sealed stream message; the receiver is asked to reply on the same connection.</summary>
    private byte[] SealState(bool join, bool reply)
    {
        var message = MessageCodec.EncodeStream(new PushPull(join, reply, _self.Id, _self.Gossip, [.. _members.Values.Select(e => e.Info)], InlineReply: !reply));
        var sealedMessage = _streamSealer?.Seal(message) ?? message;
        Stats.StreamSent(sealedMessage.Length);
        return sealedMessage;
    }

    private void GossipTick()
    {
        if (_broadcasts.Count == 0)
        {
            _gossipTimer?.Disarm(); // re-armed by the next broadcast
            return;
        }

        // Live members, and the recently dead, who should hear that they were declared dead.
        var candidates = _members.Values.Where(e => e.Info.Id != _self.Id && e.Info.Liveness != Liveness.Left).Select(e => e.Info.Gossip).ToList();
        for (var i = 0; i < _options.GossipNodes && candidates.Count > 0; i++)
        {
            var k = _random.Next(candidates.Count);
            Send(candidates[k], null);
            candidates.RemoveAt(k);
        }
    }

    private void PushPullTick()
    {
        // With a live member: members believed dead are the reconnect tick's (ReconnectTick).
        var candidates = _members.Values.Where(e => e.Info.Id != _self.Id && e.Info.Liveness == Liveness.Alive).ToList();
        if (candidates.Count > 0)
        {
            SendState(candidates[_random.Next(candidates.Count)].Info.Gossip, join: false, reply: false);
        }

        // And with a seed that is not among the live members: after a partition each side forgets
        // the other's members (dead retention), and two sides that are not alone would never look
        // for each other again (serf's reconnect does the same with failed members). A seed that is
        // really gone costs one message per interval.
        var missing = _seeds.Where(seed => !_members.Values.Any(e => e.Info.Gossip == seed && e.Info.Liveness is Liveness.Alive or Liveness.Suspect)).ToList();
        if (missing.Count > 0 && _joined)
        {
            SendState(missing[_random.Next(missing.Count)], join: true, reply: false);
        }
    }

    /// <summary>Joins through the seeds until one answers, and again whenever this member finds itself alone.</summary>
    private void JoinTick()
    {
        if (!NeedsJoin)
        {
            _joinTimer?.Disarm(); // re-armed when this member finds itself alone (MaintainTimers)
            return;
        }

        Arm(_joinTimer);

        foreach (var seed in _seeds)
        {
            SendState(seed, join: true, reply: false);
        }
    }

    /// <summary>Forgets dead and left members after the retention time.</summary>
    private void ReapTick()
    {
        var changed = false;
        foreach (var e in _members.Values.ToList())
        {
            if (e.Info.Id != _self.Id && e.Info.Liveness is Liveness.Dead or Liveness.Left && _time.GetElapsedTime(e.Since) > Retention(e.Info))
            {
                _members.Remove(e.Info.Id);
                changed = true;
            }
        }

        if (changed)
        {
            Publish();
        }

        if (!_members.Values.Any(e => e.Info.Liveness is Liveness.Dead or Liveness.Left && e.Info.Id != _self.Id))
        {
            _reapTimer?.Disarm(); // re-armed by the next death or departure (MaintainTimers)
        }
    }

    // A member that left on purpose is gone promptly; a dead one stays visible a while (operators
    // want to see it, and a late packet must not resurrect it at an old incarnation).
    private TimeSpan Retention(MemberInfo m) =>
        m.Liveness == Liveness.Left ? TimeSpan.FromTicks(Math.Min(_options.DeadRetention.Ticks, (_options.ProbeInterval * 2).Ticks)) : _options.DeadRetention;

    /// <summary>Recomputes the farm table and raises <see cref="Changed"/> if it differs.</summary>
    private void Publish()
    {
        MaintainTimers();
        var rows = _members.Values
            .Where(e => !e.Info.Observer)
            .OrderBy(e => e.Info.Id, StringComparer.Ordinal)
            .Select(e => new FarmMember
            {
                Id = e.Info.Id,
                Group = e.Info.Group,
                State = e.Info.Liveness == Liveness.Left ? "leaving" : e.Info.State,
                Liveness = e.Info.Liveness switch { Liveness.Alive => "alive", Liveness.Suspect => "suspect", _ => "dead" },
                Users = e.Info.Users,
                Capacity = e.Info.Capacity,
                Tcp = e.Info.Tcp,
                Ws = e.Info.Ws,
                Http = e.Info.Http,
                External = e.Info.External,
                Tls = e.Info.Tls,
                Wss = e.Info.Wss,
                Route = e.Info.Route,
            })
            .ToList();
        var previous = _snapshot;
        if (previous.Members.SequenceEqual(rows))
        {
            return;
        }

        var next = new FarmSnapshot(previous.Version + 1, rows);
        Volatile.Write(ref _snapshot, next);
        Changed?.Invoke(previous, next);
    }

    /// <summary>
    /// A periodic timer that runs only while armed: a member at rest does not wake for work it does
    /// not have (each wake-up of an idle process costs far more than the check itself). Armed, it
    /// ticks on the grid it would have ticked on had it run all along (created at
    /// <c>origin</c>, first due after <c>phase</c>, then every <c>period</c>), so the protocol acts
    /// at the same moments as with an always-running timer whose empty ticks did nothing. Used under
    /// the node's lock; a tick already queued when it is disarmed still runs, so ticks must be
    /// harmless when there is nothing to do.
    /// </summary>
    private sealed class OnDemandTimer(ITimer timer, TimeProvider time, long origin, TimeSpan phase, TimeSpan period)
    {
        public bool Armed { get; private set; }

        public void Arm()
        {
            // The next point of the grid strictly after now (a due time of zero could fire the tick
            // inside this call, under the caller's feet).
            var elapsed = time.GetElapsedTime(origin);
            var k = elapsed < phase ? 0 : ((elapsed - phase).Ticks / period.Ticks) + 1;
            var due = phase + TimeSpan.FromTicks(k * period.Ticks) - elapsed;
            if (due <= TimeSpan.Zero)
            {
                due += period;
            }

            Armed = true;
            timer.Change(due, period);
        }

        public void Disarm()
        {
            if (Armed)
            {
                Armed = false;
                timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private sealed class MemberEntry(MemberInfo info, long since)
    {
        public MemberInfo Info { get; } = info;

        /// <summary>Timestamp of the last liveness change.</summary>
        public long Since { get; } = since;

        public Suspicion? Suspicion { get; set; }
    }
}
