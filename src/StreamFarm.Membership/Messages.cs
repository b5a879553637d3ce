namespace StreamFarm.Membership;

/// <summary>Membership message types on the wire. Values are stable; append only.</summary>
internal enum MessageType : byte
{
    Ping = 1,
    IndirectPing = 2,
    Ack = 3,
    Nack = 4,
    Alive = 5,
    Suspect = 6,
    Dead = 7,
    PushPull = 8,
    PushPullReply = 9,
}

internal abstract record Message;

/// <summary>Direct probe of <see cref="TargetId"/>; answered with <see cref="Ack"/>.</summary>
internal sealed record Ping(uint Seq, string TargetId, string FromId, string FromGossip) : Message;

/// <summary>Asks the receiver to probe <see cref="TargetId"/> for the sender and relay the ack (or a nack).</summary>
internal sealed record IndirectPing(uint Seq, string TargetId, string TargetGossip, string FromId, string FromGossip) : Message;

internal sealed record Ack(uint Seq, string FromId) : Message;

internal sealed record Nack(uint Seq, string FromId) : Message;

/// <summary>A member's whole record at an incarnation: join, status change, refutation.</summary>
internal sealed record Alive(MemberInfo Member) : Message;

internal sealed record Suspect(string Id, ulong Incarnation, string FromId) : Message;

/// <summary>A member is dead (or, with <see cref="Left"/>, left gracefully).</summary>
internal sealed record Dead(string Id, ulong Incarnation, string FromId, bool Left) : Message;

/// <summary>Full state, sent over the reliable stream; <see cref="Reply"/> marks the answer.</summary>
/// <summary>
/// A full-state exchange. <paramref name="InlineReply"/>: the sender reads the reply on the same
/// connection (builds before it ignore the flag and reply on a connection of their own, which is
/// what a sender without it expects).
/// </summary>
internal sealed record PushPull(bool Join, bool Reply, string FromId, string FromGossip, IReadOnlyList<MemberInfo> Members, bool InlineReply = false) : Message;
