using System.Buffers.Binary;
using System.Net;
using System.Globalization;
using System.Text;

namespace StreamFarm.Dns.Tests.Kit;

/// <summary>
/// A strict parser of responses, written for the tests: every length is checked, compression
/// pointers must point backwards, record data must be exactly as long as RDLENGTH says, and nothing
/// may follow the last record. Any violation throws <see cref="FormatException"/>.
/// </summary>
internal sealed class DnsMessage
{
    private DnsMessage(byte[] bytes) => Bytes = bytes;

    public byte[] Bytes { get; }

    public ushort Id { get; private set; }

    public ushort Flags { get; private set; }

    public bool Qr => (Flags & 0x8000) != 0;

    public int Opcode => (Flags >> 11) & 0xF;

    public bool Aa => (Flags & 0x0400) != 0;

    public bool Tc => (Flags & 0x0200) != 0;

    public bool Rd => (Flags & 0x0100) != 0;

    public bool Ra => (Flags & 0x0080) != 0;

    public bool Z => (Flags & 0x0040) != 0;

    public bool Ad => (Flags & 0x0020) != 0;

    public bool Cd => (Flags & 0x0010) != 0;

    public int HeaderRcode => Flags & 0xF;

    public int QdCount { get; private set; }

    public int AnCount { get; private set; }

    public int NsCount { get; private set; }

    public int ArCount { get; private set; }

    public string? QuestionName { get; private set; }

    public ushort QuestionType { get; private set; }

    public ushort QuestionClass { get; private set; }

    public List<DnsRecord> Answers { get; } = [];

    public List<DnsRecord> Authority { get; } = [];

    public List<DnsRecord> Additional { get; } = [];

    public DnsRecord? Opt => Additional.SingleOrDefault(r => r.Type == Wire.Opt);

    /// <summary>The full RCODE: the header's four bits and, with EDNS, the OPT record's upper eight.</summary>
    public int Rcode => HeaderRcode | (Opt is { } opt ? (int)(opt.Ttl >> 24) << 4 : 0);

