using System.Net;
using StreamFarm.Dns.Tests.Kit;
using StreamFarm.Protocol;
using static StreamFarm.Dns.Tests.Kit.Wire;

namespace StreamFarm.Dns.Tests;

/// <summary>
/// <see cref="DnsResponder.Respond"/> called directly: every kind of name and type in the zone,
/// the exact RCODE, flags, counts and TTLs; what it hands out from farms with unhealthy servers;
/// truncation; and each load-balancing method over many seeded queries.
/// </summary>
public sealed class DnsResponderTests
{
    private const uint Ttl = 30;
    private const uint NegativeTtl = 7;

    /// <summary>Three healthy IPv4 servers, and alive-but-not-active, suspect, dead and IPv6 ones.</summary>
    private static readonly FarmSnapshot Mixed = Farm.Table(
        Farm.Server(1, users: 100, capacity: 1000),
        Farm.Server(2, users: 300, capacity: 1000),
        Farm.Server(3, users: 0, capacity: 500),
        Farm.Server(4, state: "draining"),
        Farm.Server(5, liveness: "dead"),
        Farm.Server(6, liveness: "suspect"),
        Farm.Server(7, state: "joining", ip: "2001:db8::7"));

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["apex SOA"] = new("farm.test", Soa, Answers: 1, AnswerType: Soa),
        ["apex NS"] = new("farm.test", Ns, Answers: 1, AnswerType: Ns, Additional: 1),
        ["apex ANY is the SOA alone"] = new("farm.test", Any, Answers: 1, AnswerType: Soa),
        ["apex A"] = Case.NoData("farm.test", A),
        ["apex MX"] = Case.NoData("farm.test", Mx),
        ["apex SRV"] = Case.NoData("farm.test", Srv),
        ["ns1 A"] = new("ns1.farm.test", A, Answers: 1, AnswerType: A),
        ["ns1 ANY"] = new("ns1.farm.test", Any, Answers: 1, AnswerType: A),
        ["ns1 AAAA"] = Case.NoData("ns1.farm.test", Aaaa),
        ["ns1 TXT"] = Case.NoData("ns1.farm.test", Txt),
        ["service A"] = new("stream.farm.test", A, Answers: 1, AnswerType: A),
        ["service ANY is one address RRset"] = new("stream.farm.test", Any, Answers: 1, AnswerType: A),
        ["service A, class ANY"] = new("stream.farm.test", A, Class: ClassAny, Answers: 1, AnswerType: A),
        ["service AAAA, no healthy IPv6 server"] = Case.NoData("stream.farm.test", Aaaa),
        ["service SRV"] = Case.NoData("stream.farm.test", Srv),
        ["service SOA"] = Case.NoData("stream.farm.test", Soa),
        ["service TXT"] = Case.NoData("stream.farm.test", Txt),
        ["service CNAME"] = Case.NoData("stream.farm.test", Cname),
        ["SRV rttp"] = new("_rttp._tcp.stream.farm.test", Srv, Answers: 3, AnswerType: Srv, Additional: 3),
        ["SRV rttp-ws"] = new("_rttp-ws._tcp.stream.farm.test", Srv, Answers: 3, AnswerType: Srv, Additional: 3),
        ["SRV rttp, ANY"] = new("_rttp._tcp.stream.farm.test", Any, Answers: 3, AnswerType: Srv, Additional: 3),
        ["SRV name, A"] = Case.NoData("_rttp._tcp.stream.farm.test", A),
        ["SRV ws name, TXT"] = Case.NoData("_rttp-ws._tcp.stream.farm.test", Txt),
        ["empty non-terminal SRV"] = Case.NoData("_tcp.stream.farm.test", Srv),
        ["empty non-terminal A"] = Case.NoData("_tcp.stream.farm.test", A),
        ["empty non-terminal ANY"] = Case.NoData("_tcp.stream.farm.test", Any),
        ["server A"] = new("s1.farm.test", A, Answers: 1, AnswerType: A),
        ["server ANY"] = new("s2.farm.test", Any, Answers: 1, AnswerType: A),
        ["server A, upper case"] = new("S3.FARM.TEST", A, Answers: 1, AnswerType: A),
        ["server AAAA of an IPv4 server"] = Case.NoData("s1.farm.test", Aaaa),
        ["server SRV"] = Case.NoData("s1.farm.test", Srv),
        ["draining but alive server A"] = new("s4.farm.test", A, Answers: 1, AnswerType: A),
        ["dead server A"] = Case.NoData("s5.farm.test", A),
        ["suspect server A"] = Case.NoData("s6.farm.test", A),
        ["joining IPv6 server AAAA"] = new("s7.farm.test", Aaaa, Answers: 1, AnswerType: Aaaa),
        ["joining IPv6 server A"] = Case.NoData("s7.farm.test", A),
        ["unknown name"] = Case.NxDomain("nope.farm.test", A),
        ["unknown name SOA"] = Case.NxDomain("nope.farm.test", Soa),
        ["unknown name ANY"] = Case.NxDomain("nope.farm.test", Any),
        ["unknown server id"] = Case.NxDomain("s99.farm.test", A),
        ["below the service name"] = Case.NxDomain("x.stream.farm.test", A),
        ["below a server name"] = Case.NxDomain("www.s1.farm.test", A),
        ["below an SRV name"] = Case.NxDomain("x._rttp._tcp.stream.farm.test", A),
        ["other protocol SRV"] = Case.NxDomain("_rttp._udp.stream.farm.test", Srv),
        ["other service SRV"] = Case.NxDomain("_http._tcp.stream.farm.test", Srv),
        ["ns2"] = Case.NxDomain("ns2.farm.test", A),
        ["deep name"] = Case.NxDomain("a.b.c.d.farm.test", A),
        ["outside the zone"] = Case.Refused("example.com", A),
        ["the zone's parent"] = Case.Refused("test", Ns),
        ["the root"] = Case.Refused(".", Ns),
        ["a name ending like the zone"] = Case.Refused("xfarm.test", A),
        ["the zone under another name"] = Case.Refused("farm.test.example.com", A),
        ["the zone with a longer last label"] = Case.Refused("farm.testx", A),
        ["class CHAOS"] = Case.Refused("stream.farm.test", A, Chaos),
        ["class HESIOD"] = Case.Refused("stream.farm.test", A, Hesiod),
        ["class NONE"] = Case.Refused("stream.farm.test", A, 254),
        ["CHAOS version.bind"] = Case.Refused("version.bind", Txt, Chaos),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    public static TheoryData<BalanceMethod> Methods => [.. Enum.GetValues<BalanceMethod>()];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Respond_NameAndType_GivesExactRcodeFlagsCountsAndTtls(string name)
    {
        var c = Cases[name];
        var responder = Farm.Responder(Mixed, o =>
        {
            o.Ttl = TimeSpan.FromSeconds(Ttl);
            o.NegativeTtl = TimeSpan.FromSeconds(NegativeTtl);
        });

        var m = Ask.Question(responder, c.Name, c.Type, c.Class);

        Assert.Equal(c.Rcode, m.Rcode);
        Assert.Equal(c.Rcode != 5, m.Aa);
        Assert.False(m.Tc);
        Assert.False(m.Ra);
        Assert.True(m.Rd); // echoed
        Assert.Equal(0, m.Opcode);
        Assert.Equal(1, m.QdCount);
        Assert.Equal(c.Name.TrimEnd('.'), m.QuestionName);
        Assert.Equal(c.Type, m.QuestionType);
        Assert.Equal(c.Class, m.QuestionClass);
        Assert.Equal(c.Answers, m.AnCount);
        Assert.Equal(c.Authority, m.NsCount);
        Assert.Equal(c.Additional, m.ArCount);
        foreach (var a in m.Answers)
        {
            Assert.Equal(c.AnswerType, a.Type);
            Assert.Equal(In, a.Class);
            Assert.Equal(Ttl, a.Ttl);
            Assert.Equal(c.Name, a.Name, ignoreCase: true);
        }

        if (c.Authority == 1)
        {
            var soa = Assert.Single(m.Authority);
            Assert.Equal(Soa, soa.Type);
            Assert.Equal(In, soa.Class);
            Assert.Equal("farm.test", soa.Name, ignoreCase: true);
            Assert.Equal(NegativeTtl, soa.Ttl);
            Assert.Equal(NegativeTtl, soa.Minimum);
        }
    }

