using System.Buffers.Binary;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// The part of MessagePack that serf's RPC needs. Writing: maps, strings (as the old "raw" types, which
/// serf's codec reads), unsigned integers, arrays of strings. Reading: every type, into plain values
/// (<see cref="Dictionary{TKey,TValue}"/> with string keys, <see cref="List{T}"/>, string, byte[],
/// long, ulong, double, bool, null), reporting "need more bytes" instead of failing on a partial value.
/// </summary>
internal static class MsgPack
{
    public static void WriteMapHeader(List<byte> o, int count)
    {
        if (count < 16)
        {
            o.Add((byte)(0x80 | count));
        }
        else
        {
            o.Add(0xde);
            o.Add((byte)(count >> 8));
            o.Add((byte)count);
        }
    }

    public static void WriteArrayHeader(List<byte> o, int count)
    {
        if (count < 16)
        {
            o.Add((byte)(0x90 | count));
        }
        else
        {
            o.Add(0xdc);
            o.Add((byte)(count >> 8));
            o.Add((byte)count);
        }
    }

    public static void WriteString(List<byte> o, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length < 32)
        {
            o.Add((byte)(0xa0 | bytes.Length));
        }
        else if (bytes.Length <= ushort.MaxValue)
        {
            o.Add(0xda);
            o.Add((byte)(bytes.Length >> 8));
            o.Add((byte)bytes.Length);
        }
        else
        {
            throw new ArgumentException("string too long for this writer", nameof(s));
        }

        o.AddRange(bytes);
    }

    public static void WriteUInt(List<byte> o, ulong v)
    {
        if (v < 128)
        {
            o.Add((byte)v);
            return;
        }

        o.Add(0xcf);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, v);
        o.AddRange(b.ToArray());
    }

    /// <summary>Reads one value at <paramref name="pos"/>; false (and <paramref name="pos"/> unchanged) when <paramref name="data"/> ends inside it.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, ref int pos, out object? value)
    {
        var p = pos;
        try
        {
            value = Read(data, ref p);
        }
        catch (IndexOutOfRangeException)
        {
            value = null;
            return false;
        }
        catch (ArgumentOutOfRangeException)
        {
            value = null;
            return false;
        }

        pos = p;
        return true;
    }

    private static object? Read(ReadOnlySpan<byte> d, ref int p)
    {
        var b = d[p++];
        switch (b)
        {
            case <= 0x7f: return (long)b;
            case >= 0x80 and <= 0x8f: return ReadMap(d, ref p, b & 0x0f);
            case >= 0x90 and <= 0x9f: return ReadArray(d, ref p, b & 0x0f);
            case >= 0xa0 and <= 0xbf: return ReadString(d, ref p, b & 0x1f);
            case >= 0xe0: return (long)(sbyte)b;
        }

        return b switch
        {
            0xc0 => null,
            0xc2 => false,
            0xc3 => true,
            0xc4 => ReadBytes(d, ref p, Take(d, ref p, 1)[0]),
            0xc5 => ReadBytes(d, ref p, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref p, 2))),
            0xc6 => ReadBytes(d, ref p, checked((int)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref p, 4)))),
            0xc7 => SkipExt(d, ref p, Take(d, ref p, 1)[0]),
            0xc8 => SkipExt(d, ref p, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref p, 2))),
            0xc9 => SkipExt(d, ref p, checked((int)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref p, 4)))),
            0xca => (double)BinaryPrimitives.ReadSingleBigEndian(Take(d, ref p, 4)),
            0xcb => BinaryPrimitives.ReadDoubleBigEndian(Take(d, ref p, 8)),
            0xcc => (long)Take(d, ref p, 1)[0],
            0xcd => (long)BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref p, 2)),
            0xce => (long)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref p, 4)),
            0xcf => BinaryPrimitives.ReadUInt64BigEndian(Take(d, ref p, 8)),
            0xd0 => (long)(sbyte)Take(d, ref p, 1)[0],
            0xd1 => (long)BinaryPrimitives.ReadInt16BigEndian(Take(d, ref p, 2)),
            0xd2 => (long)BinaryPrimitives.ReadInt32BigEndian(Take(d, ref p, 4)),
            0xd3 => BinaryPrimitives.ReadInt64BigEndian(Take(d, ref p, 8)),
            0xd4 => SkipExt(d, ref p, 1),
            0xd5 => SkipExt(d, ref p, 2),
            0xd6 => SkipExt(d, ref p, 4),
            0xd7 => SkipExt(d, ref p, 8),
            0xd8 => SkipExt(d, ref p, 16),
            0xd9 => ReadString(d, ref p, Take(d, ref p, 1)[0]),
            0xda => ReadString(d, ref p, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref p, 2))),
            0xdb => ReadString(d, ref p, checked((int)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref p, 4)))),
            0xdc => ReadArray(d, ref p, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref p, 2))),
            0xdd => ReadArray(d, ref p, checked((int)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref p, 4)))),
            0xde => ReadMap(d, ref p, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref p, 2))),
            0xdf => ReadMap(d, ref p, checked((int)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref p, 4)))),
            _ => throw new InvalidDataException($"msgpack: unknown type byte 0x{b:x2}"),
        };
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> d, ref int p, int n)
    {
        var s = d.Slice(p, n);
        p += n;
        return s;
    }

    private static string ReadString(ReadOnlySpan<byte> d, ref int p, int n) => Encoding.UTF8.GetString(Take(d, ref p, n));

    private static byte[] ReadBytes(ReadOnlySpan<byte> d, ref int p, int n) => Take(d, ref p, n).ToArray();

    private static object? SkipExt(ReadOnlySpan<byte> d, ref int p, int n)
    {
        Take(d, ref p, n + 1); // type byte, then data
        return null;
    }

    private static List<object?> ReadArray(ReadOnlySpan<byte> d, ref int p, int n)
    {
        var list = new List<object?>(Math.Min(n, 1024));
        for (var i = 0; i < n; i++)
        {
            list.Add(Read(d, ref p));
        }

        return list;
    }

    private static Dictionary<string, object?> ReadMap(ReadOnlySpan<byte> d, ref int p, int n)
    {
        var map = new Dictionary<string, object?>(Math.Min(n, 1024), StringComparer.Ordinal);
        for (var i = 0; i < n; i++)
        {
            var key = Read(d, ref p);
            var keyText = key switch
            {
                string s => s,
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                _ => Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture) ?? "",
            };
            map[keyText] = Read(d, ref p);
        }

        return map;
    }
}
