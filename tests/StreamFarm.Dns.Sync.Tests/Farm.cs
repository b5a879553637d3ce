using StreamFarm.Protocol;

namespace StreamFarm.Dns.Sync.Tests;

/// <summary>Farm tables for the tests.</summary>
internal static class Farm
{
    public static FarmMember Server(string id, string ip, string state = "active", string liveness = "alive") =>
        new() { Id = id, State = state, Liveness = liveness, Capacity = 100, Tcp = ip.Contains(':', StringComparison.Ordinal) ? $"[{ip}]:7400" : $"{ip}:7400" };

    public static FarmSnapshot Table(long version, params FarmMember[] members) => new(version, members);

    public static DnsSyncOptions Options() => new() { Zone = KnotServer.Zone, Service = "stream", RetryMin = TimeSpan.FromMilliseconds(20), RetryMax = TimeSpan.FromMilliseconds(200), ResyncInterval = TimeSpan.Zero };
}
