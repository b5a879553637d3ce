namespace StreamFarm.Client;

/// <summary>Where a reconnection stands, for <see cref="IReconnectPolicy"/>.</summary>
/// <param name="Round">Rounds of rediscovery that failed so far (0 before the first retry).</param>
/// <param name="Elapsed">Time since the connection was lost.</param>
public sealed record RetryContext(int Round, TimeSpan Elapsed);

/// <summary>How long to wait before the next round of discovery; null gives up.</summary>
public interface IReconnectPolicy
{
    /// <summary>The delay before round <see cref="RetryContext.Round"/>, or null to stop trying.</summary>
    TimeSpan? NextDelay(RetryContext context);
}

/// <summary>
/// Capped exponential backoff with full jitter: a random delay between 0 and
/// min(max, initial × 2^round), so that clients that lost the same server do not come back in step.
/// Never gives up unless <paramref name="maxRounds"/> is set.
/// </summary>
public sealed class ExponentialBackoff(TimeSpan initial, TimeSpan max, Random random, int? maxRounds = null) : IReconnectPolicy
{
    /// <summary>100 ms doubling up to 5 s, forever.</summary>
    public static ExponentialBackoff Default(Random random) => new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), random);

    /// <inheritdoc />
    public TimeSpan? NextDelay(RetryContext context)
    {
        if (maxRounds is { } m && context.Round >= m)
        {
            return null;
        }

        var cap = Math.Min(max.TotalMilliseconds, initial.TotalMilliseconds * Math.Pow(2, Math.Min(context.Round, 30)));
        lock (random)
        {
            return TimeSpan.FromMilliseconds(random.NextDouble() * cap);
        }
    }
}
