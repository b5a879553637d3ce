using System.Buffers.Binary;
using StreamFarm.Protocol;

namespace StreamFarm.Dns;

/// <summary>
/// The authoritative answer to one query, computed from the farm table: a pure function of the
/// query bytes, the client address and the current zone, writing into a caller's buffer (no
/// allocation per query). Hand-written codec: the benchmark against Knot decides the hot path, see
/// docs/architecture.md ("DNS system").
/// </summary>
public sealed class DnsResponder
{
    private readonly DnsOptions _options;
    private readonly Func<FarmSnapshot> _farm;
    private readonly LoadBalancer _balancer;
    private readonly uint _ttl;
    private readonly uint _negativeTtl;
    private ZoneData? _zone;

    public DnsResponder(DnsOptions options, Func<FarmSnapshot> farm, Random? random = null)
    {
        options.Validate();
        _options = options;
        _farm = farm;
        _balancer = new LoadBalancer(options, random ?? new Random());
        _ttl = (uint)options.Ttl.TotalSeconds;
        _negativeTtl = (uint)options.NegativeTtl.TotalSeconds;
    }

    /// <summary>
    /// Writes the response to <paramref name="query"/> into <paramref name="response"/> (64 KiB:
    /// answers are built whole, then truncated for UDP) and returns its length, or 0 when nothing must
    /// be sent.
    /// </summary>
    public int Respond(ReadOnlySpan<byte> query, Span<byte> response, ReadOnlySpan<byte> client, bool tcp)
    {
        if (response.Length < 65536)
        {
            throw new ArgumentException("the response buffer must hold 64 KiB", nameof(response));
        }

        var status = DnsQueryReader.Read(query, out var q);
        switch (status)
        {
            case QueryStatus.Drop:
                return 0;
            case QueryStatus.FormErr:
                return HeaderOnly(query, response, DnsWire.RcodeFormErr);
            case QueryStatus.NotImp:
                return HeaderOnly(query, response, DnsWire.RcodeNotImp);
        }

        var limit = tcp ? Math.Min(response.Length, 65535) : q.HasEdns ? Math.Clamp((int)q.EdnsUdpSize, DnsWire.ClassicUdpBytes, DnsWire.MaxUdpBytes) : DnsWire.ClassicUdpBytes;
        var w = new Writer(response, query, q, limit);
        if (status == QueryStatus.BadVers)
        {
            w.Begin(DnsWire.RcodeBadVers, authoritative: false);
            return w.Finish();
        }

        if (q.Type is 0 or DnsWire.TypeAxfr or DnsWire.TypeIxfr)
        {
            // As Knot answers: QTYPE 0 is not a type (NOTIMP); AXFR is not defined over UDP (RFC
            // 5936 section 4.2, NOTIMP); zone transfers are not served (NOTAUTH). Question echoed.
            w.Begin(q.Type == DnsWire.TypeIxfr || (q.Type == DnsWire.TypeAxfr && tcp) ? DnsWire.RcodeNotAuth : DnsWire.RcodeNotImp, authoritative: false);
            return w.Finish();
        }

        Span<byte> name = stackalloc byte[q.NameLength];
        DnsNames.ToLower(query.Slice(q.NameOffset, q.NameLength), name);
        var zone = Zone();
        if (q.Class != DnsWire.ClassIn && q.Class != DnsWire.ClassAny || !DnsNames.IsWithin(name, zone.Apex))
        {
            w.Begin(DnsWire.RcodeRefused, authoritative: false); // not ours, and no recursion here
            return w.Finish();
        }

        w.ZoneOffset = q.NameOffset + q.NameLength - zone.Apex.Length;
        var kind = zone.Find(name, out var server);
        if (kind == NameKind.None)
        {
            w.Begin(DnsWire.RcodeNxDomain, authoritative: true);
            w.Soa(zone, _negativeTtl, _negativeTtl, authority: true);
            return w.Finish();
        }

        w.Begin(DnsWire.RcodeNoError, authoritative: true);
        var type = q.Type;
        var answered = kind switch
        {
            NameKind.Apex when type is DnsWire.TypeSoa or DnsWire.TypeAny => w.Soa(zone, _ttl, _negativeTtl, authority: false),
            NameKind.Apex when type == DnsWire.TypeNs => Ns(ref w, zone),
            NameKind.Service when type is DnsWire.TypeA or DnsWire.TypeAaaa or DnsWire.TypeAny => ServiceAddresses(ref w, zone, client, type),
            NameKind.SrvTcp when type is DnsWire.TypeSrv or DnsWire.TypeAny => Srv(ref w, zone, client, ws: false),
            NameKind.SrvWs when type is DnsWire.TypeSrv or DnsWire.TypeAny => Srv(ref w, zone, client, ws: true),
            NameKind.NameServer when zone.NameServer is { } ns && Matches(type, ns) => w.Address(ns, _ttl),
            NameKind.Server when server is { Alive: true } s && Matches(type, s.Ip) => w.Address(s.Ip, _ttl),
            _ => 0,
        };
        if (answered == 0)
        {
            w.Soa(zone, _negativeTtl, _negativeTtl, authority: true); // NODATA: the name exists, not with this type
        }

        return w.Finish();
    }

