namespace StreamFarm.Protocol;

/// <summary>
/// A client's copy of one subject's fields with the stamps of their writes (<c>HELLO ... stamps=1</c>,
/// docs/protocol.md, 4a, "Refusing to go back"), merged by the rule the servers merge copies by: a
/// field takes a value only from a write stamped at least as late as the one it holds, and an image's
/// <c>@clr</c> removes the fields written before it. Kept across reconnects, it never shows a value
/// older than one it showed, even when the farm lost the newest writes (every server that had them
/// died): it keeps them and says so (<see cref="ApplyResult.Kept"/>) until later writes arrive.
/// Not thread-safe.
/// </summary>
public sealed class StampedFields
{
    private readonly Dictionary<string, (string Value, ulong Stamp)> _fields = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <summary>The latest <c>@clr</c> seen: fields written before it were removed by an image publication.</summary>
    public ulong Clear { get; private set; }

    /// <summary>Fields held, in the order first received, with their values and stamps.</summary>
    public IEnumerable<(string Name, string Value, ulong Stamp)> Fields => _order.Select(n => (n, _fields[n].Value, _fields[n].Stamp));

    /// <summary>The value held for <paramref name="name"/>, or null.</summary>
    public string? this[string name] => _fields.TryGetValue(name, out var f) ? f.Value : null;

    /// <summary>How a record line changed this copy.</summary>
    /// <param name="Taken">Fields of the line whose value is now held.</param>
    /// <param name="Kept">
    /// Fields this copy holds from later writes than the line says the farm has: a field the line
    /// carries with an older stamp, or, for an image, a field it lacks although no image publication
    /// removed it. Non-zero after a move means the farm lost writes this client showed: the client
    /// keeps showing them and should tell its application (the data may be out of date, as with
    /// <c>STATUS STALE</c>) until a later write arrives.
    /// </param>
    public readonly record struct ApplyResult(int Taken, int Kept);

    /// <summary>
    /// Applies an <c>IMAGE</c> (<paramref name="image"/>) or <c>UPDATE</c> line: its <c>@clr</c>
    /// (<paramref name="clear"/>, 0 if absent) and its fields with their stamps (from <c>@fts</c>, or
    /// <c>@ts</c> for all; 0 for a line without stamps, which then never replaces a stamped value).
    /// </summary>
    public ApplyResult Apply(bool image, ulong clear, IReadOnlyList<(string Name, string Value, ulong Stamp)> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        if (clear > Clear)
        {
            Clear = clear;
            foreach (var name in _order.Where(n => _fields[n].Stamp < clear).ToList())
            {
                _fields.Remove(name);
                _order.Remove(name);
            }
        }

        var taken = 0;
        var kept = 0;
        foreach (var (name, value, stamp) in fields)
        {
            if (_fields.TryGetValue(name, out var held))
            {
                if (held.Stamp > stamp)
                {
                    kept++;
                    continue;
                }
            }
            else if (stamp < Clear && stamp != 0)
            {
                continue; // removed by a later image publication (a late copy of an older write)
            }
            else
            {
                _order.Add(name);
            }

            _fields[name] = (value, stamp);
            taken++;
        }

        if (image)
        {
            // The image's order first; then fields it lacks, still held as written after its clear
            // (the farm lost them).
            var order = new List<string>(_order.Count);
            foreach (var f in fields)
            {
                if (_fields.ContainsKey(f.Name) && !order.Contains(f.Name))
                {
                    order.Add(f.Name);
                }
            }

            foreach (var name in _order)
            {
                if (!Contains(fields, name))
                {
                    order.Add(name);
                    kept++;
                }
            }

            _order.Clear();
            _order.AddRange(order);
        }

        return new ApplyResult(taken, kept);
    }

    /// <summary>Reads the stamps of a record line's meta: <c>@clr</c>, and <c>@fts</c> (one per field) or <c>@ts</c> (one for all).</summary>
    public static (ulong Clear, ulong[] Stamps) ReadStamps(string? clr, string? fts, string? ts, int fieldCount)
    {
        var stamps = new ulong[fieldCount];
        var clear = clr is not null && ulong.TryParse(clr, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var c) ? c : 0;
        if (fts is not null)
        {
            var parts = fts.Split(',');
            for (var i = 0; i < Math.Min(parts.Length, fieldCount); i++)
            {
                _ = ulong.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out stamps[i]);
            }
        }
        else if (ts is not null && ulong.TryParse(ts, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var one))
        {
            Array.Fill(stamps, one);
        }

        return (clear, stamps);
    }

    private static bool Contains(IReadOnlyList<(string Name, string Value, ulong Stamp)> fields, string name)
    {
        foreach (var f in fields)
        {
            if (string.Equals(f.Name, name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
