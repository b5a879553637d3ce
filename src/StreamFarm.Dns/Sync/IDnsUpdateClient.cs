namespace StreamFarm.Dns.Sync;

/// <summary>
/// Replaces one RRset: delete it, then add <see cref="After"/> (nothing: the RRset goes away).
/// <see cref="Before"/> is what dns-sync last wrote there; when not null the update carries it as a
/// prerequisite (RFC 2136 2.4.2 "RRset exists (value dependent)", or 2.4.3 "RRset does not exist"
/// when empty), so an update built on a stale view of the zone fails instead of overwriting someone
/// else's change; null means unconditional (a full resync).
/// </summary>
public sealed record RRsetChange(RRsetKey Key, IReadOnlyList<string>? Before, IReadOnlyList<string> After);

/// <summary>One RFC 2136 update message: all changes are applied together or not at all.</summary>
public sealed record ZoneUpdate(string Zone, TimeSpan Ttl, IReadOnlyList<RRsetChange> Changes, bool Full);

public enum UpdateStatus
{
    /// <summary>The server answered NOERROR.</summary>
    Applied,

    /// <summary>A prerequisite did not hold (YXDOMAIN, YXRRSET, NXDOMAIN, NXRRSET): the zone is not what we last wrote.</summary>
    PrerequisiteFailed,

    /// <summary>Anything else: no answer, refused, not authorized, a bad TSIG, a server failure.</summary>
    Failed,
}

public sealed record UpdateResult(UpdateStatus Status, string Detail)
{
    public static UpdateResult Ok { get; } = new(UpdateStatus.Applied, "NOERROR");
}

/// <summary>
/// Talks to the authoritative server: sends updates and reads an RRset back. The seam for tests;
/// <see cref="ArsoftUpdateClient"/> is the real one.
/// </summary>
public interface IDnsUpdateClient
{
    /// <summary>Sends the update and reports the server's verdict; failures are results, not exceptions (except cancellation).</summary>
    Task<UpdateResult> UpdateAsync(ZoneUpdate update, CancellationToken cancel);

    /// <summary>The strings of a TXT RRset (one per record), empty when the name or RRset does not exist; throws <see cref="IOException"/> when the server cannot be asked.</summary>
    Task<IReadOnlyList<string>> ReadTxtAsync(string name, CancellationToken cancel);
}
