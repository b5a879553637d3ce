namespace StreamFarm.Membership;

/// <summary>Failure detection: direct probe, indirect probes, suspicion.</summary>
public sealed partial class MembershipNode
{
    private readonly Dictionary<uint, PendingProbe> _probes = [];
    private readonly Dictionary<uint, (string Requester, uint Seq)> _relays = [];
    private readonly HashSet<ITimer> _oneShots = [];
    private readonly List<string> _probeOrder = [];
    private readonly HashSet<string> _learning = new(StringComparer.Ordinal);
    private int _probeIndex;
    private uint _seq;
    private (uint Seq, string Id)? _reconnect;

    private void ProbeTick()
    {
        var target = NextProbeTarget();
        if (target is null)
        {
            return;
        }

        var probe = new PendingProbe(++_seq, target.Id, target.Gossip, target.Incarnation);
        _probes[probe.Seq] = probe;
        // Lifeguard's buddy system: a suspect hears of its suspicion from whoever probes it, rather
        // than only if the suspicion's gossip happens to reach it, and refutes (or, if it already
        // has, answers with its newer record).
        var buddy = target.Liveness == Liveness.Suspect ? new Suspect(target.Id, target.Incarnation, _self.Id) : null;
        Send(target.Gossip, new Ping(probe.Seq, target.Id, _self.Id, _self.Gossip), buddy);
        var timeout = _awareness.Scale(_options.ProbeTimeout);
        probe.Indirect = OneShot(timeout, () => IndirectProbe(probe));
        probe.Conclude = OneShot(_awareness.Scale(_options.ProbeInterval), () => ConcludeProbe(probe));
    }

    /// <summary>Round-robin over a shuffled list of live members, reshuffled each pass (SWIM's bounded detection time).</summary>
    private MemberInfo? NextProbeTarget()
    {
        for (var attempts = 0; attempts < 2; attempts++)
        {
            while (_probeIndex < _probeOrder.Count)
            {
                var id = _probeOrder[_probeIndex++];
                if (id != _self.Id && _members.TryGetValue(id, out var e) && e.Info.Liveness is Liveness.Alive or Liveness.Suspect)
                {
                    return e.Info;
                }
            }

            _probeOrder.Clear();
            _probeOrder.AddRange(_members.Keys.Where(k => k != _self.Id));
            for (var i = _probeOrder.Count - 1; i > 0; i--)
            {
                var j = _random.Next(i + 1);
                (_probeOrder[i], _probeOrder[j]) = (_probeOrder[j], _probeOrder[i]);
            }

            _probeIndex = 0;
        }

        return null;
    }

    /// <summary>
    /// Pings one member believed dead (not one that left), at random, each reconnect interval while
    /// there are any; an ack from it starts a full-state exchange (<see cref="OnAck"/>), in which
    /// each side learns that the other declared it dead, refutes, and both are alive again everywhere.
    /// A datagram rather than the exchange itself: a member that is really gone, or behind a partition
    /// that drops packets, then costs one datagram per interval, not a connection attempt that holds a
    /// stream sender for its timeout. Without this a healed partition waited for the periodic
    /// exchange to pick a dead member (once in four, every 15 s then): half a minute and more, seen in the
    /// five-host fault test.
    /// </summary>
    private void ReconnectTick()
    {
        var dead = _members.Values.Where(e => e.Info.Id != _self.Id && e.Info.Liveness == Liveness.Dead).ToList();
        if (dead.Count == 0)
        {
            _reconnect = null;
            _reconnectTimer?.Disarm(); // re-armed by the next death (MaintainTimers)
            return;
        }

        var target = dead[_random.Next(dead.Count)].Info;
        _reconnect = (++_seq, target.Id);
        Send(target.Gossip, new Ping(_reconnect.Value.Seq, target.Id, _self.Id, _self.Gossip));
    }

    private void IndirectProbe(PendingProbe probe)
    {
        if (probe.Acked)
        {
            return;
        }

        var helpers = _members.Values
            .Where(e => e.Info.Id != _self.Id && e.Info.Id != probe.TargetId && e.Info.Liveness == Liveness.Alive)
            .Select(e => e.Info.Gossip)
            .ToList();
        for (var i = 0; i < _options.IndirectChecks && helpers.Count > 0; i++)
        {
            var k = _random.Next(helpers.Count);
            Send(helpers[k], new IndirectPing(probe.Seq, probe.TargetId, probe.TargetGossip, _self.Id, _self.Gossip));
            helpers.RemoveAt(k);
            probe.ExpectedNacks++;
        }
    }

