using System.Text;

namespace StreamFarm.Protocol;

/// <summary>
/// Which server owns each subject: rendezvous (highest random weight) hashing over the servers that
/// are active and alive. Every server computes the same owner from the same table, and when a
/// server joins or goes only the subjects it wins or held change owner (about 1/N of them).
/// Immutable; a new one is made when the set of owners changes. In the protocol library so that
/// clients can send a subject's publications to its owner from the farm table they are sent
/// (<see cref="OfTable"/>), and tools and tests can tell which server owns a subject
/// (<c>new Ownership(ids).OwnerOf(subject)</c>).
/// </summary>
public sealed class Ownership
{
    private readonly string[] _ids;
    private readonly ulong[] _seeds;

    /// <summary>Ownership over these server ids (order and duplicates do not matter).</summary>
    public Ownership(IEnumerable<string> owners)
    {
        _ids = [.. owners.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        _seeds = [.. _ids.Select(id => Hash(Encoding.UTF8.GetBytes(id), 0xcbf29ce484222325))];
    }

    /// <summary>The owners, in ordinal order.</summary>
    public IReadOnlyList<string> Owners => _ids;

    /// <summary>A number that names this set of owners: equal sets, equal numbers, on every server (FNV-1a of the sorted ids).</summary>
    public ulong Fingerprint => Hash(Encoding.UTF8.GetBytes(string.Join('\n', _ids)), 0xcbf29ce484222325);

    /// <summary>
    /// The owners of a farm table: its active servers that are alive or only suspected (a suspicion
    /// is often refuted; owners change when a server is known dead, not at every doubt) and that
    /// take routes (not observers such as a DNS responder), less <paramref name="exclude"/> (servers
    /// known to be gone before the table says so); this server alone if there is none.
    /// </summary>
    public static Ownership From(FarmSnapshot table, string self, IReadOnlySet<string>? exclude = null)
    {
        var ids = table.Members.Where(m => m.State == "active" && m.Liveness is "alive" or "suspect" && (m.Route.Length > 0 || m.Id == self) && (exclude is null || !exclude.Contains(m.Id))).Select(m => m.Id).ToList();
        return new Ownership(ids.Count > 0 ? ids : [self]);
    }

    /// <summary>
    /// The owners of a farm table as a client sees it (no server of its own): the servers
    /// <see cref="From"/> counts; null when no server of the table takes routes (a single server
    /// without a farm, or a table from before routes), so no owner can be named.
    /// </summary>
    public static Ownership? OfTable(FarmSnapshot table)
    {
        var ids = table.Members.Where(m => m.State == "active" && m.Liveness is "alive" or "suspect" && m.Route.Length > 0).Select(m => m.Id).ToList();
        return ids.Count > 0 ? new Ownership(ids) : null;
    }

    /// <summary>True when both have the same owners.</summary>
    public bool SameOwners(Ownership other) => _ids.AsSpan().SequenceEqual(other._ids);

    /// <summary>The owner of a subject given by its UTF-8 name.</summary>
    public string OwnerOf(ReadOnlySpan<byte> subjectUtf8)
    {
        var best = 0;
        var bestWeight = 0UL;
        for (var i = 0; i < _ids.Length; i++)
        {
            var w = Mix(Hash(subjectUtf8, _seeds[i]));
            if (i == 0 || w > bestWeight)
            {
                best = i;
                bestWeight = w;
            }
        }

        return _ids[best];
    }

    /// <summary>
    /// The server that would own a subject if its owner were gone (the second-highest weight): the
    /// one that keeps a standby copy of it, so that it takes the subject over with the owner's last
    /// writes. Null when there is only one owner.
    /// </summary>
    public string? SuccessorOf(ReadOnlySpan<byte> subjectUtf8)
    {
        if (_ids.Length < 2)
        {
            return null;
        }

        int best = -1, second = -1;
        ulong bestWeight = 0, secondWeight = 0;
        for (var i = 0; i < _ids.Length; i++)
        {
            var w = Mix(Hash(subjectUtf8, _seeds[i]));
            if (best < 0 || w > bestWeight)
            {
                (second, secondWeight) = (best, bestWeight);
                (best, bestWeight) = (i, w);
            }
            else if (second < 0 || w > secondWeight)
            {
                (second, secondWeight) = (i, w);
            }
        }

        return _ids[second];
    }

    /// <summary>The successor of a subject (see <see cref="SuccessorOf(ReadOnlySpan{byte})"/>).</summary>
    public string? SuccessorOf(string subject) => SuccessorOf(Encoding.UTF8.GetBytes(subject));

    /// <summary>The owner of a subject.</summary>
    public string OwnerOf(string subject)
    {
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(subject.Length)];
        var n = Encoding.UTF8.GetBytes(subject, utf8);
        return OwnerOf(utf8[..n]);
    }

    // FNV-1a 64 seeded with the server's own hash, then a SplitMix64 finaliser: stable across
    // processes and platforms (string.GetHashCode is randomised per process), well spread.
    private static ulong Hash(ReadOnlySpan<byte> data, ulong seed)
    {
        var h = seed;
        foreach (var b in data)
        {
            h = (h ^ b) * 0x100000001b3;
        }

        return h;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
    }
}
