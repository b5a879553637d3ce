using System.Buffers.Binary;

namespace StreamFarm.Dns;

/// <summary>
/// Strict reader of DNS queries. Hand-written: it is the hot path of the responder and must be
/// strict in ways resolver libraries are not (one question, no compression in the question, no
/// answer or authority records, at most one OPT, nothing after it). Every length is checked before
/// it is used, and work is bounded by the datagram size: no loops to follow.
/// </summary>
internal static class DnsQueryReader
{
    public static QueryStatus Read(ReadOnlySpan<byte> m, out DnsQuery q)
    {
        q = default;
        if (m.Length < DnsWire.HeaderBytes)
        {
            return QueryStatus.Drop;
        }

        q.Id = BinaryPrimitives.ReadUInt16BigEndian(m);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(m[2..]);
        if ((flags & 0x8000) != 0)
        {
            return QueryStatus.Drop; // a response: never answer one (no reflection loops)
        }

        q.RecursionDesired = (flags & 0x0100) != 0;
        q.CheckingDisabled = (flags & 0x0010) != 0;
        var opcode = (flags >> 11) & 0xF;
        if (opcode != 0)
        {
            return QueryStatus.NotImp;
        }

        var qd = BinaryPrimitives.ReadUInt16BigEndian(m[4..]);
        var an = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        var ns = BinaryPrimitives.ReadUInt16BigEndian(m[8..]);
        var ar = BinaryPrimitives.ReadUInt16BigEndian(m[10..]);
        if (qd != 1 || an != 0 || ns > 1 || ar > 1)
        {
            return QueryStatus.FormErr;
        }

        var p = DnsWire.HeaderBytes;
        if (!ReadName(m, ref p, allowCompression: false))
        {
            return QueryStatus.FormErr;
        }

        q.NameOffset = DnsWire.HeaderBytes;
        q.NameLength = p - DnsWire.HeaderBytes;
        if (m.Length - p < 4)
        {
            return QueryStatus.FormErr;
        }

        q.Type = BinaryPrimitives.ReadUInt16BigEndian(m[p..]);
        q.Class = BinaryPrimitives.ReadUInt16BigEndian(m[(p + 2)..]);
        p += 4;
        q.QuestionEnd = p;
        if (ns == 1 && (q.Type != DnsWire.TypeIxfr || !SkipIxfrSoa(m, ref p)))
        {
            return QueryStatus.FormErr; // only an IXFR query carries a record in its authority section
        }

        if (ar == 1)
        {
            // The only additional record a query may carry is EDNS's OPT, owned by the root.
            if (m.Length - p < 11 || m[p] != 0)
            {
                return QueryStatus.FormErr;
            }

            var type = BinaryPrimitives.ReadUInt16BigEndian(m[(p + 1)..]);
            if (type != DnsWire.TypeOpt)
            {
                return QueryStatus.FormErr;
            }

            q.HasEdns = true;
            q.EdnsUdpSize = BinaryPrimitives.ReadUInt16BigEndian(m[(p + 3)..]);
            var version = m[p + 6];
            q.DnssecOk = (m[p + 7] & 0x80) != 0;
            var rdLength = BinaryPrimitives.ReadUInt16BigEndian(m[(p + 9)..]);
            p += 11;
            if (rdLength != m.Length - p || !OptionsWellFormed(m.Slice(p, rdLength)))
            {
                return QueryStatus.FormErr;
            }

            p += rdLength;
            if (version != 0)
            {
                return QueryStatus.BadVers;
            }
        }

        return p == m.Length ? QueryStatus.Ok : QueryStatus.FormErr;
    }

    /// <summary>Walks an uncompressed name: labels of 1-63 bytes, 255 bytes in all, ending in the root.</summary>
    public static bool ReadName(ReadOnlySpan<byte> m, ref int p, bool allowCompression)
    {
        var total = 0;
        while (true)
        {
            if (p >= m.Length)
            {
                return false;
            }

            var len = m[p];
            if (len == 0)
            {
                p++;
                return total + 1 <= DnsWire.MaxNameBytes;
            }

            if ((len & 0xC0) != 0)
            {
                return false; // a pointer (no compression in a question) or a reserved label type
            }

            total += len + 1;
            if (total + 1 > DnsWire.MaxNameBytes || p + 1 + len > m.Length)
            {
                return false;
            }

            p += 1 + len;
        }
    }

    /// <summary>
    /// IXFR's authority record (RFC 1995 section 3): the client's SOA for the zone, owned by the
    /// question's name (as a pointer to it, or written out). It is read to be skipped: transfers are
    /// refused, whatever serial the client has.
    /// </summary>
    private static bool SkipIxfrSoa(ReadOnlySpan<byte> m, ref int p)
    {
        if (m.Length - p >= 2 && m[p] == 0xC0 && m[p + 1] == DnsWire.HeaderBytes)
        {
            p += 2;
        }
        else if (!ReadName(m, ref p, allowCompression: false))
        {
            return false;
        }

        if (m.Length - p < 10 || BinaryPrimitives.ReadUInt16BigEndian(m[p..]) != DnsWire.TypeSoa)
        {
            return false;
        }

        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(m[(p + 8)..]);
        p += 10;
        if (rdLength > m.Length - p)
        {
            return false;
        }

        p += rdLength;
        return true;
    }

    private static bool OptionsWellFormed(ReadOnlySpan<byte> options)
    {
        while (!options.IsEmpty)
        {
            if (options.Length < 4)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(options[2..]);
            if (length > options.Length - 4)
            {
                return false;
            }

            options = options[(4 + length)..];
        }

        return true;
    }
}
