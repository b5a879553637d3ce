using StreamFarm.Protocol;
using StreamFarm.Server.Connections;

namespace StreamFarm.Server.Subjects;

/// <summary>
/// The routes to other servers as a record sees them. Records call these under their own lock, so
/// that what one server sends about a subject keeps the subject's order; implementations only
/// queue (they never block and never take a record's lock).
/// </summary>
internal interface IUpstream
{
    /// <summary>
    /// Sends a publication to the subject's owner, stamped with <paramref name="stamp"/>.
    /// <paramref name="hop"/>: routes it already came through. <paramref name="origin"/>: who is told
    /// the outcome (ACK, NACK or ERR). False when it could not be queued (the origin was told).
    /// </summary>
    bool Forward(string owner, RttpFrame frame, ulong stamp, int hop, PubOrigin origin);

    /// <summary>Sends a copy of a record to its new owner (a rendered <c>PUBIMAGE ... @seed=</c> line).</summary>
    void Seed(string owner, byte[] line);

    /// <summary>This server wants the subject's updates from its owner.</summary>
    void Subscribe(string owner, byte[] subjectUtf8);

    /// <summary>This server no longer wants the subject's updates.</summary>
    void Unsubscribe(string owner, byte[] subjectUtf8);

    /// <summary>This server owns the subject: <paramref name="successor"/>, next in line, is asked to keep a standby copy of it (if it can).</summary>
    void Standby(string successor, byte[] subjectUtf8);
}

/// <summary>
/// Who published a publication and wants to hear its outcome: the client session (null when it came
/// over a route or from a seed) and the id it gave with <c>@ack=</c> (null: no acknowledgement asked,
/// only a failure is reported, as <c>ERR UNAVAILABLE</c>).
/// </summary>
internal readonly record struct PubOrigin(ClientSession? Session, byte[]? AckId)
{
    public static PubOrigin None => default;

    /// <summary>
    /// A publication that came over a route from <see cref="Session"/> (the route's session here),
    /// number <see cref="RouteIndex"/> on it, and is passed on to its owner: that route's ACK waits
    /// until the owner acknowledges it (so the sender keeps it until it is really applied). 0: none.
    /// </summary>
    public long RouteIndex { get; init; }
}

/// <summary>What became of a publication at a record.</summary>
internal enum PublishOutcome
{
    /// <summary>The record left the table meanwhile: look it up again.</summary>
    Retired,

    /// <summary>Sequenced into the subject's history here (this server owns it).</summary>
    Applied,

    /// <summary>Every field it carries was already written by a newer publication: nothing changed (it counts as applied).</summary>
    Superseded,

    /// <summary>Passed on to the subject's owner; the outcome comes from there.</summary>
    Forwarded,

    /// <summary>Could not be passed on (the origin was told).</summary>
    Dropped,

    /// <summary>Not applied: the record would outgrow one line (see <see cref="SubjectRecord.MaxFieldsBytes"/>); the origin is told here.</summary>
    TooLarge,
}

/// <summary>Where a seed (a copy of a record sent to its new owner) comes from.</summary>
internal enum SeedKind
{
    /// <summary>A replica's copy whose owner died: the subject is STALE until a publisher publishes.</summary>
    Orphan,

    /// <summary>The live previous owner hands its record over: the subject stays OK.</summary>
    Handover,

    /// <summary>A replica's copy, sent before it subscribes at a new owner: merged, no change of status.</summary>
    Copy,
}