    /// <summary>The "slip" answer of rate limiting: the question with TC set and no records.</summary>
    public static int Truncated(ReadOnlySpan<byte> query, Span<byte> response)
    {
        if (DnsQueryReader.Read(query, out var q) != QueryStatus.Ok)
        {
            return 0;
        }

        query[..q.QuestionEnd].CopyTo(response);
        response[2] = (byte)(0x80 | 0x02 | (q.RecursionDesired ? 0x01 : 0));
        response[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], 1);
        response[6..12].Clear();
        return q.QuestionEnd;
    }

    private static bool Matches(ushort type, byte[] ip) =>
        type == DnsWire.TypeAny || (type == DnsWire.TypeA && ip.Length == 4) || (type == DnsWire.TypeAaaa && ip.Length == 16);

    private int ServiceAddresses(ref Writer w, ZoneData zone, ReadOnlySpan<byte> client, ushort type)
    {
        // Choose among the servers of the asked family, so that an A query is not answered NODATA
        // while an IPv4 server is healthy. RFC 8482: ANY gets one RRset, the IPv4 one if there is any.
        var servers = type switch
        {
            DnsWire.TypeA => zone.HealthyIpv4,
            DnsWire.TypeAaaa => zone.HealthyIpv6,
            _ => zone.HealthyIpv4.Length > 0 ? zone.HealthyIpv4 : zone.HealthyIpv6,
        };
        Span<int> chosen = stackalloc int[32];
        var n = _balancer.Choose(servers, client, chosen);
        for (var i = 0; i < n; i++)
        {
            w.Address(servers[chosen[i]].Ip, _ttl);
        }

        return n;
    }

    private int Srv(ref Writer w, ZoneData zone, ReadOnlySpan<byte> client, bool ws)
    {
        var written = 0;
        var first = w.Position;
        var targets = ws ? zone.SrvWsServers : zone.SrvTcpServers; // servers with TLS only have no plain port to name
        foreach (var s in targets)
        {
            if (!w.HasRoom(300))
            {
                break; // a farm too large for one message: the answer holds what fits
            }

            // Weight: free capacity, scaled into 16 bits.
            var free = Math.Max(1, s.Capacity - s.Users);
            written += w.SrvRecord(zone, s, ws ? s.WsPort : s.TcpPort, (ushort)Math.Min(65535, free), _ttl);
        }

        // Additional section: each target's address (as Knot gives the glue), owned by a pointer to
        // the target in its SRV record. The records above are consecutive, so each target's offset
        // follows from the lengths alone.
        var at = first;
        for (var i = 0; i < written; i++)
        {
            var s = targets[i];
            var target = at + Writer.SrvTargetOffset;
            at = target + s.Labels.Length + zone.Apex.Length;
            w.AdditionalAddress(target, s.Ip, _ttl);
        }

        return written;
    }

    private int Ns(ref Writer w, ZoneData zone)
    {
        var target = w.NsRecord(zone, _ttl);
        if (zone.NameServer is { } ns)
        {
            w.AdditionalAddress(target, ns, _ttl);
        }

        return 1;
    }

    private ZoneData Zone()
    {
        var snapshot = _farm();
        var zone = Volatile.Read(ref _zone);
        if (zone is null || zone.Version != snapshot.Version)
        {
            zone = new ZoneData(_options, snapshot, ZoneSerial.Of(snapshot));
            Volatile.Write(ref _zone, zone);
        }

        return zone;
    }

    /// <summary>FORMERR / NOTIMP: the header alone (id and opcode echoed), no records.</summary>
    private static int HeaderOnly(ReadOnlySpan<byte> query, Span<byte> response, int rcode)
    {
        query[..2].CopyTo(response);
        var opcode = (query[2] >> 3) & 0xF;
        var rd = query[2] & 0x01;
        response[2] = (byte)(0x80 | (opcode << 3) | rd);
        response[3] = (byte)rcode;
        response[4..12].Clear();
        return DnsWire.HeaderBytes;
    }

    /// <summary>
    /// Builds a response after the echoed question. Answer and authority records are written whole
    /// and truncated (TC, no records) in <see cref="Finish"/> when they do not fit the size limit;
    /// additional records are written only while they fit, and a dropped one never sets TC (RFC
    /// 2181 section 9: TC means the required records are not all there).
    /// </summary>
    private ref struct Writer
    {
        /// <summary>From the start of an SRV record to its target: owner pointer (2), fixed fields (10), priority, weight, port (6).</summary>
        public const int SrvTargetOffset = 18;

        private readonly Span<byte> _buffer;
        private readonly DnsQuery _q;
        private readonly int _limit;
        private int _pos;
        private int _answers;
        private int _authority;
        private int _additional;
        private int _rcode;

        public Writer(Span<byte> buffer, ReadOnlySpan<byte> query, DnsQuery q, int limit)
        {
            _buffer = buffer;
            _q = q;
            _limit = limit;
            query[..q.QuestionEnd].CopyTo(buffer); // id, flags (rewritten below), counts, question with its case
            _pos = q.QuestionEnd;
        }

        public int ZoneOffset { get; set; }

        public readonly int Position => _pos;

        private readonly int OptBytes => _q.HasEdns ? 11 : 0;

        public readonly bool HasRoom(int bytes) => _pos + bytes < Math.Min(_buffer.Length, 65535) - 16;

        public void Begin(int rcode, bool authoritative)
        {
            _rcode = rcode;
            var flags = 0x8000 | (authoritative ? 0x0400 : 0) | (_q.RecursionDesired ? 0x0100 : 0) | (_q.CheckingDisabled ? 0x0010 : 0) | (rcode & 0xF);
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[2..], (ushort)flags);
        }

        public int Address(byte[] ip, uint ttl)
        {
            Owner();
            Fixed(ip.Length == 4 ? DnsWire.TypeA : DnsWire.TypeAaaa, ttl, (ushort)ip.Length);
            ip.CopyTo(_buffer[_pos..]);
            _pos += ip.Length;
            _answers++;
            return 1;
        }

        /// <summary>Writes the NS record; returns where its target name is, for the glue's owner.</summary>
        public int NsRecord(ZoneData zone, uint ttl)
        {
            Owner();
            var rd = Fixed(DnsWire.TypeNs, ttl, 0);
            var start = _pos;
            InZone(zone.Ns, zone);
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[rd..], (ushort)(_pos - start));
            _answers++;
            return start;
        }

        /// <summary>
        /// An A or AAAA record in the additional section, owned by a pointer to a name already in the
        /// message; left out when it would not fit the limit (with the OPT record still to come), or
        /// when its owner lies beyond what a compression pointer reaches (16 KiB, a TCP answer of
        /// some 500 SRV records).
        /// </summary>
        public void AdditionalAddress(int ownerOffset, byte[] ip, uint ttl)
        {
            if (_pos + 2 + 10 + ip.Length + OptBytes > _limit || ownerOffset > 0x3FFF)
            {
                return;
            }

            Pointer(ownerOffset);
            Fixed(ip.Length == 4 ? DnsWire.TypeA : DnsWire.TypeAaaa, ttl, (ushort)ip.Length);
            ip.CopyTo(_buffer[_pos..]);
            _pos += ip.Length;
            _additional++;
        }

        public int SrvRecord(ZoneData zone, ZoneData.Server s, ushort port, ushort weight, uint ttl)
        {
            Owner();
            var rd = Fixed(DnsWire.TypeSrv, ttl, 0);
            var start = _pos;
            U16(0); // priority
            U16(weight);
            U16(port);

            // RFC 2782: the target is not compressed.
            s.Labels.CopyTo(_buffer[_pos..]);
            _pos += s.Labels.Length;
            zone.Apex.CopyTo(_buffer[_pos..]);
            _pos += zone.Apex.Length;
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[rd..], (ushort)(_pos - start));
            _answers++;
            return 1;
        }

        public int Soa(ZoneData zone, uint ttl, uint minimum, bool authority)
        {
            // Owner: the apex, a pointer into the question.
            Pointer(ZoneOffset);
            var rd = Fixed(DnsWire.TypeSoa, ttl, 0);
            var start = _pos;
            InZone(zone.Ns, zone);
            _buffer[_pos++] = 10;
            "hostmaster"u8.CopyTo(_buffer[_pos..]);
            _pos += 10;
            Pointer(ZoneOffset);
            U32(zone.Serial);
            U32(60);  // refresh
            U32(30);  // retry
            U32(600); // expire
            U32(minimum); // the negative TTL (RFC 2308), also when the SOA itself is the answer
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[rd..], (ushort)(_pos - start));
            if (authority)
            {
                _authority++;
            }
            else
            {
                _answers++;
            }

            return 1;
        }

        /// <summary>Sets the counts, adds OPT when the query had EDNS, truncates (TC) when over the limit.</summary>
        public int Finish()
        {
            if (_pos + OptBytes > _limit)
            {
                _pos = _q.QuestionEnd;
                _answers = _authority = _additional = 0;
                _buffer[2] |= 0x02; // TC: the whole answer is there over TCP
            }

            BinaryPrimitives.WriteUInt16BigEndian(_buffer[4..], 1);
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[6..], (ushort)_answers);
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[8..], (ushort)_authority);
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[10..], (ushort)(_additional + (_q.HasEdns ? 1 : 0)));
            if (_q.HasEdns)
            {
                _buffer[_pos++] = 0; // root
                U16(DnsWire.TypeOpt);
                U16(DnsWire.MaxUdpBytes);
                _buffer[_pos++] = (byte)(_rcode >> 4); // extended rcode
                _buffer[_pos++] = 0; // version
                U16(_q.DnssecOk ? (ushort)0x8000 : (ushort)0); // flags: the DO bit is copied (RFC 3225)
                U16(0); // no options
            }

            return _pos;
        }

        private void Owner() => Pointer(_q.NameOffset);

        private void Pointer(int offset)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[_pos..], (ushort)(0xC000 | offset));
            _pos += 2;
        }

        /// <summary>Type, class, TTL and RDLENGTH; returns where RDLENGTH is, to patch it.</summary>
        private int Fixed(ushort type, uint ttl, ushort rdLength)
        {
            U16(type);
            U16(DnsWire.ClassIn);
            U32(ttl);
            var at = _pos;
            U16(rdLength);
            return at;
        }

        /// <summary>A name under the zone: its own labels, then a pointer to the zone in the question.</summary>
        private void InZone(byte[] wire, ZoneData zone)
        {
            var prefix = wire.Length - zone.Apex.Length;
            wire.AsSpan(0, prefix).CopyTo(_buffer[_pos..]);
            _pos += prefix;
            Pointer(ZoneOffset);
        }

        private void U16(ushort v)
        {
            BinaryPrimitives.WriteUInt16BigEndian(_buffer[_pos..], v);
            _pos += 2;
        }

        private void U32(uint v)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer[_pos..], v);
            _pos += 4;
        }
    }
}
