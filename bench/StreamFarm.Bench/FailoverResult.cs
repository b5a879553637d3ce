namespace StreamFarm.Bench;

/// <summary>One kill: which server, how long until the client got its first message from another server, and how it got there.</summary>
public sealed record FailoverRun
{
    /// <summary>1-based run number.</summary>
    public required int Run { get; init; }

    /// <summary>The server killed (the one serving the client).</summary>
    public required string Killed { get; init; }

    /// <summary>The server the client got its next message from; null when it got none in time.</summary>
    public string? NewServer { get; init; }

    /// <summary>Milliseconds from just before SIGKILL to the first message from another server; null when the run failed.</summary>
    public double? Milliseconds { get; init; }

    /// <summary>StreamFarm: IMAGE or UPDATE (the first message from the new server should be the IMAGE); NATS: MSG.</summary>
    public string FirstKind { get; init; } = "";

    /// <summary>StreamFarm: how FarmClient labelled that image (Resumed, Gap, Fresh).</summary>
    public string? Continuity { get; init; }

    /// <summary>Publisher counter of that first message minus the last one received before, minus 1: messages the client never saw (an image carries the state, so StreamFarm loses values only, not state).</summary>
    public long? Missed { get; init; }

    /// <summary>StreamFarm: the subject's owner in the client's farm table just before the kill (by rendezvous hashing over the table's owners); null when the table names none.</summary>
    public string? Owner { get; init; }

    /// <summary>StreamFarm: the killed server was the subject's owner (its live updates follow only once the farm has a new owner).</summary>
    public bool OwnerKilled => Owner is not null && Owner == Killed;

    /// <summary>StreamFarm: the publisher counter of the first message was below the last one the client had seen: a value went back (must never happen).</summary>
    public bool WentBack { get; init; }

    /// <summary>StreamFarm: milliseconds from the kill until the first message from another server whose counter is above every one seen before the kill (the data is live again); null if none came within the run's wait.</summary>
    public double? LiveAfter { get; init; }

    /// <summary>StreamFarm: rounds of rediscovery the client needed (each a DNS query after a jittered pause).</summary>
    public int Rounds { get; init; }

    /// <summary>StreamFarm: DNS answers that still named the killed server.</summary>
    public int DnsGaveDead { get; init; }

    /// <summary>StreamFarm: times the selector chose the killed server from a table that still showed it alive.</summary>
    public int TableChoseDead { get; init; }

    /// <summary>StreamFarm: milliseconds from the kill until the client saw the connection end.</summary>
    public double? LostAfter { get; init; }

    /// <summary>StreamFarm: milliseconds from the kill until the DNS answer of the successful round.</summary>
    public double? ResolvedAfter { get; init; }

    /// <summary>NATS: reconnect attempts that failed before the client got through (each followed by ReconnectWaitMin, 2 s, plus jitter).</summary>
    public int FailedAttempts { get; init; }

    /// <summary>NATS: of those, attempts at the killed server.</summary>
    public int AttemptsAtKilled { get; init; }

    /// <summary>The client's steps (StreamFarm) or connection events (NATS) after the kill, with milliseconds since the kill.</summary>
    public IReadOnlyList<string> Steps { get; init; } = [];

    /// <summary>Why the run failed, if it did.</summary>
    public string? Error { get; init; }
}

/// <summary>All kills of one system.</summary>
public sealed record FailoverSide
{
    /// <summary>streamfarm or nats.</summary>
    public required string System { get; init; }

    /// <summary>What the servers ran as and what the client was.</summary>
    public List<string> Setup { get; init; } = [];

    public List<FailoverRun> Runs { get; init; } = [];

    /// <summary>CPU of the bench process and of each server over 2 s at rest before the first kill, and the load average (<see cref="CpuSample"/>).</summary>
    public string? Cpu { get; set; }

    /// <summary>Messages per second the publisher actually sent (to each server).</summary>
    public double PublishRate { get; set; }

    /// <summary>Latency statistics over the successful runs.</summary>
    public LatencySummary Summary => LatencySummary.Of(Runs.Where(r => r.Milliseconds is not null).Select(r => r.Milliseconds!.Value));
}
