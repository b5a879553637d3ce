namespace StreamFarm.Bench;

/// <summary>What a routes run does (<c>./bench.sh routes</c>): subscribers, payload, timings, the fixed rate of the latency runs.</summary>
public sealed record RouteSettings
{
    /// <summary>Subscribers per scenario (one publisher); split over two servers in the routed scenarios.</summary>
    public int Subscribers { get; init; } = 10;

    /// <summary>Payload bytes per message (besides the counter and timestamp of the latency runs).</summary>
    public int PayloadBytes { get; init; } = 128;

    /// <summary>Publishing before each measurement.</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An unreported short run right after each system starts, so that JIT and buffer growth are behind us.</summary>
    public TimeSpan Priming { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The measured interval, of the throughput run and of the latency run alike.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Messages per second the publisher sends in the latency run.</summary>
    public int Rate { get; init; } = 5000;

    /// <summary>Only the latency run (<c>./bench.sh latency</c>): no throughput run.</summary>
    public bool LatencyOnly { get; init; }

    /// <summary>Most messages the publisher is ahead of the slowest subscriber in the throughput run.</summary>
    public int Window { get; init; } = 1000;

    /// <summary>Messages per publisher write in the throughput run.</summary>
    public int Batch { get; init; } = 100;

    /// <summary>Which systems to run: streamfarm, nats.</summary>
    public IReadOnlyList<string> Systems { get; init; } = ["streamfarm", "nats"];

    /// <summary>The /24 of loopback addresses: StreamFarm servers on .1-.3, nats-servers on .11-.13.</summary>
    public string Prefix { get; init; } = "127.0.9";

    /// <summary>Longest wait for a connection, a subscription, or the farm to converge.</summary>
    public TimeSpan SetupTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long no subscriber may make progress before the scenario is declared stalled.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Subscribers is < 2 or > 1000)
        {
            throw new ArgumentException("subscribers must be between 2 and 1000 (the routed scenarios split them over two servers)");
        }

        if (PayloadBytes is < 1 or > 8192)
        {
            throw new ArgumentException("the payload size must be between 1 and 8192 bytes");
        }

        if (Duration <= TimeSpan.Zero || Warmup < TimeSpan.Zero || Priming < TimeSpan.Zero)
        {
            throw new ArgumentException("the duration must be positive, the warm-up and priming not negative");
        }

        if (Rate is < 1 or > 1_000_000)
        {
            throw new ArgumentException("the rate must be between 1 and 1,000,000 messages per second");
        }

        if (Window < 1 || Batch < 1 || Batch > Window)
        {
            throw new ArgumentException("the window must be at least 1 and the batch between 1 and the window");
        }

        if (Systems.Count == 0 || Systems.Any(s => s is not ("streamfarm" or "nats")))
        {
            throw new ArgumentException("systems are streamfarm and nats");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.9");
        }
    }
}
