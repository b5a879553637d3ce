namespace StreamFarm.Bench;

/// <summary>What a membership run does: farm sizes, systems, and the timings of each phase.</summary>
public sealed record MembershipSettings
{
    /// <summary>The systems a run can compare.</summary>
    public static IReadOnlyList<string> AllSystems { get; } = ["lan", "local", "serf"];

    /// <summary>Members per farm (real processes).</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [3, 10];

    /// <summary><c>lan</c> and <c>local</c> (StreamFarm with that preset), <c>serf</c> (serf agents, profile lan).</summary>
    public IReadOnlyList<string> Systems { get; init; } = AllSystems;

    /// <summary>How often every member's view is polled.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>A poll unanswered this long counts as a failure (a paused member).</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Wait after the join before traffic is measured, so the join's broadcasts are sent.</summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Traffic at rest is measured no sooner than this after the processes started: .NET recompiles hot
    /// code (tiered JIT) in its first seconds, which would be counted as CPU at rest.
    /// </summary>
    public TimeSpan MinUptime { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>The interval over which traffic and CPU at rest are measured.</summary>
    public TimeSpan Rest { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Farms of at least this size also get the false-death phases (SIGSTOP, CPU saturation).</summary>
    public int FaultsFromSize { get; init; } = 10;

    /// <summary>How long one member is stopped with SIGSTOP.</summary>
    public TimeSpan Pause { get; init; } = TimeSpan.FromSeconds(1.5);

    /// <summary>How long one member's core is saturated.</summary>
    public TimeSpan Saturation { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Busy loops sharing the saturated member's core.</summary>
    public int Hogs { get; init; } = 4;

    /// <summary>Observation after each fault: dead verdicts in this window count.</summary>
    public TimeSpan AfterFault { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Longest wait for the join, for a status change, for a death to be known.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The loopback /24 every scenario takes its addresses from (<c>127.0.83</c>: members at
    /// 127.0.83.1, .2, ..., each scenario after the previous one's), or null: each system and size gets
    /// its own 127.0.(100 + 10 × system + size index).0/24.
    /// </summary>
    public string? Subnet { get; init; }

    /// <summary>How many times every scenario runs (one after the other: sizes, then systems, then runs).</summary>
    public int Runs { get; init; } = 1;

    /// <summary>
    /// StreamFarm farms also get an RTTP client on the seed that logs the FARM table lines it is sent
    /// (at the join, the status change, at rest, the join of one more member, the kill), and the size
    /// of the whole table.
    /// </summary>
    public bool FarmClient { get; init; }

    /// <summary>After rest, one more member is started and timed until every member sees it alive; it is the one then killed.</summary>
    public bool JoinOne { get; init; }

    /// <summary>
    /// After rest, every member's users count changes <see cref="ChurnRate"/> times a second (up and
    /// down by one) for this long, measured like rest after a second of warm-up; zero: no churn phase.
    /// </summary>
    public TimeSpan Churn { get; init; } = TimeSpan.Zero;

    /// <summary>Users-count changes per member and second in the churn phase.</summary>
    public double ChurnRate { get; init; } = 10;

    /// <summary>StreamFarm's gossip port (every member has its own address).</summary>
    public int StreamFarmGossipPort { get; init; } = 7401;

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Sizes.Count == 0 || Sizes.Any(s => s is < 2 or > 100))
        {
            throw new ArgumentException("sizes must be between 2 and 100 members");
        }

        if (Systems.Count == 0 || Systems.Any(s => !AllSystems.Contains(s)))
        {
            throw new ArgumentException("systems are lan, local and serf");
        }

        if (PollInterval <= TimeSpan.Zero || PollTimeout <= TimeSpan.Zero || Rest <= TimeSpan.Zero || Settle < TimeSpan.Zero)
        {
            throw new ArgumentException("the poll interval, poll timeout and rest interval must be positive");
        }

        if (Churn < TimeSpan.Zero || ChurnRate is <= 0 or > 1000)
        {
            throw new ArgumentException("the churn must not be negative, and its rate between 0 and 1000 changes a second");
        }

        if (Runs < 1 || (Subnet is not null && !System.Text.RegularExpressions.Regex.IsMatch(Subnet, @"^127\.\d{1,3}\.\d{1,3}$")) || (Subnet is not null && Sizes.Any(s => s > 100)))
        {
            throw new ArgumentException("runs must be at least 1, and a subnet is three numbers of a loopback address (127.0.83)");
        }

        if (Hogs < 0 || Pause < TimeSpan.Zero || Saturation < TimeSpan.Zero || AfterFault < TimeSpan.Zero)
        {
            throw new ArgumentException("fault durations and the number of busy loops must not be negative");
        }
    }

    /// <summary>The display name of a system.</summary>
    public static string Name(string system) => system switch
    {
        "lan" => "StreamFarm lan",
        "local" => "StreamFarm local",
        "serf" => "serf (lan)",
        _ => system,
    };
}
