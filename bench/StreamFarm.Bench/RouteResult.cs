namespace StreamFarm.Bench;

/// <summary>The scenarios of the routes benchmark, by where the publisher and the subscribers are.</summary>
public enum RouteLayout
{
    /// <summary>Publisher and subscribers on one server (StreamFarm: the subject's owner).</summary>
    OneHop,

    /// <summary>Publisher on server A (StreamFarm: the owner), subscribers split over B and C.</summary>
    TwoHops,

    /// <summary>Publisher on B (StreamFarm: not the owner), subscribers split over A (the owner) and C.</summary>
    ThreeHops,
}

/// <summary>Names of <see cref="RouteLayout"/> for reports.</summary>
public static class RouteLayoutNames
{
    public static string Name(this RouteLayout layout) => layout switch
    {
        RouteLayout.OneHop => "one hop",
        RouteLayout.TwoHops => "two hops",
        RouteLayout.ThreeHops => "publisher off the owner",
        _ => layout.ToString(),
    };

    public static string Key(this RouteLayout layout) => layout switch
    {
        RouteLayout.OneHop => "one_hop",
        RouteLayout.TwoHops => "two_hops",
        RouteLayout.ThreeHops => "publisher_off_owner",
        _ => layout.ToString(),
    };
}

/// <summary>What one scenario of the routes benchmark measured on one system.</summary>
public sealed record RouteResult
{
    public required ServerKind Server { get; init; }

    public required RouteLayout Layout { get; init; }

    /// <summary>The way a message goes, with the servers' names (for example "r2 → r1 (owner) → r3").</summary>
    public required string Path { get; init; }

    /// <summary>Where the publisher and the subscribers were.</summary>
    public required string Placement { get; init; }

    /// <summary>The throughput run (flow window): deliveries, CPU of the three servers together.</summary>
    public ScenarioResult? Throughput { get; init; }

    /// <summary>Average cores each server used during the throughput run, by name.</summary>
    public IReadOnlyDictionary<string, double> ThroughputCoresByServer { get; init; } = new Dictionary<string, double>();

    /// <summary>The latency run at a fixed rate: deliveries, CPU of the three servers together.</summary>
    public ScenarioResult? AtRate { get; init; }

    /// <summary>Average cores each server used during the latency run, by name.</summary>
    public IReadOnlyDictionary<string, double> AtRateCoresByServer { get; init; } = new Dictionary<string, double>();

    /// <summary>Messages the publisher sent in the whole scenario (both runs, warm-ups included).</summary>
    public long Published { get; init; }

    /// <summary>How long the subscribers took to get every message of the latency run once it stopped.</summary>
    public TimeSpan? LatencyDrain { get; init; }

    /// <summary>How long the subscribers took to get every message of the throughput run once publishing stopped (up to a window of deliveries in flight).</summary>
    public TimeSpan? ThroughputDrain { get; init; }

    /// <summary>Receive time minus the publisher's stamp, in microseconds, over every delivery stamped in the measured interval.</summary>
    public LatencySummary? Latency { get; init; }

    /// <summary>The same, for the subscribers of each server (by name) when they are split over two.</summary>
    public IReadOnlyDictionary<string, LatencySummary> LatencyBySubscriberServer { get; init; } = new Dictionary<string, LatencySummary>();

    /// <summary>StreamFarm: how each server's route counters moved over the whole scenario (name → forwarded, dropped).</summary>
    public IReadOnlyDictionary<string, RouteCounters> Routes { get; init; } = new Dictionary<string, RouteCounters>();

    /// <summary>Why the scenario could not be measured, or null.</summary>
    public string? Error { get; init; }

    /// <summary>Things that went wrong without stopping it: short counts, gaps, reordering, conflation, dropped forwards.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    public bool Measured => Error is null && Throughput is { Measured: true } && AtRate is { Measured: true } && Latency is { Count: > 0 };
}

/// <summary>How a StreamFarm server's route counters moved during a scenario.</summary>
public sealed record RouteCounters(double Forwarded, double Dropped, double MessagesIn, double MessagesOut);
