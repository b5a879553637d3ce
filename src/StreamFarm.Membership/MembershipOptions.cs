namespace StreamFarm.Membership;

/// <summary>
/// Tuning of the membership protocol. Use a preset (<see cref="Lan"/>, <see cref="Local"/>) and
/// override what you must; each default says why it is what it is.
/// </summary>
public sealed record MembershipOptions
{
    /// <summary>Name of the farm; packets of another farm are dropped (it is authenticated data).</summary>
    public string FarmName { get; init; } = "streamfarm";

    /// <summary>One random member is probed per interval: detection time scales with it, load does not grow with farm size.</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Time to wait for a direct ack before asking others; above a LAN round trip with a margin for GC pauses.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Members asked to probe indirectly; three tolerate one lossy path and one slow helper.</summary>
    public int IndirectChecks { get; init; } = 3;

    /// <summary>Status changes are pushed this often to <see cref="GossipNodes"/> members, so a change reaches everyone in a few rounds.</summary>
    public TimeSpan GossipInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Members gossiped to per round; with three, a change reaches 1,000 members in about seven rounds.</summary>
    public int GossipNodes { get; init; } = 3;

    /// <summary>Each broadcast is sent this many times log10(n+1): enough for epidemic spread with loss, bounded traffic.</summary>
    public int RetransmitMult { get; init; } = 4;

    /// <summary>Suspicion lasts SuspicionMult × log10(n) probe intervals at least: larger farms need more time to refute.</summary>
    public int SuspicionMult { get; init; } = 4;

    /// <summary>Without independent confirmations, suspicion lasts up to this many times the minimum (Lifeguard).</summary>
    public int SuspicionMaxTimeoutMult { get; init; } = 6;

    /// <summary>Independent confirmations after which suspicion runs at its minimum.</summary>
    public int SuspicionConfirmations { get; init; } = 3;

    /// <summary>
    /// Full-state exchange with one random member over the reliable stream, repairing whatever gossip
    /// missed (serf's interval). Not what heals a partition (<see cref="ReconnectInterval"/> is), so
    /// it can be long: at rest it is most of the TCP traffic.
    /// </summary>
    public TimeSpan PushPullInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// While a member is believed dead (and not yet forgotten), one of them is pinged this often; if it
    /// answers (a healed partition, a pause that outlasted the suspicion), a full-state exchange with
    /// it follows and both sides see each other again. One datagram per interval while someone is
    /// dead, nothing at rest; it bounds the time a healed partition takes to heal.
    /// </summary>
    public TimeSpan ReconnectInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of the local health score: an overloaded member waits up to (score+1) times longer before accusing.</summary>
    public int AwarenessMaxMultiplier { get; init; } = 8;

    /// <summary>How long dead and left members stay in the table (shown as such) before they are forgotten.</summary>
    public TimeSpan DeadRetention { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest datagram: below the 1,500-byte Ethernet MTU after IP, UDP and AES-GCM overhead.</summary>
    public int MaxPacketBytes { get; init; } = 1350;

    /// <summary>How often a member with no contacts retries its seeds.</summary>
    public TimeSpan JoinRetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Settings for servers in one data centre.</summary>
    public static MembershipOptions Lan { get; } = new();

    /// <summary>Settings for a farm on one machine or a fast LAN: faster probes and suspicion for quick tests and demos.</summary>
    public static MembershipOptions Local { get; } = new()
    {
        ProbeInterval = TimeSpan.FromMilliseconds(200),
        ProbeTimeout = TimeSpan.FromMilliseconds(100),
        GossipInterval = TimeSpan.FromMilliseconds(50),
        SuspicionMult = 3,
        PushPullInterval = TimeSpan.FromSeconds(5),
        ReconnectInterval = TimeSpan.FromMilliseconds(500),
        DeadRetention = TimeSpan.FromSeconds(10),
        JoinRetryInterval = TimeSpan.FromMilliseconds(250),
    };

    public void Validate()
    {
        if (ProbeTimeout >= ProbeInterval)
        {
            throw new ArgumentException("membership.probeTimeout must be shorter than membership.probeInterval");
        }

        if (ReconnectInterval <= TimeSpan.Zero || PushPullInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("membership intervals must be positive");
        }

        if (IndirectChecks < 0 || AwarenessMaxMultiplier < 1 || GossipNodes < 1 || RetransmitMult < 1 || SuspicionMult < 1 || SuspicionMaxTimeoutMult < 1 || SuspicionConfirmations < 1)
        {
            throw new ArgumentException("membership counts and multipliers must be positive");
        }

        if (MaxPacketBytes is < 512 or > 65000)
        {
            throw new ArgumentException("membership.maxPacketBytes must be between 512 and 65000");
        }
    }
}