    [Theory]
    [InlineData("farm.test", Axfr, false, 4)]   // AXFR is not defined over UDP (RFC 5936 4.2): NOTIMP, as Knot
    [InlineData("farm.test", Axfr, true, 9)]    // no zone transfers: NOTAUTH, as Knot
    [InlineData("farm.test", Ixfr, false, 9)]
    [InlineData("farm.test", Ixfr, true, 9)]
    [InlineData("stream.farm.test", Axfr, true, 9)]
    [InlineData("example.com", Axfr, true, 9)]
    [InlineData("farm.test", (ushort)0, false, 4)] // QTYPE 0 is not a type: NOTIMP, as Knot
    [InlineData("farm.test", (ushort)0, true, 4)]
    [InlineData("nope.farm.test", (ushort)0, false, 4)]
    public void Respond_ZoneTransferOrTypeZero_IsRefusedWithTheQuestionAndNoRecords(string name, ushort type, bool tcp, int rcode)
    {
        var responder = Farm.Responder(Mixed);

        foreach (var edns in new[] { false, true })
        {
            var m = Ask.Question(responder, name, type, edns: edns, tcp: tcp);

            Assert.Equal(rcode, m.Rcode);
            Assert.False(m.Aa);
            Assert.False(m.Tc);
            Assert.Equal(name, m.QuestionName);
            Assert.Equal(type, m.QuestionType);
            Assert.Equal(0, m.AnCount);
            Assert.Equal(0, m.NsCount);
            Assert.Equal(edns ? 1 : 0, m.ArCount); // OPT only
        }
    }

    [Fact]
    public void Respond_IxfrWithTheClientsSoa_IsNotAuth()
    {
        var responder = Farm.Responder(Mixed);

        var m = Ask.Message(responder, Concat(Header(ns: 1), Name("farm.test"), TypeClass(Ixfr), SoaRecord([0xC0, 0x0C], 1)));

        Assert.Equal(9, m.Rcode);
        Assert.False(m.Aa);
        Assert.Equal(Ixfr, m.QuestionType);
        Assert.Equal(0, m.AnCount + m.NsCount + m.ArCount);
    }

