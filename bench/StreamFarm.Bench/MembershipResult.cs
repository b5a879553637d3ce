namespace StreamFarm.Bench;

/// <summary>What one membership scenario (one system, one farm size) measured. Times are null when not reached.</summary>
public sealed class MembershipResult
{
    public required string System { get; init; }

    public required int Size { get; init; }

    /// <summary>The command line of one member (the second), for the report.</summary>
    public string Command { get; set; } = "";

    /// <summary>From starting the processes until the last one answered a poll.</summary>
    public TimeSpan? LastReady { get; set; }

    /// <summary>From starting the processes until every member showed all members alive.</summary>
    public TimeSpan? Join { get; set; }

    /// <summary>From starting the processes until the seed (running before them) showed all members alive.</summary>
    public TimeSpan? SeedSeesAll { get; set; }

    /// <summary>The member whose view was complete last, and when.</summary>
    public string SlowestObserver { get; set; } = "";

    /// <summary>From the status change until every member showed it.</summary>
    public TimeSpan? Status { get; set; }

    /// <summary>From kill -9 of one member until every other member showed it dead (serf: failed).</summary>
    public TimeSpan? Death { get; set; }

    /// <summary>Length of the interval at rest.</summary>
    public double RestSeconds { get; set; }

    /// <summary>Per member per second at rest, counted by nftables: UDP and TCP packets, IP bytes.</summary>
    public double? UdpPackets { get; set; }

    public double? TcpPackets { get; set; }

    public double? Bytes { get; set; }

    /// <summary>Per member per second at rest, from StreamFarm's own /metrics (gossip sent: datagrams + stream messages, payload bytes).</summary>
    public double? SelfPackets { get; set; }

    public double? SelfBytes { get; set; }

    /// <summary>CPU milliseconds per second of one member process at rest (average over members).</summary>
    public double? CpuMillis { get; set; }

    /// <summary>
    /// CPU (in cores) used on the machine by anything but the members and the harness, from starting
    /// the processes to the end of the status phase, and during the rest interval: above 0.15 the
    /// figures are disturbed by other work.
    /// </summary>
    public double? OtherCoresJoin { get; set; }

    public double? OtherCoresRest { get; set; }

    /// <summary>Whether the false-death phases ran.</summary>
    public bool Faults { get; set; }

    /// <summary>Dead (and suspect) verdicts about non-killed members during and after the SIGSTOP pause.</summary>
    public List<VerdictRecord> PauseVerdicts { get; } = [];

    /// <summary>The same during and after the CPU saturation.</summary>
    public List<VerdictRecord> SaturationVerdicts { get; } = [];

    /// <summary>Dead (and suspect) verdicts about non-killed members at any other time.</summary>
    public List<VerdictRecord> OtherVerdicts { get; } = [];

    /// <summary>Verdicts about the killed member before it was killed (there should be none).</summary>
    public List<VerdictRecord> EarlyVerdictsOnVictim { get; } = [];

    /// <summary>Members who paused and were saturated, and the killed one.</summary>
    public string PausedMember { get; set; } = "";

    public string SaturatedMember { get; set; } = "";

    public string KilledMember { get; set; } = "";

    public string ChangedMember { get; set; } = "";

    /// <summary>Polls and unanswered polls over the run.</summary>
    public long Polls { get; set; }

    public long PollFailures { get; set; }

    public List<string> Problems { get; } = [];

    /// <summary>Which run of the scenario (1, 2, ...).</summary>
    public int Run { get; set; } = 1;

    /// <summary>From starting one more member (after rest) until every member showed it alive (<see cref="MembershipSettings.JoinOne"/>).</summary>
    public TimeSpan? JoinOne { get; set; }

    /// <summary>Per member per second at rest: IP bytes of UDP alone (datagrams), from the kernel's counters.</summary>
    public double? UdpBytes { get; set; }

    /// <summary>
    /// FARM table lines one RTTP client of the seed was sent (<see cref="MembershipSettings.FarmClient"/>):
    /// the whole table once all joined (bytes), and the deltas (bytes, lines) from starting members
    /// 2..N until 2 s after all saw all alive, from the status change until 1 s after all saw it, per
    /// second at rest, from starting one more member until 1 s after all saw it, and from the kill
    /// until 1 s after all knew.
    /// </summary>
    public int? FarmTableBytes { get; set; }

    public FarmDelta? FarmJoin { get; set; }

    public FarmDelta? FarmStatus { get; set; }

    public FarmDelta? FarmRest { get; set; }

    public FarmDelta? FarmJoinOne { get; set; }

    public FarmDelta? FarmDeath { get; set; }

    /// <summary>The churn phase (<see cref="MembershipSettings.Churn"/>): its traffic and CPU per member and second, measured like rest.</summary>
    public MembershipResult? ChurnWindow { get; set; }

    /// <summary>Users-count changes made per member and second during the churn measurement.</summary>
    public double? ChurnChanges { get; set; }

    /// <summary>FARM table lines the seed's client was sent during the churn measurement.</summary>
    public FarmDelta? FarmChurn { get; set; }

    public double? PacketsPerSecond => UdpPackets + TcpPackets;

    /// <summary>Distinct members shown dead by anyone, in a list of verdicts.</summary>
    public static int DeadMembers(IEnumerable<VerdictRecord> verdicts) => verdicts.Where(v => v.Liveness == "dead").Select(v => v.Member).Distinct().Count();
}

/// <summary>A verdict for the report: at (seconds since the fault began, or since the scenario began), observer, member, liveness.</summary>
public readonly record struct VerdictRecord(double AtSeconds, string Observer, string Member, string Liveness);

/// <summary>FARM delta lines a client was sent in a window: bytes, lines, and the window's length in seconds.</summary>
public readonly record struct FarmDelta(long Bytes, int Lines, double Seconds)
{
    public double BytesPerSecond => Seconds > 0 ? Bytes / Seconds : 0;

    public double LinesPerSecond => Seconds > 0 ? Lines / Seconds : 0;
}
