namespace StreamFarm.Bench;

/// <summary>
/// Memory per subscribed connection, measured one way for every benchmark that reports it
/// (<c>footprint</c>, <c>connections</c>): the server's RSS at rest, a while after it started, then
/// its RSS <see cref="Settle"/> after the last of N connections had its subscription confirmed
/// (RTTP: the subject's IMAGE; NATS: the PONG after SUB); the difference divided by N.
/// </summary>
public sealed class ConnectionMemory(ServerProcess server)
{
    /// <summary>From the last subscription confirmed to the reading: the server's work for them is done, and its keep-alive PINGs have not yet grown the heap much (docs/benchmarks.md, footprint).</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    /// <summary>RSS at rest, KiB (read by <see cref="AtRestAsync"/>).</summary>
    public long RestKiB { get; private set; }

    /// <summary>RSS with the connections, KiB, or null before <see cref="SubscribedAsync"/>.</summary>
    public long? SubscribedKiB { get; private set; }

    /// <summary>Connections counted by <see cref="SubscribedAsync"/>.</summary>
    public int Connections { get; private set; }

    /// <summary>RSS added per subscribed connection, or null before <see cref="SubscribedAsync"/>.</summary>
    public double? KiBPerConnection => SubscribedKiB is { } subscribed ? (subscribed - RestKiB) / (double)Math.Max(1, Connections) : null;

    /// <summary>Leaves the server alone for <paramref name="rest"/>, then reads its RSS at rest.</summary>
    public async Task AtRestAsync(TimeSpan rest, CancellationToken cancel)
    {
        await Task.Delay(rest, cancel);
        RestKiB = server.RssKiB();
    }

    /// <summary>Call once <paramref name="connections"/> connections are subscribed: waits <see cref="Settle"/> and reads the RSS.</summary>
    public async Task SubscribedAsync(int connections, CancellationToken cancel)
    {
        await Task.Delay(Settle, cancel);
        SubscribedKiB = server.RssKiB();
        Connections = connections;
    }
}
