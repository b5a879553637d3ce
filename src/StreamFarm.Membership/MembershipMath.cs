namespace StreamFarm.Membership;

/// <summary>The protocol's arithmetic as pure functions, tested with tables.</summary>
public static class MembershipMath
{
    /// <summary>Minimum suspicion time: mult × max(1, log10(n)) × probe interval.</summary>
    public static TimeSpan SuspicionTimeout(int mult, int members, TimeSpan interval)
    {
        var scale = Math.Max(1.0, Math.Log10(Math.Max(1, members)));
        return TimeSpan.FromMilliseconds(mult * scale * interval.TotalMilliseconds);
    }

    /// <summary>Times each broadcast is transmitted: mult × ceil(log10(n + 1)).</summary>
    public static int RetransmitLimit(int mult, int members) =>
        mult * (int)Math.Ceiling(Math.Log10(members + 1));

    /// <summary>
    /// Lifeguard's suspicion timeout after <paramref name="confirmations"/> independent suspicions:
    /// from <paramref name="max"/> down to <paramref name="min"/> logarithmically in k.
    /// </summary>
    public static TimeSpan RemainingSuspicion(int confirmations, int k, TimeSpan min, TimeSpan max)
    {
        var fraction = Math.Log(confirmations + 1.0) / Math.Log(k + 1.0);
        var ms = max.TotalMilliseconds - ((max.TotalMilliseconds - min.TotalMilliseconds) * fraction);
        return TimeSpan.FromMilliseconds(Math.Max(min.TotalMilliseconds, Math.Floor(ms)));
    }

    /// <summary>A timeout scaled by the local health score (0 = healthy).</summary>
    public static TimeSpan ScaleByAwareness(TimeSpan timeout, int score) => timeout * (score + 1);
}