    [Fact]
    public void Respond_DefaultOptions_TtlIsFiveSeconds()
    {
        var responder = Farm.Responder(Farm.Healthy(2));

        Assert.Equal(5u, Assert.Single(Ask.Question(responder, "stream.farm.test", A).Answers).Ttl);
        Assert.Equal(5u, Assert.Single(Ask.Question(responder, "nope.farm.test", A).Authority).Ttl);
        Assert.All(Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv).Answers, r => Assert.Equal(5u, r.Ttl));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 3600)]
    [InlineData(86400, 60)]
    public void Respond_ConfiguredTtls_AreUsedForAnswersAndNegativeAnswers(int ttl, int negativeTtl)
    {
        var responder = Farm.Responder(Farm.Healthy(2), o =>
        {
            o.Ttl = TimeSpan.FromSeconds(ttl);
            o.NegativeTtl = TimeSpan.FromSeconds(negativeTtl);
        });

        Assert.Equal((uint)ttl, Assert.Single(Ask.Question(responder, "stream.farm.test", A).Answers).Ttl);
        Assert.Equal((uint)ttl, Assert.Single(Ask.Question(responder, "s1.farm.test", A).Answers).Ttl);
        Assert.Equal((uint)ttl, Assert.Single(Ask.Question(responder, "farm.test", Ns).Answers).Ttl);
        var soa = Assert.Single(Ask.Question(responder, "farm.test", Soa).Answers);
        Assert.Equal((uint)ttl, soa.Ttl);
        Assert.Equal((uint)negativeTtl, soa.Minimum);
        var negative = Assert.Single(Ask.Question(responder, "nope.farm.test", A).Authority);
        Assert.Equal((uint)negativeTtl, negative.Ttl);
        Assert.Equal((uint)negativeTtl, negative.Minimum);
        Assert.Equal((uint)negativeTtl, Assert.Single(Ask.Question(responder, "stream.farm.test", Txt).Authority).Ttl);
    }

    [Fact]
    public void Respond_ApexSoa_HasItsDocumentedFields()
    {
        var responder = Farm.Responder(Farm.Healthy(1) with { Version = 42 });

        var soa = Assert.Single(Ask.Question(responder, "farm.test", Soa).Answers);

        Assert.Equal("farm.test", soa.Name);
        Assert.Equal("ns1.farm.test", soa.Target);
        Assert.Equal("hostmaster.farm.test", soa.Mailbox);
        Assert.Equal(ZoneSerial.Of(Farm.Healthy(1)), soa.Serial);
        Assert.Equal(60u, soa.Refresh);
        Assert.Equal(30u, soa.Retry);
        Assert.Equal(600u, soa.Expire);
        Assert.Equal(5u, soa.Minimum);
    }

    [Fact]
    public void Respond_TwoRespondersStartedAtDifferentTimesWithTheSameTable_ServeTheSameSerial()
    {
        // Two members of one farm see the same table under different local versions: each counts
        // the changes it observed, and one that started later saw fewer (the serial was the start
        // time plus that version).
        FarmMember[] members = [Farm.Server(2, users: 7), Farm.Server(1, state: "draining"), Farm.Server(3, liveness: "suspect")];
        var first = new DnsResponder(Farm.Options(), () => new FarmSnapshot(17, members));
        var firstSerial = Assert.Single(Ask.Question(first, "farm.test", Soa).Answers).Serial;
        var second = new DnsResponder(Farm.Options(), () => new FarmSnapshot(5, [.. members.Reverse()]));

        Assert.Equal(firstSerial, Assert.Single(Ask.Question(second, "farm.test", Soa).Answers).Serial);
        Assert.Equal(firstSerial, Assert.Single(Ask.Question(second, "nope.farm.test", A).Authority).Serial);
    }

    [Theory]
    [InlineData("state")]
    [InlineData("liveness")]
    [InlineData("users")]
    [InlineData("capacity")]
    [InlineData("address")]
    [InlineData("ws port")]
    [InlineData("group")]
    [InlineData("id")]
    [InlineData("a server more")]
    public void Serial_AnyChangeThatShapesAnAnswer_ChangesIt(string change)
    {
        var s1 = Farm.Server(1, users: 10);
        var changed = change switch
        {
            "state" => s1 with { State = "draining" },
            "liveness" => s1 with { Liveness = "suspect" },
            "users" => s1 with { Users = 11 },
            "capacity" => s1 with { Capacity = 999 },
            "address" => s1 with { Tcp = "10.0.0.9:7400" },
            "ws port" => s1 with { Ws = "ws://10.0.0.2:7482/rttp" },
            "group" => s1 with { Group = "eu" },
            "id" => s1 with { Id = "s9" },
            _ => s1,
        };
        FarmMember[] after = change == "a server more" ? [s1, Farm.Server(2), Farm.Server(3)] : [changed, Farm.Server(2)];

        Assert.NotEqual(ZoneSerial.Of(Farm.Table(s1, Farm.Server(2))), ZoneSerial.Of(Farm.Table(after)));
        Assert.Equal(ZoneSerial.Of(Farm.Table(s1, Farm.Server(2))), ZoneSerial.Of(new FarmSnapshot(99, [Farm.Server(2), s1])));
    }

    [Fact]
    public void Respond_ApexNs_IsNs1AndNs1HasTheConfiguredAddress()
    {
        var responder = Farm.Responder(Farm.Healthy(1));

        Assert.Equal("ns1.farm.test", Assert.Single(Ask.Question(responder, "farm.test", Ns).Answers).Target);
        Assert.Equal(IPAddress.Parse("192.0.2.53"), Assert.Single(Ask.Question(responder, "ns1.farm.test", A).Answers).Address);
    }

    [Fact]
    public void Respond_Ns1WithIpv6Address_AnswersAaaaAndNoDataForA()
    {
        var responder = Farm.Responder(Farm.Healthy(1), o => o.NameServerAddress = "2001:db8::53");

        var aaaa = Assert.Single(Ask.Question(responder, "ns1.farm.test", Aaaa).Answers);
        var a = Ask.Question(responder, "ns1.farm.test", A);

        Assert.Equal(IPAddress.Parse("2001:db8::53"), aaaa.Address);
        Assert.Equal(0, a.Rcode);
        Assert.Empty(a.Answers);
        Assert.Equal(Soa, Assert.Single(a.Authority).Type);
    }

    [Fact]
    public void Respond_Ns1WithoutConfiguredAddress_IsNoDataNotNxDomain()
    {
        var responder = Farm.Responder(Farm.Healthy(1), o => o.NameServerAddress = null);

        var m = Ask.Question(responder, "ns1.farm.test", A);

        Assert.Equal(0, m.Rcode);
        Assert.True(m.Aa);
        Assert.Empty(m.Answers);
        Assert.Equal(Soa, Assert.Single(m.Authority).Type);
    }

    [Fact]
    public void Respond_ServerNames_AnswerEachServersOwnAddress()
    {
        var responder = Farm.Responder(Mixed);

        foreach (var n in new[] { 1, 2, 3, 4 })
        {
            Assert.Equal(IPAddress.Parse(Farm.Ip(n)), Assert.Single(Ask.Question(responder, $"s{n}.farm.test", A).Answers).Address);
        }

        Assert.Equal(IPAddress.Parse("2001:db8::7"), Assert.Single(Ask.Question(responder, "s7.farm.test", Aaaa).Answers).Address);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Respond_Srv_ListsHealthyServersWithPortsWeightsAndUncompressedTargets(bool ws)
    {
        var responder = Farm.Responder(Mixed);

        var m = Ask.Question(responder, ws ? "_rttp-ws._tcp.stream.farm.test" : "_rttp._tcp.stream.farm.test", Srv);

        var records = m.Answers.OrderBy(r => r.Target, StringComparer.Ordinal).ToList();
        Assert.Equal(["s1.farm.test", "s2.farm.test", "s3.farm.test"], records.Select(r => r.Target));
        Assert.All(records, r => Assert.Equal(0, r.Priority));
        Assert.All(records, r => Assert.Equal(ws ? 7481 : 7400, r.Port));
        Assert.All(records, r => Assert.False(r.TargetCompressed)); // RFC 2782
        Assert.Equal([900, 700, 500], records.Select(r => (int)r.Weight)); // free capacity
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Respond_Srv_CarriesEachTargetsAddressInTheAdditionalSection(bool edns)
    {
        var responder = Farm.Responder(Farm.Table(Farm.Server(1), Farm.Server(2), Farm.Server(3, ip: "2001:db8::3"), Farm.Server(4, liveness: "dead")), o => o.Ttl = TimeSpan.FromSeconds(Ttl));

        var m = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv, edns: edns);

        Assert.False(m.Tc);
        Assert.Equal(3, m.AnCount);
        var glue = m.Additional.Where(r => r.Type != Opt).ToList();
        Assert.Equal(m.Answers.Select(r => r.Target!), glue.Select(r => r.Name)); // in the order of the targets
        Assert.Equal([IPAddress.Parse(Farm.Ip(1)), IPAddress.Parse(Farm.Ip(2)), IPAddress.Parse("2001:db8::3")], glue.Select(r => r.Address!));
        Assert.Equal([A, A, Aaaa], glue.Select(r => r.Type));
        Assert.All(glue, r => Assert.Equal(Ttl, r.Ttl));
        Assert.All(glue, r => Assert.Equal(In, r.Class));
        Assert.Equal(edns ? Opt : Aaaa, m.Additional[^1].Type); // OPT, when there, comes last
    }

    [Fact]
    public void Respond_AServerWithTlsOnly_IsInTheAddressAnswers_ButNotInThePlainSrvRecords()
    {
        // s2 has no plain port (tls.only): its address comes from its TLS address; the SRV records
        // name plain ports, so they leave it out, and the glue still follows the records.
        var tlsOnly = Farm.Server(2) with { Tcp = "", Ws = "", Http = "", Tls = $"{Farm.Ip(2)}:7443", Wss = $"wss://{Farm.Ip(2)}:7481/rttp" };
        var responder = Farm.Responder(Farm.Table(Farm.Server(1), tlsOnly, Farm.Server(3)), o => o.AnswerCount = 3);

        var a = Ask.Question(responder, "stream.farm.test", A);
        var srv = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv);

        Assert.Contains(IPAddress.Parse(Farm.Ip(2)), a.Answers.Select(r => r.Address));
        Assert.Equal(["s1.farm.test", "s3.farm.test"], srv.Answers.Select(r => r.Target!).Order(StringComparer.Ordinal));
        Assert.Equal(srv.Answers.Select(r => r.Target!), srv.Additional.Where(r => r.Type != Opt).Select(r => r.Name));
        Assert.Equal([IPAddress.Parse(Farm.Ip(1)), IPAddress.Parse(Farm.Ip(3))], srv.Additional.Where(r => r.Type != Opt).Select(r => r.Address!).OrderBy(x => x.ToString()));
    }

    [Fact]
    public void Respond_ApexNs_CarriesNs1sAddressAndNothingWithoutOne()
    {
        var v4 = Ask.Question(Farm.Responder(Farm.Healthy(1)), "farm.test", Ns);
        var v6 = Ask.Question(Farm.Responder(Farm.Healthy(1), o => o.NameServerAddress = "2001:db8::53"), "farm.test", Ns);
        var none = Ask.Question(Farm.Responder(Farm.Healthy(1), o => o.NameServerAddress = null), "farm.test", Ns);

        var glue = Assert.Single(v4.Additional);
        Assert.Equal("ns1.farm.test", glue.Name);
        Assert.Equal(IPAddress.Parse("192.0.2.53"), glue.Address);
        Assert.Equal(Aaaa, Assert.Single(v6.Additional).Type);
        Assert.Equal(IPAddress.Parse("2001:db8::53"), Assert.Single(v6.Additional).Address);
        Assert.Single(none.Answers);
        Assert.Empty(none.Additional);
    }

    [Theory]
    [InlineData(false, (ushort)0, 512)]
    [InlineData(true, (ushort)512, 512)]
    [InlineData(true, (ushort)1232, 1232)]
    public void Respond_SrvWhoseAddressesDoNotAllFit_DropsAdditionalRecordsNeverSetsTc(bool edns, ushort udpSize, int limit)
    {
        // Answers that fit the limit, but not with every address after them.
        var servers = limit == 512 ? 12 : 30;
        var responder = Farm.Responder(Farm.Healthy(servers));

        var raw = Ask.Raw(responder, Query("_rttp._tcp.stream.farm.test", Srv, edns: edns, udpSize: udpSize));
        var m = DnsMessage.Parse(raw);

        Assert.False(m.Tc);
        Assert.Equal(servers, m.AnCount);
        Assert.InRange(raw.Length, limit - 40, limit);
        var glue = m.Additional.Where(r => r.Type != Opt).ToList();
        Assert.InRange(glue.Count, 1, servers - 1);
        Assert.Equal(m.Answers.Take(glue.Count).Select(r => r.Target!), glue.Select(r => r.Name));
        Assert.Equal(edns, m.Opt is not null);
        var tcp = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv, tcp: true);
        Assert.Equal(servers, tcp.Additional.Count);
    }

    [Fact]
    public void Respond_ManySrvOverTcp_CarryEveryAddress()
    {
        var responder = Farm.Responder(Farm.Healthy(200));

        var m = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv, tcp: true);

        Assert.Equal(200, m.AnCount);
        Assert.Equal(m.Answers.Select(r => r.Target!), m.Additional.Select(r => r.Name));
        Assert.Equal(m.Answers.Select(r => r.Target!).Select(t => IPAddress.Parse(Farm.Ip(int.Parse(t[1..t.IndexOf('.', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)))), m.Additional.Select(r => r.Address!));
    }

    [Fact]
    public void Respond_SrvTargetsBeyondCompressionPointerReach_GetNoAddressAndTheMessageStaysWellFormed()
    {
        var responder = Farm.Responder(Farm.Healthy(700)); // targets past 16 KiB into the message

        var m = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv, tcp: true);

        Assert.InRange(m.Additional.Count, 300, 699);
        Assert.Equal(m.Answers.Take(m.Additional.Count).Select(r => r.Target!), m.Additional.Select(r => r.Name));
    }

    [Fact]
    public void Respond_SrvOfAFullServer_HasWeightOneAndHugeCapacityIsCapped()
    {
        var responder = Farm.Responder(Farm.Table(Farm.Server(1, users: 150, capacity: 100), Farm.Server(2, users: 0, capacity: 1_000_000)));

        var weights = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv).Answers.OrderBy(r => r.Target, StringComparer.Ordinal).Select(r => (int)r.Weight);

        Assert.Equal([1, 65535], weights);
    }

    [Fact]
    public void Respond_ServerIdWithDots_SrvTargetIsThatName()
    {
        var responder = Farm.Responder(Farm.Table(Farm.Server(1) with { Id = "eu.s1" }));

        var srv = Assert.Single(Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv).Answers);
        var a = Ask.Question(responder, "eu.s1.farm.test", A);
        var between = Ask.Question(responder, "s1.farm.test", A);

        Assert.Equal("eu.s1.farm.test", srv.Target);
        Assert.Equal(IPAddress.Parse(Farm.Ip(1)), Assert.Single(a.Answers).Address);
        Assert.Equal(0, between.Rcode); // an empty non-terminal: it exists, with no data
        Assert.Empty(between.Answers);
    }

    [Fact]
    public void Respond_MixedCaseQuestion_KeepsTheCaseInQuestionAndAnswers()
    {
        var responder = Farm.Responder(Farm.Healthy(3));

        var a = Ask.Question(responder, "StReAm.FaRm.TeSt", A);
        var srv = Ask.Question(responder, "_RTTP._Tcp.STREAM.farm.TEST", Srv);
        var nx = Ask.Question(responder, "NoPe.FaRm.TeSt", A);

        Assert.Equal("StReAm.FaRm.TeSt", a.QuestionName);
        Assert.Equal("StReAm.FaRm.TeSt", Assert.Single(a.Answers).Name);
        Assert.Equal("_RTTP._Tcp.STREAM.farm.TEST", srv.QuestionName);
        Assert.All(srv.Answers, r => Assert.Equal("_RTTP._Tcp.STREAM.farm.TEST", r.Name));
        Assert.Equal("NoPe.FaRm.TeSt", nx.QuestionName);
        Assert.Equal(3, nx.Rcode);
        Assert.Equal("farm.test", Assert.Single(nx.Authority).Name, ignoreCase: true);
    }

    [Theory]
    [InlineData((ushort)0x0000)]
    [InlineData((ushort)0x0100)]
    [InlineData((ushort)0x0010)]
    [InlineData((ushort)0x0110)]
    public void Respond_Flags_EchoRdAndCdNeverSetRa(ushort flags)
    {
        var responder = Farm.Responder(Farm.Healthy(1));

        foreach (var (name, type) in new[] { ("stream.farm.test", A), ("nope.farm.test", A), ("example.com", A) })
        {
            var m = Ask.Message(responder, Query(name, type, flags: flags));

            Assert.Equal((flags & 0x0100) != 0, m.Rd);
            Assert.Equal((flags & 0x0010) != 0, m.Cd);
            Assert.False(m.Ra);
            Assert.False(m.Ad);
            Assert.False(m.Z);
        }
    }

    [Fact]
    public void Respond_Edns_AddsOptWith1232BytesVersion0AndNoOptions()
    {
        var responder = Farm.Responder(Farm.Healthy(1));

        var m = Ask.Question(responder, "stream.farm.test", A, edns: true);

        Assert.Equal(1, m.ArCount);
        var opt = Assert.Single(m.Additional);
        Assert.Equal(Opt, opt.Type);
        Assert.Equal("", opt.Name);
        Assert.Equal(1232, opt.Class);
        Assert.Equal(0u, opt.Ttl);
        Assert.Empty(opt.Data);
        Assert.Single(m.Answers);
    }

    [Fact]
    public void Respond_EdnsOnNegativeAndRefusedAnswers_StillHasOpt()
    {
        var responder = Farm.Responder(Farm.Healthy(1));

        foreach (var (name, rcode) in new[] { ("nope.farm.test", 3), ("example.com", 5), ("farm.test", 0) })
        {
            var m = Ask.Question(responder, name, Txt, edns: true);

            Assert.Equal(rcode, m.Rcode);
            Assert.Equal(Opt, Assert.Single(m.Additional).Type);
        }
    }

    [Fact]
    public void Respond_DnssecOk_IsCopiedIntoTheResponse()
    {
        var responder = Farm.Responder(Farm.Healthy(1));
        var query = Concat(Header(ar: 1), Name("stream.farm.test"), TypeClass(A), OptRecord(dnssecOk: true));

        var opt = Assert.Single(Ask.Message(responder, query).Additional);

        Assert.Equal(0x8000u, opt.Ttl & 0xFFFF); // RFC 3225, section 3: the DO bit is copied
    }

    [Fact]
    public void Respond_BadVersion_IsBadversWithOptAndTheQuestion()
    {
        var responder = Farm.Responder(Farm.Healthy(1));

        var m = Ask.Message(responder, Query("stream.farm.test", A, edns: true, version: 1));

        Assert.Equal(16, m.Rcode);
        Assert.Equal(0, m.HeaderRcode);
        Assert.False(m.Aa);
        Assert.Empty(m.Answers);
        Assert.Equal("stream.farm.test", m.QuestionName);
        var opt = Assert.Single(m.Additional);
        Assert.Equal(1u, opt.Ttl >> 24);
        Assert.Equal(0u, (opt.Ttl >> 16) & 0xFF);
    }

    [Fact]
    public void Respond_BufferUnder64KiB_Throws()
    {
        var responder = Farm.Responder(Farm.Healthy(1));

        Assert.Throws<ArgumentException>(() => responder.Respond(Query("stream.farm.test", A), new byte[65535], Farm.Client, tcp: false));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Respond_UnhealthyServers_AreNeverHandedOut(BalanceMethod method)
    {
        // The unhealthy ones look best to every method: no users, huge capacity, the client's group.
        var farm = Farm.Table(
            Farm.Server(1, users: 900, capacity: 1000, group: "other"),
            Farm.Server(2, state: "draining", capacity: 100_000, group: "eu"),
            Farm.Server(3, state: "joining", capacity: 100_000, group: "eu"),
            Farm.Server(4, state: "leaving", capacity: 100_000, group: "eu"),
            Farm.Server(5, liveness: "suspect", capacity: 100_000, group: "eu"),
            Farm.Server(6, liveness: "dead", capacity: 100_000, group: "eu"),
            Farm.Server(7, users: 950, capacity: 1000, group: "other"));
        var healthy = new[] { IPAddress.Parse(Farm.Ip(1)), IPAddress.Parse(Farm.Ip(7)) };
        foreach (var answerCount in new[] { 1, 3 })
        {
            var responder = Farm.Responder(farm, o =>
            {
                o.Method = method;
                o.AnswerCount = answerCount;
                o.GroupNetworks = new() { ["eu"] = ["10.1.0.0/16"] };
            });

            for (var i = 0; i < 200; i++)
            {
                var m = Ask.Question(responder, "stream.farm.test", i % 2 == 0 ? A : Any, client: [10, 1, 0, 1]);

                Assert.Equal(Math.Min(answerCount, 2), m.Answers.Count);
                Assert.All(m.Answers, r => Assert.Contains(r.Address, healthy));
            }

            var srv = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv);
            Assert.Equal(["s1.farm.test", "s7.farm.test"], srv.Answers.Select(r => r.Target!).Order(StringComparer.Ordinal));
        }
    }

    [Theory]
    [InlineData("no members")]
    [InlineData("only unhealthy members")]
    public void Respond_NoHealthyServer_IsNoErrorWithoutAnswersAndSoaInAuthority(string farmKind)
    {
        var farm = farmKind == "no members"
            ? Farm.Table()
            : Farm.Table(Farm.Server(1, state: "draining"), Farm.Server(2, liveness: "dead"), Farm.Server(3, liveness: "suspect"));
        var responder = Farm.Responder(farm);

        foreach (var (name, type) in new[] { ("stream.farm.test", A), ("stream.farm.test", Any), ("_rttp._tcp.stream.farm.test", Srv), ("_rttp-ws._tcp.stream.farm.test", Srv) })
        {
            var m = Ask.Question(responder, name, type);

            Assert.Equal(0, m.Rcode);
            Assert.True(m.Aa);
            Assert.Empty(m.Answers);
            Assert.Equal(Soa, Assert.Single(m.Authority).Type);
        }
    }

    [Fact]
    public void Respond_ManySrvOverUdpWithoutEdns_IsTruncatedWithNoPartialRecords()
    {
        var responder = Farm.Responder(Farm.Healthy(60));

        var raw = Ask.Raw(responder, Query("_rttp._tcp.stream.farm.test", Srv));
        var m = DnsMessage.Parse(raw);

        Assert.True(m.Tc);
        Assert.True(m.Aa);
        Assert.Equal(0, m.Rcode);
        Assert.InRange(raw.Length, 12, 512);
        Assert.Equal("_rttp._tcp.stream.farm.test", m.QuestionName);
        Assert.Equal(0, m.AnCount);
        Assert.Equal(0, m.NsCount);
        Assert.Equal(0, m.ArCount);
    }

    [Fact]
    public void Respond_ManySrvOverUdpWithLargeEdns_IsTruncatedAt1232WithOpt()
    {
        var responder = Farm.Responder(Farm.Healthy(60));

        var raw = Ask.Raw(responder, Query("_rttp._tcp.stream.farm.test", Srv, edns: true, udpSize: 4096));
        var m = DnsMessage.Parse(raw);

        Assert.True(m.Tc);
        Assert.InRange(raw.Length, 12, 1232);
        Assert.Equal(0, m.AnCount);
        Assert.Equal(0, m.NsCount);
        Assert.Equal(Opt, Assert.Single(m.Additional).Type);
    }

    [Fact]
    public void Respond_ManySrvOverTcp_ReturnsEveryRecord()
    {
        var responder = Farm.Responder(Farm.Healthy(60));

        var m = Ask.Question(responder, "_rttp._tcp.stream.farm.test", Srv, tcp: true);

        Assert.False(m.Tc);
        Assert.Equal(60, m.AnCount);
        Assert.Equal(Enumerable.Range(1, 60).Select(n => $"s{n}.farm.test").Order(StringComparer.Ordinal), m.Answers.Select(r => r.Target!).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(false, (ushort)0, true)]       // no EDNS: 512 bytes
    [InlineData(true, (ushort)100, true)]      // EDNS below 512 counts as 512
    [InlineData(true, (ushort)512, true)]
    [InlineData(true, (ushort)1232, false)]
    [InlineData(true, (ushort)65535, false)]
    public void Respond_ThirtySrv_FitOnlyWhenEdnsAllowsIt(bool edns, ushort udpSize, bool truncated)
    {
        var responder = Farm.Responder(Farm.Healthy(30)); // about 1,050 bytes

        var raw = Ask.Raw(responder, Query("_rttp._tcp.stream.farm.test", Srv, edns: edns, udpSize: udpSize));
        var m = DnsMessage.Parse(raw);

        Assert.Equal(truncated, m.Tc);
        Assert.Equal(truncated ? 0 : 30, m.AnCount);
        Assert.InRange(raw.Length, 12, truncated ? 512 : 1232);
    }

    [Fact]
    public void Respond_32AddressesOverUdpWithoutEdns_AreTruncatedAndComeWholeOverTcp()
    {
        var responder = Farm.Responder(Farm.Healthy(40), o => o.AnswerCount = 32);

        var udp = Ask.Question(responder, "stream.farm.test", A);
        var tcp = Ask.Question(responder, "stream.farm.test", A, tcp: true);
        var edns = Ask.Question(responder, "stream.farm.test", A, edns: true);

        Assert.True(udp.Tc);
        Assert.Empty(udp.Answers);
        Assert.False(tcp.Tc);
        Assert.Equal(32, tcp.Answers.Select(r => r.Address).Distinct().Count());
        Assert.False(edns.Tc);
        Assert.Equal(32, edns.Answers.Select(r => r.Address).Distinct().Count());
    }

    [Fact]
    public void Respond_FarmTableChanges_ZoneFollowsTheNewVersion()
    {
        var table = Farm.Table(Farm.Server(1), Farm.Server(2));
        var responder = Farm.Responder(() => table);
        var before = Assert.Single(Ask.Question(responder, "farm.test", Soa).Answers).Serial;

        table = new FarmSnapshot(2, [Farm.Server(1, state: "draining"), Farm.Server(2), Farm.Server(3)]);

        Assert.NotEqual(before, Assert.Single(Ask.Question(responder, "farm.test", Soa).Answers).Serial);
        var handedOut = Enumerable.Range(0, 20).Select(_ => Assert.Single(Ask.Question(responder, "stream.farm.test", A).Answers).Address!).ToHashSet();
        Assert.Equal([IPAddress.Parse(Farm.Ip(2)), IPAddress.Parse(Farm.Ip(3))], handedOut.OrderBy(a => a.ToString()));
        Assert.Single(Ask.Question(responder, "s3.farm.test", A).Answers);
    }

    [Fact]
    public void Respond_OtherZoneAndService_AnswersThoseNamesOnly()
    {
        var responder = Farm.Responder(Farm.Healthy(2), o =>
        {
            o.Zone = "Farm.Example.COM.";
            o.Service = "live";
        });

        Assert.Single(Ask.Question(responder, "live.farm.example.com", A).Answers);
        Assert.Equal(2, Ask.Question(responder, "_rttp._tcp.live.farm.example.com", Srv).Answers.Count);
        Assert.Equal("s1.farm.example.com", Ask.Question(responder, "_rttp._tcp.live.farm.example.com", Srv).Answers.Select(r => r.Target).Order(StringComparer.Ordinal).First());
        Assert.Equal(3, Ask.Question(responder, "stream.farm.example.com", A).Rcode);
        Assert.Equal(5, Ask.Question(responder, "stream.farm.test", A).Rcode);
        Assert.Equal("ns1.farm.example.com", Assert.Single(Ask.Question(responder, "farm.example.com", Soa).Answers).Target);
    }

    // ---- load balancing ----

    [Fact]
    public void RoundRobin_CyclesThroughAllHealthyServersEvenly()
    {
        var responder = Farm.Responder(Farm.Table([.. Enumerable.Range(1, 5).Select(n => Farm.Server(n)), Farm.Server(6, state: "draining")]));

        var picks = Single(responder, 1000);

        Assert.All(Count(picks), c => Assert.Equal(200, c.Value));
        Assert.Equal(5, Count(picks).Count);
        for (var i = 0; i + 5 <= picks.Count; i++)
        {
            Assert.Equal(5, picks.Skip(i).Take(5).Distinct().Count()); // every window of five is a full cycle
        }
    }

    [Fact]
    public void RoundRobin_ThreeAnswers_AreConsecutiveAndRotate()
    {
        var responder = Farm.Responder(Farm.Healthy(5), o => o.AnswerCount = 3);

        var answers = Enumerable.Range(0, 100).Select(_ => Addresses(Ask.Question(responder, "stream.farm.test", A))).ToList();

        Assert.All(answers, a => Assert.Equal(3, a.Distinct().Count()));
        Assert.All(Count(answers.Select(a => a[0]).ToList()), c => Assert.Equal(20, c.Value)); // each leads equally often
        Assert.All(Count([.. answers.SelectMany(a => a)]), c => Assert.Equal(60, c.Value));
    }

    [Fact]
    public void Random_SpreadsRoughlyEvenly()
    {
        var responder = Farm.Responder(Farm.Healthy(5), o => o.Method = BalanceMethod.Random, seed: 7);

        var counts = Count(Single(responder, 10_000));

        Assert.Equal(5, counts.Count);
        Assert.All(counts, c => Assert.InRange(c.Value, 1700, 2300));
    }

    [Fact]
    public void FewestUsers_AlwaysPicksTheLeastLoadedRelativeToCapacity()
    {
        var farm = Farm.Table(
            Farm.Server(1, users: 50, capacity: 100),     // 0.5
            Farm.Server(2, users: 10, capacity: 100),     // 0.1
            Farm.Server(3, users: 50, capacity: 1000),    // 0.05: the least loaded, though not the fewest users
            Farm.Server(4, users: 90, capacity: 100),     // 0.9
            Farm.Server(5, users: 0, capacity: 100, state: "draining"));
        var responder = Farm.Responder(farm, o => o.Method = BalanceMethod.FewestUsers);

        Assert.All(Single(responder, 100), a => Assert.Equal(Farm.Ip(3), a));
    }

    [Fact]
    public void FewestUsers_ThreeAnswers_AreTheThreeLeastLoadedInOrder()
    {
        var farm = Farm.Table(Farm.Server(1, users: 50, capacity: 100), Farm.Server(2, users: 10, capacity: 100), Farm.Server(3, users: 50, capacity: 1000), Farm.Server(4, users: 90, capacity: 100));
        var responder = Farm.Responder(farm, o =>
        {
            o.Method = BalanceMethod.FewestUsers;
            o.AnswerCount = 3;
        });

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal([Farm.Ip(3), Farm.Ip(2), Farm.Ip(1)], Addresses(Ask.Question(responder, "stream.farm.test", A)));
        }
    }

    [Fact]
    public void FewestUsers_EquallyLoadedServers_ShareTheQueries()
    {
        var farm = Farm.Table(Farm.Server(1, users: 10, capacity: 100), Farm.Server(2, users: 100, capacity: 1000), Farm.Server(3, users: 50, capacity: 100));
        var responder = Farm.Responder(farm, o => o.Method = BalanceMethod.FewestUsers);

        var counts = Count(Single(responder, 600));

        Assert.Equal(2, counts.Count);
        Assert.InRange(counts[Farm.Ip(1)], 270, 330);
        Assert.InRange(counts[Farm.Ip(2)], 270, 330);
    }

    [Fact]
    public void FewestUsers_FollowsLoadChangesInTheTable()
    {
        var table = Farm.Table(Farm.Server(1, users: 10, capacity: 100), Farm.Server(2, users: 20, capacity: 100));
        var responder = Farm.Responder(() => table, o => o.Method = BalanceMethod.FewestUsers);
        Assert.All(Single(responder, 10), a => Assert.Equal(Farm.Ip(1), a));

        table = new FarmSnapshot(2, [Farm.Server(1, users: 30, capacity: 100), Farm.Server(2, users: 20, capacity: 100)]);

        Assert.All(Single(responder, 10), a => Assert.Equal(Farm.Ip(2), a));
    }

    [Fact]
    public void Weighted_RoughlyFollowsFreeCapacity()
    {
        var farm = Farm.Table(
            Farm.Server(1, users: 100, capacity: 200),   // free 100
            Farm.Server(2, users: 100, capacity: 400),   // free 300
            Farm.Server(3, users: 400, capacity: 1000),  // free 600
            Farm.Server(4, users: 150, capacity: 100));  // full: weight 1
        var responder = Farm.Responder(farm, o => o.Method = BalanceMethod.Weighted, seed: 11);

        var counts = Count(Single(responder, 20_000));

        Assert.InRange(counts.GetValueOrDefault(Farm.Ip(1)), 1600, 2400);
        Assert.InRange(counts.GetValueOrDefault(Farm.Ip(2)), 5400, 6600);
        Assert.InRange(counts.GetValueOrDefault(Farm.Ip(3)), 11_200, 12_800);
        Assert.InRange(counts.GetValueOrDefault(Farm.Ip(4)), 0, 100);
    }

    [Fact]
    public void Group_ClientOfAGroup_GetsItsGroupsServersEvenly()
    {
        var responder = GroupResponder(GroupFarm());

        var eu = Count(Single(responder, 600, [10, 1, 2, 3]));
        var us = Count(Single(responder, 600, [10, 2, 200, 9]));

        Assert.Equal(new Dictionary<string, int> { [Farm.Ip(1)] = 300, [Farm.Ip(2)] = 300 }, eu);
        Assert.Equal(new Dictionary<string, int> { [Farm.Ip(3)] = 200, [Farm.Ip(4)] = 200, [Farm.Ip(5)] = 200 }, us);
    }

    [Fact]
    public void Group_ClientsOfTwoGroupsTakingTurns_EachGetsAllItsServers()
    {
        var responder = GroupResponder(GroupFarm());
        var eu = new List<string>();
        var us = new List<string>();

        for (var i = 0; i < 300; i++)
        {
            eu.Add(Assert.Single(Ask.Question(responder, "stream.farm.test", A, client: [10, 1, 0, 1]).Answers).Address!.ToString());
            us.Add(Assert.Single(Ask.Question(responder, "stream.farm.test", A, client: [10, 2, 0, 1]).Answers).Address!.ToString());
        }

        Assert.Equal(new Dictionary<string, int> { [Farm.Ip(1)] = 150, [Farm.Ip(2)] = 150 }, Count(eu));
        Assert.Equal(new Dictionary<string, int> { [Farm.Ip(3)] = 100, [Farm.Ip(4)] = 100, [Farm.Ip(5)] = 100 }, Count(us));
    }

    [Fact]
    public void Group_ClientOutsideEveryNetwork_GetsAllHealthyServers()
    {
        var responder = GroupResponder(GroupFarm());

        var counts = Count(Single(responder, 600, [192, 0, 2, 1]));

        Assert.Equal(6, counts.Count);
        Assert.All(counts, c => Assert.Equal(100, c.Value));
    }

    [Fact]
    public void Group_GroupWithoutHealthyServer_SpillsOverToAllHealthyServers()
    {
        var farm = Farm.Table(
            Farm.Server(1, group: "eu", state: "draining"),
            Farm.Server(2, group: "eu", liveness: "dead"),
            Farm.Server(3, group: "us"),
            Farm.Server(4, group: "us"),
            Farm.Server(6, group: "default"));
        var responder = GroupResponder(farm);

        var counts = Count(Single(responder, 300, [10, 1, 2, 3]));

        Assert.Equal(new Dictionary<string, int> { [Farm.Ip(3)] = 100, [Farm.Ip(4)] = 100, [Farm.Ip(6)] = 100 }, counts);
    }

    [Fact]
    public void Group_GroupRegainsAHealthyServer_ClientsGoBackToIt()
    {
        var table = Farm.Table(Farm.Server(1, group: "eu", state: "joining"), Farm.Server(3, group: "us"));
        var responder = Farm.Responder(() => table, GroupOptions);
        Assert.All(Single(responder, 10, [10, 1, 0, 1]), a => Assert.Equal(Farm.Ip(3), a));

        table = new FarmSnapshot(2, [Farm.Server(1, group: "eu"), Farm.Server(3, group: "us")]);

        Assert.All(Single(responder, 10, [10, 1, 0, 1]), a => Assert.Equal(Farm.Ip(1), a));
    }

    [Fact]
    public void Group_Ipv6ClientNetwork_SelectsItsGroup()
    {
        var responder = Farm.Responder(GroupFarm(), o =>
        {
            o.Method = BalanceMethod.Group;
            o.GroupNetworks = new() { ["us"] = ["2001:db8:2::/48"] };
        });

        var counts = Count(Single(responder, 30, IPAddress.Parse("2001:db8:2::99").GetAddressBytes()));

        Assert.Equal([Farm.Ip(3), Farm.Ip(4), Farm.Ip(5)], counts.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Group_ThreeAnswers_FillFromTheGroupOnly()
    {
        var responder = Farm.Responder(GroupFarm(), o =>
        {
            GroupOptions(o);
            o.AnswerCount = 3;
        });

        var answers = Addresses(Ask.Question(responder, "stream.farm.test", A, client: [10, 1, 0, 1]));

        Assert.Equal([Farm.Ip(1), Farm.Ip(2)], answers.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AnswerCount3_GivesThreeDistinctHealthyAddresses(BalanceMethod method)
    {
        var responder = Farm.Responder(GroupFarm(), o =>
        {
            GroupOptions(o);
            o.Method = method;
            o.AnswerCount = 3;
        });

        for (var i = 0; i < 300; i++)
        {
            var answers = Addresses(Ask.Question(responder, "stream.farm.test", A, client: [10, 2, 0, (byte)i]));

            Assert.Equal(3, answers.Distinct().Count());
            Assert.All(answers, a => Assert.Contains(a, Enumerable.Range(1, 6).Select(Farm.Ip)));
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void AnswerCountAboveHealthyCount_GivesEveryHealthyServerOnce(BalanceMethod method)
    {
        var responder = Farm.Responder(Farm.Table(Farm.Server(1), Farm.Server(2), Farm.Server(3, state: "draining")), o =>
        {
            o.Method = method;
            o.AnswerCount = 10;
        });

        var answers = Addresses(Ask.Question(responder, "stream.farm.test", A));

        Assert.Equal([Farm.Ip(1), Farm.Ip(2)], answers.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void MixedIpv4AndIpv6Farm_AQueriesGetAAndAaaaQueriesGetAaaa(BalanceMethod method)
    {
        var farm = Farm.Table(Farm.Server(1), Farm.Server(2, ip: "2001:db8::2"), Farm.Server(3), Farm.Server(4, ip: "2001:db8::4"));
        foreach (var answerCount in new[] { 1, 2 })
        {
            var responder = Farm.Responder(farm, o =>
            {
                o.Method = method;
                o.AnswerCount = answerCount;
            });

            for (var i = 0; i < 50; i++)
            {
                var a = Ask.Question(responder, "stream.farm.test", A);
                var aaaa = Ask.Question(responder, "stream.farm.test", Aaaa);
                var any = Ask.Question(responder, "stream.farm.test", Any);

                Assert.Equal(answerCount, a.Answers.Count);
                Assert.All(a.Answers, r => Assert.Equal(A, r.Type));
                Assert.Equal(answerCount, aaaa.Answers.Count);
                Assert.All(aaaa.Answers, r => Assert.Equal(Aaaa, r.Type));
                Assert.Equal(answerCount, any.Answers.Count);
                Assert.Single(any.Answers.Select(r => r.Type).Distinct()); // RFC 8482: one RRset
            }
        }
    }

    [Theory]
    [InlineData(BalanceMethod.RoundRobin)]
    [InlineData(BalanceMethod.Group)]
    [InlineData(BalanceMethod.FewestUsers)]
    public void DualStackClientAskingAAndAaaaInPairs_SeesEveryServerOfEachFamilyEvenly(BalanceMethod method)
    {
        // Resolvers often ask A and AAAA together: the two must not take turns from one rotation,
        // or every A query lands on the same half of the IPv4 servers.
        var farm = Farm.Table(
            Farm.Server(1, group: "eu"),
            Farm.Server(2, group: "eu"),
            Farm.Server(3, group: "eu", ip: "2001:db8::3"),
            Farm.Server(4, group: "eu", ip: "2001:db8::4"));
        var responder = Farm.Responder(farm, o =>
        {
            GroupOptions(o);
            o.Method = method;
        });
        var v4 = new List<string>();
        var v6 = new List<string>();

        for (var i = 0; i < 100; i++)
        {
            v4.Add(Assert.Single(Ask.Question(responder, "stream.farm.test", A, client: [10, 1, 0, 1]).Answers).Address!.ToString());
            v6.Add(Assert.Single(Ask.Question(responder, "stream.farm.test", Aaaa, client: [10, 1, 0, 1]).Answers).Address!.ToString());
        }

        Assert.Equal(new Dictionary<string, int> { [Farm.Ip(1)] = 50, [Farm.Ip(2)] = 50 }, Count(v4));
        Assert.Equal(new Dictionary<string, int> { ["2001:db8::3"] = 50, ["2001:db8::4"] = 50 }, Count(v6));
    }

    private static FarmSnapshot GroupFarm() => Farm.Table(
        Farm.Server(1, group: "eu"),
        Farm.Server(2, group: "eu"),
        Farm.Server(3, group: "us"),
        Farm.Server(4, group: "us"),
        Farm.Server(5, group: "us"),
        Farm.Server(6, group: "default"),
        Farm.Server(7, group: "eu", state: "draining"));

    private static void GroupOptions(DnsOptions o)
    {
        o.Method = BalanceMethod.Group;
        o.GroupNetworks = new() { ["eu"] = ["10.1.0.0/16", "10.11.0.0/16"], ["us"] = ["10.2.0.0/16"] };
    }

    private static DnsResponder GroupResponder(FarmSnapshot farm) => Farm.Responder(farm, GroupOptions);

    /// <summary>The one address of each of <paramref name="count"/> answers.</summary>
    private static List<string> Single(DnsResponder responder, int count, byte[]? client = null) =>
        [.. Enumerable.Range(0, count).Select(_ => Assert.Single(Ask.Question(responder, "stream.farm.test", A, client: client).Answers).Address!.ToString())];

    private static List<string> Addresses(DnsMessage m) => [.. m.Answers.Select(r => r.Address!.ToString())];

    private static Dictionary<string, int> Count(List<string> picks) =>
        picks.GroupBy(p => p, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    private sealed record Case(string Name, ushort Type, ushort Class = In, int Rcode = 0, int Answers = 0, ushort AnswerType = 0, int Authority = 0, int Additional = 0)
    {
        public static Case NoData(string name, ushort type) => new(name, type, Authority: 1);

        public static Case NxDomain(string name, ushort type) => new(name, type, Rcode: 3, Authority: 1);

        public static Case Refused(string name, ushort type, ushort cls = In) => new(name, type, cls, Rcode: 5);
    }
}