    private void ConcludeProbe(PendingProbe probe)
    {
        _probes.Remove(probe.Seq);
        if (probe.Acked)
        {
            return;
        }

        // Lifeguard: if helpers did not even nack, the problem may be ours: grow our own timeouts.
        _awareness.Apply(probe.Nacks < probe.ExpectedNacks ? 1 : 0);

        // A failed probe of a member already suspected (by another) is this member's independent
        // confirmation (Lifeguard), which shortens the suspicion everywhere it is gossiped; without
        // it, confirmations of a crash came mostly from the periodic state exchanges.
        if (_members.TryGetValue(probe.TargetId, out var e) && e.Info.Liveness is Liveness.Alive or Liveness.Suspect && e.Info.Incarnation == probe.Incarnation)
        {
            ApplySuspect(probe.TargetId, e.Info.Incarnation, _self.Id);
        }
    }

    private void OnAck(Ack ack)
    {
        if (_probes.TryGetValue(ack.Seq, out var probe))
        {
            if (!probe.Acked)
            {
                probe.Acked = true;
                _awareness.Apply(-1);

                // Nothing left to do for this probe: its timers need not fire (at rest, that is two
                // wake-ups a second saved of the three a probe costs).
                _probes.Remove(probe.Seq);
                CancelOneShot(probe.Indirect);
                CancelOneShot(probe.Conclude);
            }
        }
        else if (_relays.Remove(ack.Seq, out var relay))
        {
            Send(relay.Requester, new Ack(relay.Seq, _self.Id));
        }
        else if (_reconnect is { } r && r.Seq == ack.Seq && r.Id == ack.FromId)
        {
            _reconnect = null;
            if (_members.TryGetValue(r.Id, out var e) && e.Info.Liveness == Liveness.Dead)
            {
                SendState(e.Info.Gossip, join: false, reply: false);
            }
        }
    }

    private void OnNack(Nack nack)
    {
        if (_probes.TryGetValue(nack.Seq, out var probe))
        {
            probe.Nacks++;
        }
    }

    private void OnIndirectPing(IndirectPing request)
    {
        var seq = ++_seq;
        _relays[seq] = (request.FromGossip, request.Seq);
        Send(request.TargetGossip, new Ping(seq, request.TargetId, _self.Id, _self.Gossip));
        OneShot(_options.ProbeTimeout, () =>
        {
            if (_relays.Remove(seq, out var relay))
            {
                Send(relay.Requester, new Nack(relay.Seq, _self.Id));
            }
        });
    }

    private void StartSuspicion(MemberEntry entry, string from)
    {
        var n = LiveCount;
        var min = MembershipMath.SuspicionTimeout(_options.SuspicionMult, n, _options.ProbeInterval);
        var max = min * _options.SuspicionMaxTimeoutMult;
        var k = n - 2 >= _options.SuspicionConfirmations ? _options.SuspicionConfirmations : 0;
        var id = entry.Info.Id;
        var incarnation = entry.Info.Incarnation;
        entry.Suspicion = new Suspicion(_time, k, min, max, () => Locked(() => SuspicionExpired(id, incarnation)));
        if (from != _self.Id)
        {
            entry.Suspicion.Confirm(from);
        }
    }

    private void SuspicionExpired(string id, ulong incarnation)
    {
        if (_members.TryGetValue(id, out var e) && e.Info.Liveness == Liveness.Suspect && e.Info.Incarnation == incarnation)
        {
            ApplyDead(id, incarnation, _self.Id, left: false);
        }
    }

    private void CancelOneShot(ITimer? timer)
    {
        if (timer is not null && _oneShots.Remove(timer))
        {
            timer.Dispose();
        }
    }

    private ITimer OneShot(TimeSpan due, Action action)
    {
        ITimer? timer = null;
        timer = _time.CreateTimer(_ => Locked(() =>
        {
            _oneShots.Remove(timer!);
            timer!.Dispose();
            action();
        }), null, due, Timeout.InfiniteTimeSpan);
        _oneShots.Add(timer);
        return timer;
    }

    private sealed class PendingProbe(uint seq, string targetId, string targetGossip, ulong incarnation)
    {
        public uint Seq { get; } = seq;

        public string TargetId { get; } = targetId;

        public string TargetGossip { get; } = targetGossip;

        public ulong Incarnation { get; } = incarnation;

        public bool Acked { get; set; }

        public int ExpectedNacks { get; set; }

        public int Nacks { get; set; }

        public ITimer? Indirect { get; set; }

        public ITimer? Conclude { get; set; }
    }
}
