namespace StreamFarm.Bench;

/// <summary>
/// How a <see cref="FanoutScenario"/> spreads its subscribers, and where a caller can look at the
/// server between its phases (the connections benchmark reads the server's memory there).
/// </summary>
public sealed record FanoutLayout
{
    /// <summary>
    /// Subjects the subscribers are spread over: subscriber i takes subject i mod this, and the
    /// publisher writes rounds of one publication to each subject in turn. With more than one, the
    /// flow window and its batches count rounds, not messages.
    /// </summary>
    public int Subjects { get; init; } = 1;

    /// <summary>Every subject gets a value before anyone subscribes, so an RTTP SUB is answered with its IMAGE (NATS keeps no value: nothing changes there).</summary>
    public bool Retained { get; init; }

    /// <summary>Subscribers connecting and subscribing at the same time.</summary>
    public int ConnectAtOnce { get; init; } = 1;

    /// <summary>Called once the publisher is connected (and the values are in, when <see cref="Retained"/>), before any subscriber connects.</summary>
    public Func<CancellationToken, Task>? PublisherReady { get; init; }

    /// <summary>Called once every subscriber is subscribed, before the publisher starts.</summary>
    public Func<CancellationToken, Task>? Subscribed { get; init; }
}
