using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Dns;

/// <summary>
/// The zone's SOA serial, a function of the farm table alone: every responder of a farm serves the
/// same serial for the same table, whenever it started and however many table versions it saw on
/// the way (a snapshot's version counts the changes one member observed, so it differs between
/// members). The serial changes whenever a field that shapes an answer changes.
/// </summary>
/// <remarks>
/// It is a hash (32-bit FNV-1a over the fields the zone is built from, servers in id order), so it
/// does not increase in RFC 1982 order: no function of the table alone can (a table that changes
/// and changes back must get its first serial again). Nothing here compares serials for order: the
/// responder serves no zone transfers (NOTAUTH), and a zone kept by <c>dns-sync</c> gets its serials
/// from the server that holds it. See docs/operations.md, "DNS and delegation".
/// </remarks>
internal static class ZoneSerial
{
    private const uint OffsetBasis = 2166136261;
    private const uint Prime = 16777619;

    public static uint Of(FarmSnapshot snapshot)
    {
        var members = snapshot.Members.ToArray();
        Array.Sort(members, static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        var hash = OffsetBasis;
        foreach (var m in members)
        {
            hash = Add(hash, m.Id);
            hash = Add(hash, m.Group);
            hash = Add(hash, m.State);
            hash = Add(hash, m.Liveness);
            hash = Add(hash, m.Users);
            hash = Add(hash, m.Capacity);
            hash = Add(hash, m.Tcp);
            hash = Add(hash, m.Ws);
        }

        return hash;
    }

    // Each field ends with a byte that UTF-8 text never holds, so ("ab", "c") and ("a", "bc") differ.
    private static uint Add(uint hash, string text)
    {
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            hash = (hash ^ b) * Prime;
        }

        return (hash ^ 0xFF) * Prime;
    }

    private static uint Add(uint hash, int value)
    {
        for (var i = 0; i < 4; i++)
        {
            hash = (hash ^ (byte)(value >> (8 * i))) * Prime;
        }

        return hash;
    }
}
