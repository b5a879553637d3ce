namespace StreamFarm.Membership;

/// <summary>Incoming datagrams and stream messages, and the SWIM precedence rules.</summary>
public sealed partial class MembershipNode
{
    private void OnPacket(string from, byte[] packet)
    {
        Stats.Received(packet.Length);
        var payload = _sealer is null ? packet : _sealer.Open(packet, _options.MaxPacketBytes + 64);
        if (payload is null)
        {
            return;
        }

        var messages = new List<Message>();
        if (!MessageCodec.TryDecodePacket(payload, messages))
        {
            Stats.CountMalformed();
            return;
        }

        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            foreach (var m in messages)
            {
                Handle(m);
            }
        }
    }

    /// <summary>A full-state exchange arrived; returns the reply to send on its connection, if the sender reads one there.</summary>
    private byte[]? OnStream(string from, byte[] data)
    {
        Stats.Received(data.Length);
        const int maxStream = 16 * 1024 * 1024;
        var payload = _streamSealer is null ? data : _streamSealer.Open(data, maxStream);
        if (payload is null)
        {
            return null;
        }

        if (!MessageCodec.TryDecodeStream(payload, maxStream, out var state))
        {
            Stats.CountMalformed();
            return null;
        }

        lock (_lock)
        {
            if (_stopped)
            {
                return null;
            }

            _joined = true;
            foreach (var m in state!.Members)
            {
                switch (m.Liveness)
                {
                    case Liveness.Alive: ApplyAlive(m); break;
                    case Liveness.Left: ApplyDead(m.Id, m.Incarnation, state.FromId, left: true); break;

                    // Stale state must not kill anyone for good: dead and suspect become suspicions
                    // here, which the member can refute. The member is told at once (with this
                    // member as the accuser), so it refutes, or answers with its newer record,
                    // before the suspicion runs out: after a healed partition, the suspicion's
                    // gossip can miss it, and its refutation's gossip can miss this member.
                    default:
                        if (ApplySuspect(m.Id, m.Incarnation, state.FromId) && _members.TryGetValue(m.Id, out var suspect))
                        {
                            Send(suspect.Info.Gossip, new Suspect(m.Id, m.Incarnation, _self.Id));
                        }

                        break;
                }
            }

            if (state.Reply)
            {
                return null;
            }

            // On the exchange's own connection when the sender reads it there (one connection
            // per exchange instead of two: about half the TCP packets at rest); otherwise on a
            // connection of its own, as builds before the flag expect.
            if (state.InlineReply)
            {
                return SealState(join: false, reply: true);
            }

            SendState(state.FromGossip, join: false, reply: true);
            return null;
        }
    }

    private void Handle(Message message)
    {
        switch (message)
        {
            case Ping p:
                if (p.TargetId == _self.Id)
                {
                    Send(p.FromGossip, new Ack(p.Seq, _self.Id));
                }

                LearnAbout(p.FromId, p.FromGossip);
                break;
            case IndirectPing ip:
                OnIndirectPing(ip);
                LearnAbout(ip.FromId, ip.FromGossip);
                break;
            case Ack a: OnAck(a); break;
            case Nack n: OnNack(n); break;
            case Alive a: ApplyAlive(a.Member); break;
            case Suspect s: ApplySuspect(s.Id, s.Incarnation, s.FromId); break;
            case Dead d: ApplyDead(d.Id, d.Incarnation, d.FromId, d.Left); break;
        }
    }

    /// <summary>
    /// A member we do not know is probing us: the broadcast of its join missed us. Exchange state
    /// with it now rather than at the next periodic exchange.
    /// </summary>
    private void LearnAbout(string id, string gossip)
    {
        if (!_members.ContainsKey(id) && _learning.Add(id))
        {
            SendState(gossip, join: false, reply: false);
            OneShot(_options.ProbeInterval, () => _learning.Remove(id));
        }
    }

    private void ApplyAlive(MemberInfo m)
    {
        if (m.Id == _self.Id)
        {
            if (m.Incarnation > _self.Incarnation)
            {
                Refute(m.Incarnation); // a record of a previous life of ours is newer: supersede it
            }

            return;
        }

        if (_members.TryGetValue(m.Id, out var existing) && m.Incarnation <= existing.Info.Incarnation)
        {
            return;
        }

        existing?.Suspicion?.Dispose();
        var info = m with { Liveness = Liveness.Alive };
        _members[m.Id] = new MemberEntry(info, _time.GetTimestamp());
        Broadcast(m.Id, new Alive(info));
        Publish();
    }

    /// <summary>Applies a suspicion; true if it started one here (not a confirmation, not ignored).</summary>
    private bool ApplySuspect(string id, ulong incarnation, string from)
    {
        if (id == _self.Id)
        {
            if (incarnation >= _self.Incarnation && _self.State != "leaving")
            {
                _awareness.Apply(1); // being suspected hints that we are slow
                Refute(incarnation, from);
            }
            else
            {
                AnswerStale(from);
            }

            return false;
        }

        if (!_members.TryGetValue(id, out var existing) || incarnation < existing.Info.Incarnation || existing.Info.Liveness is Liveness.Dead or Liveness.Left)
        {
            return false;
        }

        if (existing.Info.Liveness == Liveness.Suspect && incarnation == existing.Info.Incarnation)
        {
            if (existing.Suspicion?.Confirm(from) == true)
            {
                Broadcast(id, new Suspect(id, incarnation, from));
            }

            return false;
        }

        existing.Suspicion?.Dispose();
        var entry = new MemberEntry(existing.Info with { Liveness = Liveness.Suspect, Incarnation = incarnation }, _time.GetTimestamp());
        _members[id] = entry;
        StartSuspicion(entry, from);

        // The accuser travels with the suspicion: confirmations count distinct accusers (Lifeguard),
        // and the suspect answers its accusers directly.
        Broadcast(id, new Suspect(id, incarnation, from));
        Publish();
        return true;
    }

    /// <summary>
    /// An accusation of this member at an incarnation it has already superseded: the accuser missed
    /// the refutation (its gossip is spread at random and retired after a few sends). Send it the
    /// current record, without a new incarnation; once it has it, it accuses no more.
    /// </summary>
    private void AnswerStale(string accuser)
    {
        if (accuser != _self.Id && _self.State != "leaving" && _members.TryGetValue(accuser, out var e) && e.Info.Liveness != Liveness.Left)
        {
            Send(e.Info.Gossip, new Alive(_self));
        }
    }

    private void ApplyDead(string id, ulong incarnation, string from, bool left)
    {
        if (id == _self.Id)
        {
            if (!left && incarnation >= _self.Incarnation && _self.State != "leaving")
            {
                DeclaredDead?.Invoke(); // the farm may have given what this member owned to others
                Refute(incarnation, from);
            }
            else if (!left)
            {
                AnswerStale(from);
            }

            return;
        }

        if (!_members.TryGetValue(id, out var existing) || incarnation < existing.Info.Incarnation)
        {
            return;
        }

        var liveness = left ? Liveness.Left : Liveness.Dead;
        if (existing.Info.Liveness == liveness || existing.Info.Liveness == Liveness.Left)
        {
            return;
        }

        existing.Suspicion?.Dispose();
        _members[id] = new MemberEntry(existing.Info with { Liveness = liveness, Incarnation = incarnation }, _time.GetTimestamp());
        Broadcast(id, new Dead(id, incarnation, from, left));
        Publish();
    }

    /// <summary>
    /// Supersedes a suspicion (or a stale record) of ourselves with a higher incarnation: gossiped to
    /// all, and sent straight to the accuser, whose suspicion would otherwise run out first if the
    /// gossip happened to miss it.
    /// </summary>
    private void Refute(ulong incarnation, string? accuser = null)
    {
        SetSelf(_self with { Incarnation = Math.Max(incarnation, _self.Incarnation) + 1 });
        if (accuser is not null && accuser != _self.Id && _members.TryGetValue(accuser, out var e))
        {
            Send(e.Info.Gossip, new Alive(_self));
        }
    }
}
