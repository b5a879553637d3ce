using System.Buffers.Text;

namespace StreamFarm.Protocol;

/// <summary>
/// The stamps a record line carries (route lines, seeds, and client lines asked for with
/// <c>HELLO ... stamps=1</c>; docs/protocol.md 4a): <c>@clr</c>, the stamp of the last image
/// publication, and <c>@fts</c> (one stamp per field, comma-separated, in field order) or
/// <c>@ts</c> (one for every field). Read by servers and clients alike.
/// </summary>
public static class RttpStamps
{
    /// <summary>
    /// Reads the line's field stamps into <paramref name="stamps"/> (one per field; 0 where absent
    /// or unreadable: older than any stamped write) and its <c>@clr</c> (0 when absent). False when
    /// the line carries no stamps at all.
    /// </summary>
    public static bool Read(RttpFrame frame, Span<ulong> stamps, out ulong clear)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var stamped = false;
        if (frame.TryGetMeta("fts"u8, out var list))
        {
            stamped = true;
            var i = 0;
            foreach (var range in list.Split((byte)','))
            {
                if (i < stamps.Length)
                {
                    stamps[i] = Utf8Parser.TryParse(list[range], out ulong stamp, out _) ? stamp : 0;
                }

                i++;
            }
        }
        else if (frame.TryGetMeta("ts"u8, out var ts))
        {
            stamped = true;
            _ = Utf8Parser.TryParse(ts, out ulong one, out _);
            stamps.Fill(one);
        }

        clear = 0;
        if (frame.TryGetMeta("clr"u8, out var c))
        {
            stamped = true;
            clear = Utf8Parser.TryParse(c, out ulong value, out _) ? value : 0;
        }

        return stamped;
    }
}
