namespace StreamFarm.Protocol;

/// <summary>
/// The keep-alive rule both ends of an RTTP connection may follow (docs/protocol.md, "Keep-alive").
/// A server PINGs a connection it has sent nothing to for its ping interval, so that the other end
/// hears from it; the other end only needs to be heard within the server's idle timeout. A plain
/// (untokened) PING therefore need not be answered while the connection has written anything
/// lately: answering every one made an idle connection a PING and a PONG a second, each a wake-up
/// of both processes. A tokened PING is always answered (its sender waits for that answer).
/// </summary>
public static class RttpKeepAlive
{
    /// <summary>
    /// How long a connection must have written nothing before it answers a plain keep-alive
    /// <c>PING</c>, given the pinging side's ping interval and idle timeout (from its WELCOME): a
    /// quarter of the idle timeout, and never so long that a skipped PING plus the next interval
    /// could reach it, so the pinging side hears from this end at least every
    /// <c>min(idle / 4, idle - 2 × ping) + ping</c>. Zero (answer every PING) when either is not
    /// known or there is no room.
    /// </summary>
    public static TimeSpan QuietPongAfter(TimeSpan ping, TimeSpan idle)
    {
        if (ping <= TimeSpan.Zero || idle <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }

        var after = TimeSpan.FromTicks(Math.Min(idle.Ticks / 4, idle.Ticks - 2 * ping.Ticks));
        return after > TimeSpan.Zero ? after : TimeSpan.Zero;
    }

    /// <summary><see cref="QuietPongAfter(TimeSpan, TimeSpan)"/> for the <c>ping=</c> and <c>idle=</c> of a WELCOME (zero when either is missing).</summary>
    public static TimeSpan QuietPongAfter(RttpFrame welcome) =>
        welcome.TryGetField("ping"u8, out var ping) && long.TryParse(ping, out var pingMs)
        && welcome.TryGetField("idle"u8, out var idle) && long.TryParse(idle, out var idleMs)
            ? QuietPongAfter(TimeSpan.FromMilliseconds(pingMs), TimeSpan.FromMilliseconds(idleMs))
            : TimeSpan.Zero;
}