    public static DnsMessage Parse(ReadOnlySpan<byte> span)
    {
        var m = new DnsMessage(span.ToArray());
        var b = m.Bytes;
        Need(b, 0, 12);
        m.Id = BinaryPrimitives.ReadUInt16BigEndian(b);
        m.Flags = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(2));
        m.QdCount = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(4));
        m.AnCount = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(6));
        m.NsCount = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(8));
        m.ArCount = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(10));
        if (m.QdCount > 1)
        {
            throw new FormatException($"{m.QdCount} questions");
        }

        var p = 12;
        if (m.QdCount == 1)
        {
            m.QuestionName = ReadName(b, ref p, out _);
            Need(b, p, 4);
            m.QuestionType = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p));
            m.QuestionClass = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p + 2));
            p += 4;
        }

        ReadSection(b, ref p, m.AnCount, m.Answers);
        ReadSection(b, ref p, m.NsCount, m.Authority);
        ReadSection(b, ref p, m.ArCount, m.Additional);
        if (p != b.Length)
        {
            throw new FormatException($"{b.Length - p} bytes after the last record");
        }

        if (m.Additional.Count(r => r.Type == Wire.Opt) > 1)
        {
            throw new FormatException("more than one OPT record");
        }

        return m;
    }

    private static void ReadSection(byte[] b, ref int p, int count, List<DnsRecord> into)
    {
        for (var i = 0; i < count; i++)
        {
            into.Add(ReadRecord(b, ref p));
        }
    }

    private static DnsRecord ReadRecord(byte[] b, ref int p)
    {
        var name = ReadName(b, ref p, out _);
        Need(b, p, 10);
        var type = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p));
        var cls = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p + 2));
        var ttl = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(p + 4));
        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p + 8));
        p += 10;
        Need(b, p, rdLength);
        var start = p;
        var end = p + rdLength;
        var record = new DnsRecord { Name = name, Type = type, Class = cls, Ttl = ttl, Data = b.AsSpan(start, rdLength).ToArray() };
        switch (type)
        {
            case Wire.A or Wire.Aaaa:
                if (rdLength != (type == Wire.A ? 4 : 16))
                {
                    throw new FormatException($"address of {rdLength} bytes");
                }

                record.Address = new IPAddress(b.AsSpan(start, rdLength));
                p = end;
                break;
            case Wire.Ns:
                record.Target = ReadName(b, ref p, out _);
                break;
            case Wire.Srv:
                Need(b, p, 6);
                record.Priority = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p));
                record.Weight = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p + 2));
                record.Port = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p + 4));
                p += 6;
                record.Target = ReadName(b, ref p, out var compressed);
                record.TargetCompressed = compressed;
                break;
            case Wire.Soa:
                record.Target = ReadName(b, ref p, out _);
                record.Mailbox = ReadName(b, ref p, out _);
                Need(b, p, 20);
                record.Serial = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(p));
                record.Refresh = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(p + 4));
                record.Retry = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(p + 8));
                record.Expire = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(p + 12));
                record.Minimum = BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan(p + 16));
                p += 20;
                break;
            default:
                p = end;
                break;
        }

        if (p != end)
        {
            throw new FormatException($"type {type}: RDLENGTH {rdLength}, data {p - start}");
        }

        return record;
    }

    /// <summary>A name, following backward pointers; labels joined by dots, case kept, the root as "".</summary>
    private static string ReadName(byte[] b, ref int p, out bool compressed)
    {
        compressed = false;
        var sb = new StringBuilder();
        var total = 0;
        var at = p;
        var limit = p; // a pointer must point before the name that uses it
        var jumped = false;
        while (true)
        {
            Need(b, at, 1);
            var len = b[at];
            if ((len & 0xC0) == 0xC0)
            {
                Need(b, at, 2);
                var target = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(at)) & 0x3FFF;
                if (target >= limit)
                {
                    throw new FormatException($"pointer to {target} from {at} is not backwards");
                }

                if (!jumped)
                {
                    p = at + 2;
                }

                jumped = true;
                compressed = true;
                limit = target;
                at = target;
                continue;
            }

            if ((len & 0xC0) != 0)
            {
                throw new FormatException($"label type 0x{len:X2}");
            }

            if (len == 0)
            {
                if (!jumped)
                {
                    p = at + 1;
                }

                if (total + 1 > 255)
                {
                    throw new FormatException("name over 255 bytes");
                }

                return sb.ToString();
            }

            Need(b, at + 1, len);
            total += len + 1;
            if (sb.Length > 0)
            {
                sb.Append('.');
            }

            foreach (var c in b.AsSpan(at + 1, len))
            {
                // As in zone files and dig: a dot or backslash inside a label is escaped, other bytes outside printable ASCII are \DDD.
                _ = c switch
                {
                    (byte)'.' or (byte)'\\' => sb.Append('\\').Append((char)c),
                    < 0x21 or > 0x7E => sb.Append('\\').Append(c.ToString("D3", CultureInfo.InvariantCulture)),
                    _ => sb.Append((char)c),
                };
            }

            at += 1 + len;
        }
    }

    private static void Need(byte[] b, int p, int n)
    {
        if (p < 0 || n < 0 || b.Length - p < n)
        {
            throw new FormatException($"{n} bytes needed at {p}, message of {b.Length}");
        }
    }
}

/// <summary>One resource record; the decoded fields depend on its type.</summary>
internal sealed class DnsRecord
{
    public required string Name { get; init; }

    public required ushort Type { get; init; }

    public required ushort Class { get; init; }

    public required uint Ttl { get; init; }

    public required byte[] Data { get; init; }

    /// <summary>A and AAAA.</summary>
    public IPAddress? Address { get; set; }

    /// <summary>NS target, SRV target, SOA primary name server.</summary>
    public string? Target { get; set; }

    public bool TargetCompressed { get; set; }

    public ushort Priority { get; set; }

    public ushort Weight { get; set; }

    public ushort Port { get; set; }

    public string? Mailbox { get; set; }

    public uint Serial { get; set; }

    public uint Refresh { get; set; }

    public uint Retry { get; set; }

    public uint Expire { get; set; }

    public uint Minimum { get; set; }

    public override string ToString() => $"{Name} {Ttl} {Class} {Type} {Address?.ToString() ?? Target}";
}
