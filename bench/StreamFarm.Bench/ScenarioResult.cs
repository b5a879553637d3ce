namespace StreamFarm.Bench;

/// <summary>What one scenario (one server, one fan-out, one payload size) measured.</summary>
public sealed record ScenarioResult
{
    public required ServerKind Server { get; init; }

    public required int Fanout { get; init; }

    public required int PayloadBytes { get; init; }

    /// <summary>Time taken to connect and subscribe every subscriber.</summary>
    public double SetupSeconds { get; init; }

    /// <summary>Length of the measured interval.</summary>
    public double Seconds { get; init; }

    /// <summary>Messages received by all subscribers together during the interval.</summary>
    public long Deliveries { get; init; }

    /// <summary>Messages the publisher sent during the interval.</summary>
    public long Published { get; init; }

    /// <summary>CPU time (user + system) the server process used during the interval.</summary>
    public double ServerCpuSeconds { get; init; }

    /// <summary>CPU time the load generator (this process) used during the interval.</summary>
    public double BenchCpuSeconds { get; init; }

    /// <summary>Busy CPU time of the whole machine during the interval (all cores).</summary>
    public double MachineCpuSeconds { get; init; }

    /// <summary>Times the publisher waited for the slowest subscriber (during the whole scenario).</summary>
    public long WindowWaits { get; init; }

    /// <summary>Why the scenario could not be measured, or null.</summary>
    public string? Error { get; init; }

    /// <summary>Things that went wrong without stopping the measurement: wrong counts, conflation, gaps.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    public bool Measured => Error is null && Deliveries > 0 && Seconds > 0;

    public double DeliveriesPerSecond => Measured ? Deliveries / Seconds : double.NaN;

    public double ServerCpuMicrosPerDelivery => Measured ? ServerCpuSeconds * 1e6 / Deliveries : double.NaN;

    public double BenchCpuMicrosPerDelivery => Measured ? BenchCpuSeconds * 1e6 / Deliveries : double.NaN;

    /// <summary>Cores the server kept busy on average (1.0 = one core).</summary>
    public double ServerCores => Measured ? ServerCpuSeconds / Seconds : double.NaN;

    /// <summary>Cores the load generator kept busy on average.</summary>
    public double BenchCores => Measured ? BenchCpuSeconds / Seconds : double.NaN;

    /// <summary>Cores busy with neither the server nor the load generator (kernel work, other processes).</summary>
    public double OtherCores => Measured && MachineCpuSeconds > 0 ? Math.Max(0, MachineCpuSeconds - ServerCpuSeconds - BenchCpuSeconds) / Seconds : double.NaN;
}
