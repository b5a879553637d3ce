using System.Net;
using System.Net.Sockets;
using StreamFarm.Protocol;

namespace StreamFarm.Dns.Sync;

/// <summary>The record types dns-sync writes.</summary>
public enum RecordKind
{
    A,
    Aaaa,
    Txt,
}

/// <summary>One RRset: owner name (lower case, no final dot) and type.</summary>
public readonly record struct RRsetKey(string Name, RecordKind Kind) : IComparable<RRsetKey>
{
    public int CompareTo(RRsetKey other)
    {
        var c = string.CompareOrdinal(Name, other.Name);
        return c != 0 ? c : Kind.CompareTo(other.Kind);
    }

    public override string ToString() => $"{Name} {Kind.ToString().ToUpperInvariant()}";

    public static bool operator <(RRsetKey left, RRsetKey right) => left.CompareTo(right) < 0;

    public static bool operator <=(RRsetKey left, RRsetKey right) => left.CompareTo(right) <= 0;

    public static bool operator >(RRsetKey left, RRsetKey right) => left.CompareTo(right) > 0;

    public static bool operator >=(RRsetKey left, RRsetKey right) => left.CompareTo(right) >= 0;
}

/// <summary>
/// What the zone should hold for one farm snapshot: the service name's A and AAAA RRsets (alive and
/// active servers only, the same rule as our own responder), one address record per alive server
/// (<c>&lt;id&gt;.&lt;zone&gt;</c>), and the registry TXT RRset naming those servers. Values are
/// canonical text (addresses as <see cref="IPAddress.ToString"/>), sorted, without duplicates.
/// </summary>
public sealed class ZoneRecords
{
    private ZoneRecords(SortedDictionary<RRsetKey, string[]> sets, IReadOnlyList<string> servers)
    {
        Sets = sets;
        Servers = servers;
    }

    /// <summary>Every RRset the snapshot asks for, including empty ones (the service name's).</summary>
    public IReadOnlyDictionary<RRsetKey, string[]> Sets { get; }

    /// <summary>Labels (lower case) of the servers that have a name of their own.</summary>
    public IReadOnlyList<string> Servers { get; }

    public static ZoneRecords From(FarmSnapshot snapshot, DnsSyncOptions options)
    {
        var v4 = new SortedSet<string>(StringComparer.Ordinal);
        var v6 = new SortedSet<string>(StringComparer.Ordinal);
        var sets = new SortedDictionary<RRsetKey, string[]>();
        var servers = new SortedSet<string>(StringComparer.Ordinal);
        var service = options.ServiceName;
        foreach (var m in snapshot.Members)
        {
            if (!TryAddress(m.Tcp, out var ip) && !TryAddress(m.Tls, out ip) && !TryAddress(m.Route, out ip))
            {
                continue; // no address yet, or a host name: nothing to publish
            }

            var label = m.Id.ToLowerInvariant();
            var alive = m.Liveness == "alive";
            if (alive && m.State == "active")
            {
                (ip.AddressFamily == AddressFamily.InterNetwork ? v4 : v6).Add(ip.ToString());
            }

            var name = $"{label}.{options.ZoneName}";
            if (!alive || name == service || label == DnsSyncOptions.RegistryLabel || DnsNames.ToWire(name) is null || !IsLabel(label))
            {
                continue; // an id that is not one DNS label, or would clobber one of our own names
            }

            servers.Add(label);
            sets[new RRsetKey(name, ip.AddressFamily == AddressFamily.InterNetwork ? RecordKind.A : RecordKind.Aaaa)] = [ip.ToString()];
        }

        sets[new RRsetKey(service, RecordKind.A)] = [.. v4];
        sets[new RRsetKey(service, RecordKind.Aaaa)] = [.. v6];
        sets[new RRsetKey(options.RegistryName, RecordKind.Txt)] = [.. servers];
        return new ZoneRecords(sets, [.. servers]);
    }

    /// <summary>The RRsets a name of a server may have (both address types, either may be stale).</summary>
    public static IEnumerable<RRsetKey> ServerKeys(string label, DnsSyncOptions options)
    {
        var name = $"{label}.{options.ZoneName}";
        yield return new RRsetKey(name, RecordKind.A);
        yield return new RRsetKey(name, RecordKind.Aaaa);
    }

    /// <summary>Whether a registry entry read back from the server is a label we could have written.</summary>
    public static bool IsLabel(string label) =>
        label.Length is > 0 and <= DnsWire.MaxLabelBytes && label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_') && label != DnsSyncOptions.RegistryLabel;

    private static bool TryAddress(string hostPort, out IPAddress ip)
    {
        ip = IPAddress.None;
        if (!IPEndPoint.TryParse(hostPort, out var ep))
        {
            return false;
        }

        ip = ep.Address.IsIPv4MappedToIPv6 ? ep.Address.MapToIPv4() : ep.Address;
        return true;
    }
}
