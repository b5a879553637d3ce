namespace StreamFarm.Dns.Sync;

/// <summary>How <see cref="DnsSync"/> keeps a zone on another authoritative server current.</summary>
public sealed class DnsSyncOptions
{
    /// <summary>
    /// Label (under the zone) of the TXT RRset that lists the server names dns-sync manages, one
    /// string per id: a restarted dns-sync reads it to delete the names of servers that went away
    /// while it was not running, and never touches names it did not create.
    /// </summary>
    public const string RegistryLabel = "_streamfarm-sync";

    /// <summary>The zone on the server, for example <c>farm.test</c>.</summary>
    public string Zone { get; set; } = "farm.test";

    /// <summary>The service label: <c>stream</c> makes <c>stream.farm.test</c> the service name.</summary>
    public string Service { get; set; } = "stream";

    /// <summary>TTL of the records written; low so that a dead server leaves resolvers' caches quickly.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First wait after a failed update; it doubles (with jitter) up to <see cref="RetryMax"/>.</summary>
    public TimeSpan RetryMin { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan RetryMax { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A full resync this often repairs changes made to the zone by others; zero turns it off.</summary>
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The zone's name, lower case, without the final dot.</summary>
    public string ZoneName => Zone.TrimEnd('.').ToLowerInvariant();

    /// <summary>The service name, for example <c>stream.farm.test</c>.</summary>
    public string ServiceName => $"{Service.TrimEnd('.').ToLowerInvariant()}.{ZoneName}";

    /// <summary>The registry's name, <c>_streamfarm-sync.farm.test</c>.</summary>
    public string RegistryName => $"{RegistryLabel}.{ZoneName}";

    public void Validate()
    {
        if (DnsNames.ToWire(Zone) is null || DnsNames.ToWire(ServiceName) is null)
        {
            throw new ArgumentException($"'{Service}.{Zone}' is not a valid DNS name");
        }

        if (Ttl < TimeSpan.Zero || Ttl > TimeSpan.FromDays(1))
        {
            throw new ArgumentException("the TTL must be between 0 and 86400 seconds");
        }

        if (RetryMin <= TimeSpan.Zero || RetryMax < RetryMin || ResyncInterval < TimeSpan.Zero)
        {
            throw new ArgumentException("retry times must be positive (retryMax at least retryMin) and the resync interval not negative");
        }
    }
}
