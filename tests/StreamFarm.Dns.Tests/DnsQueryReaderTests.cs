using System.Buffers.Binary;
using StreamFarm.Dns.Tests.Kit;
using static StreamFarm.Dns.Tests.Kit.Wire;

namespace StreamFarm.Dns.Tests;

/// <summary>
/// The strict query reader, fed hand-built bytes: what it accepts (and the fields it reads), what it
/// rejects and how the responder then answers; and a seeded fuzz loop over random and mutated
/// queries, none of which may throw or produce a response that is not a well-formed DNS message.
/// </summary>
public sealed class DnsQueryReaderTests
{
    private static readonly byte[] Label63 = [.. Enumerable.Repeat((byte)'a', 63)];
    private static readonly byte[] Label64 = [.. Enumerable.Repeat((byte)'b', 64)];

    /// <summary>Queries the reader must accept.</summary>
    private static readonly Dictionary<string, byte[]> Valid = new()
    {
        ["A"] = Query("stream.farm.test", A),
        ["AAAA with EDNS"] = Query("stream.farm.test", Aaaa, edns: true),
        ["EDNS with a cookie option"] = Query("stream.farm.test", A, edns: true, options: EdnsOption(10, [1, 2, 3, 4, 5, 6, 7, 8])),
        ["EDNS with two options"] = Query("stream.farm.test", A, edns: true, options: Concat(EdnsOption(10, [1, 2, 3, 4, 5, 6, 7, 8]), EdnsOption(3, []))),
        ["EDNS with an empty option"] = Query("stream.farm.test", A, edns: true, options: EdnsOption(12, [])),
        ["EDNS UDP size 0"] = Query("stream.farm.test", A, edns: true, udpSize: 0),
        ["EDNS DO bit"] = Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(dnssecOk: true)),
        ["root name"] = Query(".", Soa),
        ["mixed case"] = Query("StReAm.FaRm.TeSt", A),
        ["label of 63 bytes"] = Concat(Header(), Labels(Label63, "farm"u8.ToArray(), "test"u8.ToArray()), TypeClass(A)),
        ["name of exactly 255 bytes"] = Concat(Header(), Labels(Label63, Label63, Label63, [.. Enumerable.Repeat((byte)'c', 61)]), TypeClass(A)),
        ["binary label bytes"] = Concat(Header(), Labels([0, (byte)'.', 0xFF, 0xC0], "farm"u8.ToArray(), "test"u8.ToArray()), TypeClass(A)),
        ["class CHAOS"] = Query("version.bind", Txt, Chaos),
        ["no flags at all"] = Query("stream.farm.test", A, flags: 0),
        ["AA, TC, CD and Z set"] = Query("stream.farm.test", A, flags: 0x0400 | 0x0200 | 0x0100 | 0x0040 | 0x0010),
        ["extended RCODE bits in OPT"] = Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(extendedRcode: 7)),
    };

    /// <summary>Queries the reader must reject, with the status it must give.</summary>
    private static readonly Dictionary<string, (byte[] Bytes, QueryStatus Status)> Invalid = new()
    {
        ["empty"] = ([], QueryStatus.Drop),
        ["one byte"] = ([0x12], QueryStatus.Drop),
        ["eleven bytes"] = (Header()[..11], QueryStatus.Drop),
        ["QR set"] = (Query("stream.farm.test", A, flags: 0x8100), QueryStatus.Drop),
        ["QR set and opcode UPDATE"] = (Query("stream.farm.test", A, flags: 0x8000 | (5 << 11)), QueryStatus.Drop),
        ["QR set, header only"] = (Header(flags: 0x8000, qd: 0), QueryStatus.Drop),
        ["opcode IQUERY"] = (Query("stream.farm.test", A, flags: 1 << 11), QueryStatus.NotImp),
        ["opcode STATUS"] = (Query("stream.farm.test", A, flags: 2 << 11), QueryStatus.NotImp),
        ["opcode NOTIFY"] = (Query("farm.test", Soa, flags: 4 << 11), QueryStatus.NotImp),
        ["opcode UPDATE"] = (Query("farm.test", Soa, flags: 5 << 11), QueryStatus.NotImp),
        ["opcode 15"] = (Query("farm.test", Soa, flags: 15 << 11), QueryStatus.NotImp),
        ["QDCOUNT 0"] = (Header(qd: 0), QueryStatus.FormErr),
        ["QDCOUNT 0 with a question anyway"] = (Concat(Header(qd: 0), Name("stream.farm.test"), TypeClass(A)), QueryStatus.FormErr),
        ["QDCOUNT 2"] = (Concat(Header(qd: 2), Name("stream.farm.test"), TypeClass(A), Name("farm.test"), TypeClass(Soa)), QueryStatus.FormErr),
        ["ANCOUNT 1"] = (Concat(Header(an: 1), Name("stream.farm.test"), TypeClass(A), Name("stream.farm.test"), TypeClass(A), [0, 0, 0, 5, 0, 4, 10, 0, 0, 1]), QueryStatus.FormErr),
        ["NSCOUNT 1 on an IXFR without the record"] = (Concat(Header(ns: 1), Name("farm.test"), TypeClass(Ixfr)), QueryStatus.FormErr),
        ["IXFR whose authority record is not an SOA"] = (Concat(Header(ns: 1), Name("farm.test"), TypeClass(Ixfr), [0xC0, 0x0C], TypeClass(Ns), [0, 0, 0, 5, 0, 1, 0]), QueryStatus.FormErr),
        ["IXFR whose SOA RDLENGTH runs past the end"] = (Concat(Header(ns: 1), Name("farm.test"), TypeClass(Ixfr), SoaRecord([0xC0, 0x0C], 7)[..^1]), QueryStatus.FormErr),
        ["IXFR SOA owned by a forward pointer"] = (Concat(Header(ns: 1), Name("farm.test"), TypeClass(Ixfr), SoaRecord([0xC0, 0x30], 7)), QueryStatus.FormErr),
        ["NSCOUNT 1"] = (Concat(Header(ns: 1), Name("stream.farm.test"), TypeClass(A), Name("farm.test"), TypeClass(Ns), [0, 0, 0, 5, 0, 1, 0]), QueryStatus.FormErr),
        ["ARCOUNT 2, two OPT records"] = (Concat(Header(ar: 2), Name("stream.farm.test"), TypeClass(A), OptRecord(), OptRecord()), QueryStatus.FormErr),
        ["header only"] = (Header(), QueryStatus.FormErr),
        ["compression pointer in the question"] = (Concat(Header(), [6, .. "stream"u8, 0xC0, 0x0C], TypeClass(A)), QueryStatus.FormErr),
        ["compression loop"] = (Concat(Header(), [0xC0, 0x0C], TypeClass(A)), QueryStatus.FormErr),
        ["two pointers pointing at each other"] = (Concat(Header(), [0xC0, 0x0E, 0xC0, 0x0C], TypeClass(A)), QueryStatus.FormErr),
        ["reserved label type 0x40"] = (Concat(Header(), [0x41, (byte)'a', 0], TypeClass(A)), QueryStatus.FormErr),
        ["reserved label type 0x80"] = (Concat(Header(), [0x81, (byte)'a', 0], TypeClass(A)), QueryStatus.FormErr),
        ["label of 64 bytes"] = (Concat(Header(), Labels(Label64, "farm"u8.ToArray(), "test"u8.ToArray()), TypeClass(A)), QueryStatus.FormErr),
        ["name of 256 bytes"] = (Concat(Header(), Labels(Label63, Label63, Label63, [.. Enumerable.Repeat((byte)'c', 62)]), TypeClass(A)), QueryStatus.FormErr),
        ["name of 257 bytes"] = (Concat(Header(), Labels(Label63, Label63, Label63, Label63), TypeClass(A)), QueryStatus.FormErr),
        ["name over 255 bytes in short labels"] = (Concat(Header(), Labels([.. Enumerable.Repeat("x"u8.ToArray(), 128)]), TypeClass(A)), QueryStatus.FormErr),
        ["name cut inside a label"] = (Concat(Header(), [6, .. "str"u8]), QueryStatus.FormErr),
        ["name without its root"] = (Concat(Header(), [6, .. "stream"u8]), QueryStatus.FormErr),
        ["label length past the end"] = (Concat(Header(), [60, .. "stream"u8, 0, 0, 1, 0, 1]), QueryStatus.FormErr),
        ["no type"] = (Concat(Header(), Name("stream.farm.test")), QueryStatus.FormErr),
        ["type cut"] = (Concat(Header(), Name("stream.farm.test"), [0]), QueryStatus.FormErr),
        ["class missing"] = (Concat(Header(), Name("stream.farm.test"), U16(A)), QueryStatus.FormErr),
        ["class cut"] = (Concat(Header(), Name("stream.farm.test"), U16(A), [0]), QueryStatus.FormErr),
        ["ARCOUNT 1 without a record"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A)), QueryStatus.FormErr),
        ["OPT cut to 10 bytes"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord()[..10]), QueryStatus.FormErr),
        ["OPT owned by a non-root name"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), [1, (byte)'a', .. OptRecord()]), QueryStatus.FormErr),
        ["OPT owned by a pointer"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), [0xC0, 0x0C, .. OptRecord()[1..]]), QueryStatus.FormErr),
        ["additional record of type A"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), [0, .. U16(A), .. U16(In), 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]), QueryStatus.FormErr),
        ["additional record of type TXT"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), [0, .. U16(Txt), .. U16(In), 0, 0, 0, 5, 0, 0]), QueryStatus.FormErr),
        ["OPT RDLENGTH past the end"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(rdLength: 4)), QueryStatus.FormErr),
        ["OPT RDLENGTH short of the end"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(options: EdnsOption(10, [1, 2, 3, 4, 5, 6, 7, 8]), rdLength: 4)), QueryStatus.FormErr),
        ["OPT RDLENGTH 65535"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(rdLength: 65535)), QueryStatus.FormErr),
        ["EDNS option length past the RDATA"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(options: [0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8])), QueryStatus.FormErr),
        ["EDNS option header cut"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(options: [0, 10, 0])), QueryStatus.FormErr),
        ["EDNS second option cut"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(options: [.. EdnsOption(3, []), 0, 10, 0, 8, 1, 2])), QueryStatus.FormErr),
        ["EDNS option length 65535"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(options: [0, 10, 0xFF, 0xFF, 1, 2, 3, 4])), QueryStatus.FormErr),
        ["EDNS version 1"] = (Query("stream.farm.test", A, edns: true, version: 1), QueryStatus.BadVers),
        ["EDNS version 255"] = (Query("stream.farm.test", A, edns: true, version: 255), QueryStatus.BadVers),
        ["EDNS version 1 with a bad option"] = (Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(version: 1, options: [0, 10, 0])), QueryStatus.FormErr),
        ["trailing byte"] = ([.. Query("stream.farm.test", A), 0], QueryStatus.FormErr),
        ["trailing garbage"] = ([.. Query("stream.farm.test", A), .. "garbage"u8], QueryStatus.FormErr),
        ["OPT with ARCOUNT 0"] = (Concat(Header(), Name("stream.farm.test"), TypeClass(A), OptRecord()), QueryStatus.FormErr),
        ["trailing garbage after OPT"] = ([.. Query("stream.farm.test", A, edns: true), 0xDE, 0xAD], QueryStatus.FormErr),
    };

    public static TheoryData<string> ValidNames => [.. Valid.Keys];

    public static TheoryData<string> InvalidNames => [.. Invalid.Keys];

    [Theory]
    [MemberData(nameof(ValidNames))]
    public void Read_ValidQuery_IsOkAndCoversTheWholeDatagram(string name)
    {
        var bytes = Valid[name];

        var status = DnsQueryReader.Read(bytes, out var q);

        Assert.Equal(QueryStatus.Ok, status);
        Assert.Equal(0x1234, q.Id);
        Assert.Equal(12, q.NameOffset);
        Assert.Equal(bytes[12..(12 + q.NameLength)], NameAt(bytes, 12));
        Assert.Equal(12 + q.NameLength + 4, q.QuestionEnd);
        Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(q.QuestionEnd - 4)), q.Type);
        Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(q.QuestionEnd - 2)), q.Class);
        Assert.Equal(bytes[11] == 1, q.HasEdns);
        Assert.Equal((bytes[2] & 0x01) != 0, q.RecursionDesired);
        Assert.Equal((bytes[3] & 0x10) != 0, q.CheckingDisabled);
        Assert.Equal(bytes.Length, q.HasEdns ? q.QuestionEnd + 11 + BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(q.QuestionEnd + 9)) : q.QuestionEnd);
    }

    [Fact]
    public void Read_EdnsFields_AreReadFromTheOptRecord()
    {
        var bytes = Concat(Header(flags: 0x0010, ar: 1), Name("stream.farm.test"), TypeClass(Aaaa, ClassAny), OptRecord(udpSize: 4096, dnssecOk: true, options: EdnsOption(10, [9, 9, 9, 9, 9, 9, 9, 9])));

        Assert.Equal(QueryStatus.Ok, DnsQueryReader.Read(bytes, out var q));

        Assert.True(q.HasEdns);
        Assert.Equal(4096, q.EdnsUdpSize);
        Assert.True(q.DnssecOk);
        Assert.False(q.RecursionDesired);
        Assert.True(q.CheckingDisabled);
        Assert.Equal(Aaaa, q.Type);
        Assert.Equal(ClassAny, q.Class);
        Assert.Equal(18, q.NameLength);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Read_IxfrWithTheClientsSoaInAuthority_IsOk(bool ownerWrittenOut, bool edns)
    {
        var owner = ownerWrittenOut ? Name("farm.test") : [0xC0, 0x0C];
        var bytes = Concat(Header(ns: 1, ar: (ushort)(edns ? 1 : 0)), Name("farm.test"), TypeClass(Ixfr), SoaRecord(owner, 42), edns ? OptRecord(udpSize: 4096) : []);

        Assert.Equal(QueryStatus.Ok, DnsQueryReader.Read(bytes, out var q));

        Assert.Equal(Ixfr, q.Type);
        Assert.Equal(12 + 11 + 4, q.QuestionEnd);
        Assert.Equal(edns, q.HasEdns);
    }

    [Fact]
    public void Read_WithoutEdns_HasNoEdnsFields()
    {
        Assert.Equal(QueryStatus.Ok, DnsQueryReader.Read(Query("stream.farm.test", A, id: 0xBEEF), out var q));

        Assert.Equal(0xBEEF, q.Id);
        Assert.False(q.HasEdns);
        Assert.Equal(0, q.EdnsUdpSize);
        Assert.False(q.DnssecOk);
        Assert.True(q.RecursionDesired);
    }

    [Theory]
    [MemberData(nameof(InvalidNames))]
    public void Read_InvalidQuery_GivesItsStatus(string name)
    {
        var (bytes, expected) = Invalid[name];

        Assert.Equal(expected, DnsQueryReader.Read(bytes, out _));
    }

    [Theory]
    [MemberData(nameof(InvalidNames))]
    public void Respond_InvalidQuery_IsDroppedOrAnsweredWithItsRcode(string name)
    {
        var (bytes, expected) = Invalid[name];
        var responder = Farm.Responder(Farm.Healthy(3));

        var raw = Ask.Raw(responder, bytes);

        if (expected == QueryStatus.Drop)
        {
            Assert.Empty(raw);
            return;
        }

        var m = DnsMessage.Parse(raw);
        Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(bytes), m.Id);
        Assert.True(m.Qr);
        Assert.False(m.Aa);
        Assert.False(m.Ra);
        Assert.False(m.Tc);
        Assert.Equal((bytes[2] >> 3) & 0xF, m.Opcode);
        Assert.Equal((bytes[2] & 0x01) != 0, m.Rd);
        Assert.Equal(0, m.AnCount);
        Assert.Equal(0, m.NsCount);
        switch (expected)
        {
            case QueryStatus.FormErr:
                Assert.Equal(1, m.Rcode);
                Assert.Equal(12, raw.Length); // the header alone: the question could not be read
                break;
            case QueryStatus.NotImp:
                Assert.Equal(4, m.Rcode);
                Assert.Equal(12, raw.Length);
                break;
            case QueryStatus.BadVers:
                Assert.Equal(16, m.Rcode);
                Assert.Equal(0, m.HeaderRcode);
                var opt = Assert.Single(m.Additional);
                Assert.Equal(Opt, opt.Type);
                Assert.Equal(0u, (opt.Ttl >> 16) & 0xFF); // the version we speak
                break;
            default:
                Assert.Fail($"unexpected {expected}");
                break;
        }
    }

    [Fact]
    public void Truncated_ValidQuery_EchoesQuestionWithTcAndNoRecords()
    {
        var query = Query("StReAm.farm.test", A, id: 0x4242, edns: true);
        var buffer = new byte[65536];

        var n = DnsResponder.Truncated(query, buffer);

        var m = DnsMessage.Parse(buffer.AsSpan(0, n));
        Assert.Equal(0x4242, m.Id);
        Assert.True(m.Qr);
        Assert.True(m.Tc);
        Assert.True(m.Rd);
        Assert.Equal(0, m.Rcode);
        Assert.Equal("StReAm.farm.test", m.QuestionName);
        Assert.Equal(0, m.AnCount + m.NsCount + m.ArCount);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 })]
    [InlineData(new byte[] { 0x12, 0x34, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 })]
    [InlineData(new byte[] { 0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1 })]
    public void Truncated_QueryThatIsNotOk_WritesNothing(byte[] query)
    {
        Assert.Equal(0, DnsResponder.Truncated(query, new byte[65536]));
    }

    /// <summary>
    /// Thousands of random datagrams and mutations of valid queries. None may throw; every answer
    /// must parse strictly, echo the id, fit the size limit and leave the buffer after its end
    /// untouched (unless it was cut: answers are built whole, then truncated).
    /// </summary>
    [Fact]
    public void Respond_SeededFuzz_NeverThrowsAndAlwaysAnswersWellFormed()
    {
        var random = new Random(20240611);
        var farm = Farm.Table([.. Enumerable.Range(1, 40).Select(n => Farm.Server(n)), Farm.Server(41, ip: "2001:db8::41"), Farm.Server(42, liveness: "dead")]);
        var responder = Farm.Responder(farm, o => o.AnswerCount = 4);
        var seeds = new[]
        {
            Query("stream.farm.test", A),
            Query("stream.farm.test", Any, edns: true, options: EdnsOption(10, [1, 2, 3, 4, 5, 6, 7, 8])),
            Query("_rttp._tcp.stream.farm.test", Srv),
            Query("_rttp-ws._tcp.stream.farm.test", Srv, edns: true, udpSize: 4096),
            Query("farm.test", Soa, edns: true),
            Query("farm.test", Ns),
            Query("s41.farm.test", Aaaa),
            Query("ns1.farm.test", A),
            Query("nope.farm.test", A, edns: true),
            Query("example.com", A),
        };
        var buffer = new byte[65536];
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 30_000; i++)
        {
            var input = i % 5 == 0 ? RandomBytes(random) : Mutate(seeds[random.Next(seeds.Length)], random);
            var tcp = random.Next(4) == 0;
            Array.Fill(buffer, Ask.Sentinel);

            var status = DnsQueryReader.Read(input, out var q);
            var n = responder.Respond(input, buffer, Farm.Client, tcp);

            var outcome = n == 0 ? "dropped" : "answered";
            counts[$"{status} {outcome}"] = counts.GetValueOrDefault($"{status} {outcome}") + 1;
            Assert.Equal(status == QueryStatus.Drop, n == 0);
            if (n == 0)
            {
                continue;
            }

            var m = Parse(buffer.AsSpan(0, n), input);
            Assert.Equal(BinaryPrimitives.ReadUInt16BigEndian(input), m.Id);
            Assert.True(m.Qr);
            Assert.False(m.Ra);
            var limit = tcp ? 65535 : q.HasEdns ? 1232 : 512;
            Assert.InRange(n, 12, limit);
            if (!m.Tc)
            {
                Assert.True(buffer.AsSpan(n).IndexOfAnyExcept(Ask.Sentinel) < 0, $"bytes written after the returned length {n} for {Convert.ToHexString(input)}");
            }
        }

        // The mutations must reach every outcome, or the loop proves little.
        Assert.True(counts.GetValueOrDefault("Ok answered") > 2000, string.Join(", ", counts));
        Assert.True(counts.GetValueOrDefault("FormErr answered") > 3000, string.Join(", ", counts));
        Assert.True(counts.GetValueOrDefault("Drop dropped") > 1000, string.Join(", ", counts));
        Assert.True(counts.GetValueOrDefault("NotImp answered") > 100, string.Join(", ", counts));
        Assert.True(counts.GetValueOrDefault("BadVers answered") > 10, string.Join(", ", counts));
    }

    private static DnsMessage Parse(ReadOnlySpan<byte> response, byte[] input)
    {
        try
        {
            return DnsMessage.Parse(response);
        }
        catch (FormatException e)
        {
            throw new Xunit.Sdk.XunitException($"malformed response {Convert.ToHexString(response)} to {Convert.ToHexString(input)}: {e.Message}");
        }
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 600)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var bytes = new List<byte>(seed);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits; e++)
        {
            switch (random.Next(9))
            {
                case 0 when bytes.Count > 0: // flip a bit
                    var at = random.Next(bytes.Count);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0: // a random byte
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                    break;
                case 2 when bytes.Count > 0: // cut
                    var cut = random.Next(bytes.Count);
                    bytes.RemoveRange(cut, bytes.Count - cut);
                    break;
                case 3: // append
                    bytes.AddRange(Enumerable.Range(0, random.Next(1, 8)).Select(_ => (byte)random.Next(256)));
                    break;
                case 4 when bytes.Count > 12: // insert
                    bytes.Insert(random.Next(12, bytes.Count), (byte)random.Next(256));
                    break;
                case 5 when bytes.Count > 12: // remove one
                    bytes.RemoveAt(random.Next(12, bytes.Count));
                    break;
                case 6 when bytes.Count > 3: // opcode, QR, flags
                    bytes[2] = (byte)random.Next(256);
                    break;
                case 7 when bytes.Count > 11: // a count
                    bytes[4 + (2 * random.Next(4)) + 1] = (byte)random.Next(3);
                    break;
                case 8 when bytes.Count > 14: // a byte in the name region, often a length or a pointer
                    bytes[random.Next(12, Math.Min(bytes.Count, 40))] = random.Next(3) switch { 0 => 0xC0, 1 => 63, _ => (byte)random.Next(70) };
                    break;
            }
        }

        return [.. bytes];
    }

    private static byte[] NameAt(byte[] m, int p)
    {
        var start = p;
        while (m[p] != 0)
        {
            p += m[p] + 1;
        }

        return m[start..(p + 1)];
    }
}
