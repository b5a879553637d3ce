using System.Text;

namespace StreamFarm.Client;

/// <summary>
/// The strings of names that come again and again on the wire (subjects, field names): a name seen
/// before is found by its bytes and its string reused, so a message allocates no string for them.
/// Not thread-safe (one per read loop); bounded: when full it starts over.
/// </summary>
internal sealed class NameCache
{
    private const int MaxNames = 4096;
    private const int MaxNameBytes = 256; // a subject's limit; longer names are not kept

    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public NameCache() => _lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>The string of <paramref name="utf8"/>.</summary>
    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxNameBytes)
        {
            return Encoding.UTF8.GetString(utf8);
        }

        Span<char> chars = stackalloc char[MaxNameBytes];
        var n = Encoding.UTF8.GetChars(utf8, chars);
        if (_lookup.TryGetValue(chars[..n], out var name))
        {
            return name;
        }

        if (_names.Count >= MaxNames)
        {
            _names.Clear();
        }

        name = new string(chars[..n]);
        _names[name] = name;
        return name;
    }
}
