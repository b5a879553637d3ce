namespace StreamFarm.Faults.Tests.Checking;

/// <summary>What became of one acknowledged publication (<c>PUB subject @ack=id p1=n</c>).</summary>
public enum PubOutcome
{
    /// <summary>No answer yet, and the connection it was sent on is still open.</summary>
    Pending,

    /// <summary><c>ACK id</c>: the subject's owner applied it.</summary>
    Acked,

    /// <summary><c>NACK id CODE</c>: not applied.</summary>
    Nacked,

    /// <summary>The connection was lost before an answer: it may or may not have been applied.</summary>
    Unknown,
}

/// <summary>
/// One publication as its publisher saw it. <see cref="Value"/> is the publisher's counter for the
/// subject (one counter per publisher and subject, +1 per new publication; a republication after a
/// reconnect sends the latest value again, so values never go down).
/// </summary>
public sealed record PubRecord(
    string Publisher,
    string Field,
    string Subject,
    long Value,
    string AckId,
    string Server,
    int Connection,
    DateTime SentAt,
    PubOutcome Outcome,
    DateTime? AnsweredAt = null,
    string? Answer = null);

/// <summary>
/// One line a subscriber received (IMAGE, UPDATE, STATUS, and the session's other lines), with the
/// time it was read. <see cref="Session"/> numbers the subscriber's connections: each is a session
/// of the same logical subscriber.
/// </summary>
public sealed record SubLine(string Subscriber, int Session, string Server, DateTime At, string Text);

/// <summary>Something a client saw that the protocol does not allow (an answer to no publication, a second answer).</summary>
public sealed record Anomaly(DateTime At, string Who, string Text);

/// <summary>Everything the clients of one scenario saw, for the checker.</summary>
public sealed record History(
    string Scenario,
    int Seed,
    DateTime Start,
    IReadOnlyList<string> Subjects,
    IReadOnlyList<PubRecord> Publications,
    IReadOnlyList<SubLine> Lines,
    IReadOnlyList<Anomaly> Anomalies,
    IReadOnlyList<string> Timeline)
{
    /// <summary>
    /// When each server was killed (kill -9), and which server owned each subject while all were up:
    /// a publication that its owner acknowledged and that the owner took with it when it was
    /// killed before passing it on may be missing (docs/protocol.md 4a: an ACK means the owner
    /// applied it; nothing is replicated before that).
    /// </summary>
    public IReadOnlyList<(string Server, DateTime At)> Kills { get; init; } = [];

    /// <summary>
    /// When the farm was split: from a cut until every server saw every other alive again (measured
    /// after the heal, not the heal itself). Both sides of a partition go on accepting publications
    /// (AP: docs/architecture.md, "What is not promised"): a value acknowledged on one side may be
    /// superseded by a later one of the same publisher before the other side's history shows it.
    /// </summary>
    public IReadOnlyList<(DateTime From, DateTime Until)> Partitions { get; init; } = [];

    /// <summary>The owner of a subject while all servers were up (for <see cref="Kills"/>).</summary>
    public Func<string, string>? OwnerOf { get; init; }

    /// <summary>A history of only these parts (for hand-made histories in tests).</summary>
    public static History Of(IEnumerable<PubRecord> pubs, IEnumerable<SubLine> lines, params string[] subjects) =>
        new("hand-made", 0, DateTime.UnixEpoch, subjects, [.. pubs], [.. lines], [], []);
}
