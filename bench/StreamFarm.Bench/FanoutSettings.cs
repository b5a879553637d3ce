namespace StreamFarm.Bench;

/// <summary>What a fan-out run does: which scenarios, for how long, with which flow-control window.</summary>
public sealed record FanoutSettings
{
    /// <summary>Every connection over TLS (both servers with the same certificate), or null for plain TCP.</summary>
    public BenchTls? Tls { get; init; }

    /// <summary>Subscribers per scenario (one publisher each time).</summary>
    public IReadOnlyList<int> Fanouts { get; init; } = [1, 10, 100];

    /// <summary>Payload bytes per message.</summary>
    public IReadOnlyList<int> PayloadSizes { get; init; } = [16, 128];

    /// <summary>Publishing before the measurement starts (connections warm, JIT done, buffers sized).</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An unreported 1:10 run right after each server starts, so that JIT and buffer growth are behind us.</summary>
    public TimeSpan Priming { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The measured interval.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most messages the publisher is ahead of the slowest subscriber.</summary>
    public int Window { get; init; } = 1000;

    /// <summary>Messages per publisher write (and flush).</summary>
    public int Batch { get; init; } = 100;

    /// <summary>Longest wait for a connection, a handshake or a subscription.</summary>
    public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long no subscriber may make progress before the scenario is declared stalled.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The loopback address StreamFarm listens on.</summary>
    public string StreamFarmAddress { get; init; } = "127.0.0.20";

    /// <summary>The loopback address nats-server listens on.</summary>
    public string NatsAddress { get; init; } = "127.0.0.21";

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        // Each subscriber takes a socket here and one in the server: 10,000 of each stays under this
        // machine's open-file limit of 20,000 per process.
        if (Fanouts.Count == 0 || Fanouts.Any(f => f is < 1 or > 10_000))
        {
            throw new ArgumentException("fan-outs must be between 1 and 10000 subscribers");
        }

        if (PayloadSizes.Count == 0 || PayloadSizes.Any(s => s is < 1 or > 8192))
        {
            throw new ArgumentException("payload sizes must be between 1 and 8192 bytes");
        }

        if (Duration <= TimeSpan.Zero || Warmup < TimeSpan.Zero || Priming < TimeSpan.Zero)
        {
            throw new ArgumentException("the duration must be positive, the warm-up and priming not negative");
        }

        if (Window < 1 || Batch < 1 || Batch > Window)
        {
            throw new ArgumentException("the window must be at least 1 and the batch between 1 and the window");
        }
    }
}
