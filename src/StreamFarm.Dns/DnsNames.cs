using System.Text;

namespace StreamFarm.Dns;

/// <summary>Domain names in wire form (length-prefixed labels, ending with the root's zero byte).</summary>
internal static class DnsNames
{
    /// <summary>Text to lower-case wire form, or null if it is not a valid host-style name.</summary>
    public static byte[]? ToWire(string name)
    {
        var labels = name.TrimEnd('.').ToLowerInvariant().Split('.');
        var result = new List<byte>();
        foreach (var label in labels)
        {
            var bytes = Encoding.ASCII.GetBytes(label);
            if (bytes.Length is 0 or > DnsWire.MaxLabelBytes || !label.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return null;
            }

            result.Add((byte)bytes.Length);
            result.AddRange(bytes);
        }

        result.Add(0);
        return result.Count <= DnsWire.MaxNameBytes ? [.. result] : null;
    }

    /// <summary>Whether two wire names are equal ignoring ASCII case.</summary>
    public static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (Lower(a[i]) != Lower(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether wire name <paramref name="name"/> is <paramref name="zone"/> or below it (label-aligned).</summary>
    public static bool IsWithin(ReadOnlySpan<byte> name, ReadOnlySpan<byte> zone)
    {
        if (name.Length < zone.Length || !EqualsIgnoreCase(name[^zone.Length..], zone))
        {
            return false;
        }

        // The suffix must start at a label boundary.
        var p = 0;
        while (p < name.Length - zone.Length)
        {
            p += name[p] + 1;
        }

        return p == name.Length - zone.Length;
    }

    public static void ToLower(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        for (var i = 0; i < source.Length; i++)
        {
            destination[i] = Lower(source[i]);
        }
    }

    private static byte Lower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b + 32) : b;
}
