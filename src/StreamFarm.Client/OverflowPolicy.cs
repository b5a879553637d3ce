namespace StreamFarm.Client;

/// <summary>
/// What a full buffer of received messages does with the next one, when the application reads
/// slower than the server sends. The socket is read on regardless (pings are answered and counted),
/// so a slow application never makes a healthy server look dead.
/// </summary>
public enum OverflowPolicy
{
    /// <summary>
    /// The default, as the server does: an update for a subject that already has a message waiting
    /// is merged into it (the latest value of every field, the latest <c>seq</c>,
    /// <see cref="RttpMessage.Merged"/> counting what it stands for). Nothing is lost but
    /// intermediate values; the buffer holds at most one waiting message per subject beyond its size.
    /// </summary>
    Conflate,

    /// <summary>The oldest waiting image or update is dropped for the new one (sequence numbers then jump).</summary>
    DropOldest,

    /// <summary>
    /// The connection stops reading until the application takes a message: the server conflates,
    /// then closes the connection with <c>SLOW_CONSUMER</c> after its timeout. While waiting for
    /// the application the client does not count unanswered pings against the server.
    /// </summary>
    Wait,
}

/// <summary>A buffer of received messages overflowed (raised once per episode, on the thread pool).</summary>
/// <param name="Policy">What the buffer did.</param>
/// <param name="Capacity">Messages the buffer holds before it overflows.</param>
/// <param name="Conflated">Messages merged into waiting ones so far.</param>
/// <param name="Dropped">Messages dropped so far.</param>
/// <param name="Waits">Times the connection waited for the application so far.</param>
public sealed record OverflowEventArgs(OverflowPolicy Policy, int Capacity, long Conflated, long Dropped, long Waits);
