using StreamFarm.Protocol;

namespace StreamFarm.Server.Subjects;

/// <summary>
/// The routes to other servers as a record sees them. Records call these under their own lock, so
/// that what one server sends about a subject keeps the subject's order; implementations only
/// queue (they never block and never take a record's lock).
/// </summary>
internal interface IUpstream
{
    /// <summary>Sends a publication to the subject's owner. <paramref name="hop"/>: routes it already came through.</summary>
    void Forward(string owner, RttpFrame frame, int hop);

    /// <summary>Sends a copy of a record to its new owner (a rendered <c>PUBIMAGE ... @seed=</c> line).</summary>
    void Seed(string owner, byte[] line);

    /// <summary>This server wants the subject's updates from its owner.</summary>
    void Subscribe(string owner, byte[] subjectUtf8);

    /// <summary>This server no longer wants the subject's updates.</summary>
    void Unsubscribe(string owner, byte[] subjectUtf8);
}
