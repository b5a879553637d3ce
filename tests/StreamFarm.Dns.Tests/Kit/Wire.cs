using System.Buffers.Binary;
using System.Text;

namespace StreamFarm.Dns.Tests.Kit;

/// <summary>Hand-built DNS queries: every byte is chosen by the test, nothing by a library.</summary>
internal static class Wire
{
    public const ushort A = 1;
    public const ushort Ns = 2;
    public const ushort Cname = 5;
    public const ushort Soa = 6;
    public const ushort Mx = 15;
    public const ushort Txt = 16;
    public const ushort Aaaa = 28;
    public const ushort Srv = 33;
    public const ushort Opt = 41;
    public const ushort Ixfr = 251;
    public const ushort Axfr = 252;
    public const ushort Any = 255;
    public const ushort In = 1;
    public const ushort Chaos = 3;
    public const ushort Hesiod = 4;
    public const ushort ClassAny = 255;

    /// <summary>RD set, opcode QUERY.</summary>
    public const ushort RdFlag = 0x0100;

    public static byte[] Header(ushort id = 0x1234, ushort flags = RdFlag, ushort qd = 1, ushort an = 0, ushort ns = 0, ushort ar = 0)
    {
        var h = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(h, id);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), qd);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), an);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(8), ns);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(10), ar);
        return h;
    }

    /// <summary>A name in wire form with its case kept; "." or "" is the root.</summary>
    public static byte[] Name(string name)
    {
        var result = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var bytes = Encoding.ASCII.GetBytes(label);
            result.Add((byte)bytes.Length);
            result.AddRange(bytes);
        }

        result.Add(0);
        return [.. result];
    }

    /// <summary>A name of raw labels (any length, any bytes), ending in the root.</summary>
    public static byte[] Labels(params byte[][] labels)
    {
        var result = new List<byte>();
        foreach (var l in labels)
        {
            result.Add((byte)l.Length);
            result.AddRange(l);
        }

        result.Add(0);
        return [.. result];
    }

    public static byte[] U16(ushort v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, v);
        return b;
    }

    /// <summary>Type and class of a question.</summary>
    public static byte[] TypeClass(ushort type, ushort cls = In) => [.. U16(type), .. U16(cls)];

    /// <summary>An OPT pseudo-record (RFC 6891) owned by the root.</summary>
    public static byte[] OptRecord(ushort udpSize = 1232, byte version = 0, bool dnssecOk = false, byte[]? options = null, byte extendedRcode = 0, int? rdLength = null)
    {
        options ??= [];
        return [0, .. U16(Opt), .. U16(udpSize), extendedRcode, version, (byte)(dnssecOk ? 0x80 : 0), 0, .. U16((ushort)(rdLength ?? options.Length)), .. options];
    }

    /// <summary>One EDNS option: code, length, data.</summary>
    public static byte[] EdnsOption(ushort code, byte[] data) => [.. U16(code), .. U16((ushort)data.Length), .. data];

    /// <summary>An SOA record as an IXFR query carries it in its authority section (RFC 1995), owned by <paramref name="owner"/>.</summary>
    public static byte[] SoaRecord(byte[] owner, uint serial) =>
        [.. owner, .. TypeClass(Soa), 0, 0, 0, 0, .. U16(22), 0, 0, .. U32(serial), .. U32(0), .. U32(0), .. U32(0), .. U32(0)];

    public static byte[] U32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return b;
    }

    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    /// <summary>A standard query; with <paramref name="edns"/> an OPT record is added.</summary>
    public static byte[] Query(string name, ushort type, ushort cls = In, ushort id = 0x1234, ushort flags = RdFlag, bool edns = false, ushort udpSize = 1232, byte version = 0, byte[]? options = null) =>
        edns
            ? Concat(Header(id, flags, ar: 1), Name(name), TypeClass(type, cls), OptRecord(udpSize, version, options: options))
            : Concat(Header(id, flags), Name(name), TypeClass(type, cls));
}
