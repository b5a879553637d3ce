using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using DnsClient;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Dns.Tests.Kit;
using StreamFarm.Protocol;
using static StreamFarm.Dns.Tests.Kit.Wire;

namespace StreamFarm.Dns.Tests;

/// <summary>
/// <see cref="DnsServer"/> on loopback sockets, asked by DnsClient.NET, by <c>dig</c> and
/// <c>kdig</c>, and by raw sockets sending malformed datagrams and floods. Only outcomes are
/// asserted; waits are generous deadlines, never measured.
/// </summary>
public sealed class DnsServerTests
{
    private static readonly string[] ThreeIps = [Farm.Ip(1), Farm.Ip(2), Farm.Ip(3)];

    // ---- DnsClient.NET ----

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DnsClient_AsksEveryKindOfName_GetsTheZonesAnswers(bool tcp)
    {
        await using var server = Start(Farm.Healthy(3));
        var client = Client(server, tcp);

        var a = await client.QueryAsync("stream.farm.test", QueryType.A);
        Assert.False(a.HasError, a.ErrorMessage);
        Assert.True(a.Header.HasAuthorityAnswer);
        Assert.False(a.Header.RecursionAvailable);
        var address = Assert.Single(a.Answers.ARecords());
        Assert.Contains(address.Address.ToString(), ThreeIps);
        Assert.Equal(5, address.InitialTimeToLive);

        var srv = await client.QueryAsync("_rttp._tcp.stream.farm.test", QueryType.SRV);
        Assert.Equal(["s1.farm.test.", "s2.farm.test.", "s3.farm.test."], srv.Answers.SrvRecords().Select(r => r.Target.Value).Order(StringComparer.Ordinal));
        Assert.All(srv.Answers.SrvRecords(), r => Assert.Equal(7400, r.Port));
        var ws = await client.QueryAsync("_rttp-ws._tcp.stream.farm.test", QueryType.SRV);
        Assert.All(ws.Answers.SrvRecords(), r => Assert.Equal(7481, r.Port));
        Assert.Equal(3, ws.Answers.SrvRecords().Count());

        var soa = Assert.Single((await client.QueryAsync("farm.test", QueryType.SOA)).Answers.SoaRecords());
        Assert.Equal("ns1.farm.test.", soa.MName.Value);
        Assert.Equal("hostmaster.farm.test.", soa.RName.Value);
        Assert.Equal(5u, soa.Minimum);
        Assert.Equal("ns1.farm.test.", Assert.Single((await client.QueryAsync("farm.test", QueryType.NS)).Answers.NsRecords()).NSDName.Value);
        Assert.Equal("192.0.2.53", Assert.Single((await client.QueryAsync("ns1.farm.test", QueryType.A)).Answers.ARecords()).Address.ToString());
        Assert.Equal(Farm.Ip(2), Assert.Single((await client.QueryAsync("s2.farm.test", QueryType.A)).Answers.ARecords()).Address.ToString());

        var nx = await client.QueryAsync("nope.farm.test", QueryType.A);
        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, nx.Header.ResponseCode);
        Assert.True(nx.Header.HasAuthorityAnswer);
        Assert.Empty(nx.Answers);
        Assert.Single(nx.Authorities.SoaRecords());

        var noData = await client.QueryAsync("stream.farm.test", QueryType.TXT);
        Assert.Equal(DnsHeaderResponseCode.NoError, noData.Header.ResponseCode);
        Assert.Empty(noData.Answers);
        Assert.Single(noData.Authorities.SoaRecords());

        var refused = await client.QueryAsync("example.com", QueryType.A);
        Assert.Equal(DnsHeaderResponseCode.Refused, refused.Header.ResponseCode);
        Assert.False(refused.Header.HasAuthorityAnswer);

        var mixedCase = await client.QueryAsync("StReAm.FaRm.TeSt", QueryType.A);
        Assert.Contains(Assert.Single(mixedCase.Answers.ARecords()).Address.ToString(), ThreeIps);
    }

    [Fact]
    public async Task DnsClient_ManySrvOverUdp_IsTruncatedAndTheTcpRetryGetsAll()
    {
        await using var server = Start(Farm.Healthy(60));
        var client = new LookupClient(new LookupClientOptions(server.EndPoint)
        {
            UseCache = false,
            Recursion = false,
            UseTcpFallback = true,
            Timeout = TimeSpan.FromSeconds(5),
            Retries = 3,
        });

        var srv = await client.QueryAsync("_rttp._tcp.stream.farm.test", QueryType.SRV);

        Assert.False(srv.HasError, srv.ErrorMessage);
        Assert.Equal(60, srv.Answers.SrvRecords().Select(r => r.Target.Value).Distinct().Count());
    }

    [Fact]
    public async Task DnsClient_RoundRobinOverUdp_HandsOutEveryHealthyServer()
    {
        await using var server = Start(Farm.Table(Farm.Server(1), Farm.Server(2), Farm.Server(3), Farm.Server(4, state: "draining")));
        var client = Client(server, tcp: false);

        var seen = new List<string>();
        for (var i = 0; i < 9; i++)
        {
            seen.Add(Assert.Single((await client.QueryAsync("stream.farm.test", QueryType.A)).Answers.ARecords()).Address.ToString());
        }

        Assert.Equal(ThreeIps.Order(StringComparer.Ordinal), seen.Distinct().Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task DnsClient_ServerOnIpv6Loopback_Answers()
    {
        await using var server = Start(Farm.Table(Farm.Server(1, ip: "2001:db8::1"), Farm.Server(2)), bind: IPAddress.IPv6Loopback);

        var aaaa = await Client(server, tcp: false).QueryAsync("stream.farm.test", QueryType.AAAA);
        var a = await Client(server, tcp: true).QueryAsync("stream.farm.test", QueryType.A);

        Assert.Equal("2001:db8::1", Assert.Single(aaaa.Answers.AaaaRecords()).Address.ToString());
        Assert.Equal(Farm.Ip(2), Assert.Single(a.Answers.ARecords()).Address.ToString());
    }

    // ---- dig and kdig ----

    [Fact]
    public async Task Dig_ShortAnswers_OverUdpAndTcp()
    {
        await using var server = Start(Farm.Healthy(3));
        var ep = server.EndPoint;

        Assert.Contains(Assert.Single(Tool.Lines(await Tool.DigAsync(ep, "stream.farm.test", "A", "+short"))), ThreeIps);
        Assert.Contains(Assert.Single(Tool.Lines(await Tool.DigAsync(ep, "stream.farm.test", "A", "+short", "+tcp"))), ThreeIps);
        Assert.Contains(Assert.Single(Tool.Lines(await Tool.DigAsync(ep, "stream.farm.test", "A", "+short", "+noedns"))), ThreeIps);
        Assert.Equal(Farm.Ip(3), Assert.Single(Tool.Lines(await Tool.DigAsync(ep, "s3.farm.test", "A", "+short"))));
        Assert.Equal("ns1.farm.test.", Assert.Single(Tool.Lines(await Tool.DigAsync(ep, "farm.test", "NS", "+short"))));
        Assert.Equal(
            ["0 1000 7400 s1.farm.test.", "0 1000 7400 s2.farm.test.", "0 1000 7400 s3.farm.test."],
            Tool.Lines(await Tool.DigAsync(ep, "_rttp._tcp.stream.farm.test", "SRV", "+short")).Order(StringComparer.Ordinal));
        Assert.Equal(
            ["0 1000 7481 s1.farm.test.", "0 1000 7481 s2.farm.test.", "0 1000 7481 s3.farm.test."],
            Tool.Lines(await Tool.DigAsync(ep, "_rttp-ws._tcp.stream.farm.test", "SRV", "+short", "+tcp")).Order(StringComparer.Ordinal));
        var soa = Assert.Single(Tool.Lines(await Tool.DigAsync(ep, "farm.test", "SOA", "+short"))).Split(' ');
        Assert.Equal(["ns1.farm.test.", "hostmaster.farm.test."], soa[..2]);
        Assert.Equal(["60", "30", "600", "5"], soa[3..]);
    }

    [Fact]
    public async Task Dig_FullOutput_ShowsStatusFlagsAndSections()
    {
        await using var server = Start(Farm.Healthy(3));
        var ep = server.EndPoint;

        var a = await Tool.DigAsync(ep, "stream.farm.test", "A");
        Assert.Contains("status: NOERROR", a, StringComparison.Ordinal);
        Assert.Contains("flags: qr aa;", a, StringComparison.Ordinal); // authoritative, no recursion available
        Assert.Contains("ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1", a, StringComparison.Ordinal);
        Assert.Contains("EDNS: version: 0, flags:; udp: 1232", a, StringComparison.Ordinal);
        Assert.Matches(@"stream\.farm\.test\.\s+5\s+IN\s+A\s+10\.0\.0\.[234]", a);

        var nx = await Tool.DigAsync(ep, "nope.farm.test", "A");
        Assert.Contains("status: NXDOMAIN", nx, StringComparison.Ordinal);
        Assert.Contains("flags: qr aa;", nx, StringComparison.Ordinal);
        Assert.Contains("ANSWER: 0, AUTHORITY: 1", nx, StringComparison.Ordinal);
        Assert.Matches(@"farm\.test\.\s+5\s+IN\s+SOA\s+ns1\.farm\.test\. hostmaster\.farm\.test\.", nx);

        var noData = await Tool.DigAsync(ep, "_tcp.stream.farm.test", "SRV");
        Assert.Contains("status: NOERROR", noData, StringComparison.Ordinal);
        Assert.Contains("ANSWER: 0, AUTHORITY: 1", noData, StringComparison.Ordinal);

        var refused = await Tool.DigAsync(ep, "example.com", "A");
        Assert.Contains("status: REFUSED", refused, StringComparison.Ordinal);
        Assert.Contains("flags: qr;", refused, StringComparison.Ordinal);

        var chaos = await Tool.DigAsync(ep, "version.bind", "TXT", "-c", "CH");
        Assert.Contains("status: REFUSED", chaos, StringComparison.Ordinal);

        var update = await Tool.DigAsync(ep, "farm.test", "SOA", "+opcode=update");
        Assert.Contains("status: NOTIMP", update, StringComparison.Ordinal);

        var badVers = await Tool.DigAsync(ep, "stream.farm.test", "A", "+edns=1", "+noednsnegotiation");
        Assert.Contains("status: BADVERS", badVers, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dig_ManySrv_TruncatedOverUdpAndWholeOverTcp()
    {
        await using var server = Start(Farm.Healthy(60));
        var ep = server.EndPoint;

        var truncated = await Tool.DigAsync(ep, "_rttp._tcp.stream.farm.test", "SRV", "+ignore", "+noedns");
        var retried = Tool.Lines(await Tool.DigAsync(ep, "_rttp._tcp.stream.farm.test", "SRV", "+short"));
        var overTcp = Tool.Lines(await Tool.DigAsync(ep, "_rttp._tcp.stream.farm.test", "SRV", "+short", "+tcp"));

        Assert.Contains("flags: qr aa tc;", truncated, StringComparison.Ordinal);
        Assert.Contains("ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0", truncated, StringComparison.Ordinal);
        Assert.Equal(60, retried.Distinct().Count()); // dig retries over TCP by itself
        Assert.Equal(60, overTcp.Distinct().Count());
    }

    [Fact]
    public async Task Kdig_AnswersOverUdpAndTcp()
    {
        await using var server = Start(Farm.Table(Farm.Server(1), Farm.Server(2), Farm.Server(3), Farm.Server(4, ip: "2001:db8::4")));
        var ep = server.EndPoint;

        Assert.Contains(Assert.Single(Tool.Lines(await Tool.KdigAsync(ep, "stream.farm.test", "A", "+short"))), ThreeIps);
        Assert.Contains(Assert.Single(Tool.Lines(await Tool.KdigAsync(ep, "stream.farm.test", "A", "+short", "+tcp"))), ThreeIps);
        Assert.Equal("2001:db8::4", Assert.Single(Tool.Lines(await Tool.KdigAsync(ep, "stream.farm.test", "AAAA", "+short"))));
        Assert.Equal(4, Tool.Lines(await Tool.KdigAsync(ep, "_rttp._tcp.stream.farm.test", "SRV", "+short", "+tcp")).Count);
        var nx = await Tool.KdigAsync(ep, "NoPe.farm.test", "A");
        Assert.Contains("status: NXDOMAIN", nx, StringComparison.Ordinal);
        Assert.Contains("flags: qr aa;", nx, StringComparison.OrdinalIgnoreCase);
        var refused = await Tool.KdigAsync(ep, "example.org", "A", "+tcp");
        Assert.Contains("status: REFUSED", refused, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DigAndKdig_SrvAndNs_ShowTheAddressesInTheAdditionalSection()
    {
        await using var server = Start(Farm.Healthy(3));
        var ep = server.EndPoint;

        foreach (var tool in new Func<IPEndPoint, string, string, string[], Task<string>>[] { Tool.DigAsync, Tool.KdigAsync })
        {
            var srv = await tool(ep, "_rttp._tcp.stream.farm.test", "SRV", ["+noall", "+additional"]);
            var ns = await tool(ep, "farm.test", "NS", ["+noall", "+additional", "+tcp"]);

            var glue = Tool.Lines(srv).Select(l => l.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)).ToList();
            Assert.Equal(["s1.farm.test.", "s2.farm.test.", "s3.farm.test."], glue.Select(f => f[0]));
            Assert.Equal(ThreeIps, glue.Select(f => f[^1]));
            Assert.All(glue, f => Assert.Equal("A", f[^2]));
            var nsGlue = Assert.Single(Tool.Lines(ns)).Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["ns1.farm.test.", "192.0.2.53"], [nsGlue[0], nsGlue[^1]]);
        }

        var client = Client(server, tcp: false);
        var viaLibrary = await client.QueryAsync("_rttp-ws._tcp.stream.farm.test", QueryType.SRV);
        Assert.Equal(ThreeIps, viaLibrary.Additionals.ARecords().Select(r => r.Address.ToString()));
    }

    [Fact]
    public async Task ZoneTransfer_OverTcpAndUdp_IsNotAuthOrNotImpAsKnotAnswers()
    {
        await using var server = Start(Farm.Healthy(3));

        using (var tcp = new TcpClient(AddressFamily.InterNetwork))
        {
            await tcp.ConnectAsync(server.EndPoint);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Framed(Query("farm.test", Axfr, id: 1)));
            var axfr = DnsMessage.Parse(await ReadFramedAsync(stream));
            Assert.Equal(9, axfr.Rcode);
            Assert.Equal(0, axfr.AnCount);
        }

        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Connect(server.EndPoint);
        await udp.SendAsync(Query("farm.test", Axfr, id: 2));
        await udp.SendAsync(Concat(Header(id: 3, ns: 1), Name("farm.test"), TypeClass(Ixfr), SoaRecord([0xC0, 0x0C], 1)));
        var byId = (await ReceiveAllAsync(udp, got => got.Count >= 2)).Select(r => DnsMessage.Parse(r)).ToDictionary(m => m.Id);
        Assert.Equal(4, byId[2].Rcode);
        Assert.Equal(9, byId[3].Rcode);

        // dig and kdig print no status for a failed transfer; QTYPE 0 they show.
        var typeZero = await Tool.KdigAsync(server.EndPoint, "farm.test", "TYPE0");
        Assert.Contains("status: NOTIMPL", typeZero, StringComparison.Ordinal);
    }

    // ---- malformed input ----

    [Fact]
    public async Task RawUdp_MalformedDatagrams_AreDroppedOrFormerrAndTheServerKeepsAnswering()
    {
        await using var server = Start(Farm.Healthy(3));
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Connect(server.EndPoint);

        await udp.SendAsync(new byte[] { 0x01, 0x01, 0x01, 0x00, 0x00 });                                            // short
        await udp.SendAsync(Query("stream.farm.test", A, id: 0x0202, flags: 0x8100));                                // QR set
        await udp.SendAsync(Concat(Header(id: 0x0303), [0xC0, 0x0C], TypeClass(A)));                                 // compression loop
        await udp.SendAsync(Concat(Header(id: 0x0404, qd: 0)));                                                      // no question
        await udp.SendAsync(Concat(Header(id: 0x0505), Labels([.. Enumerable.Repeat((byte)'x', 64)]), TypeClass(A))); // label of 64
        await udp.SendAsync(Query("farm.test", Soa, id: 0x0606, flags: 5 << 11));                                    // UPDATE
        await udp.SendAsync(Array.Empty<byte>());                                                                     // empty
        await udp.SendAsync(Query("stream.farm.test", A, id: 0x0707));                                               // valid
        var replies = await ReceiveAllAsync(udp, got => got.Count >= 5);

        var byId = replies.Select(r => DnsMessage.Parse(r)).ToDictionary(m => m.Id);
        Assert.Equal([0x0303, 0x0404, 0x0505, 0x0606, 0x0707], byId.Keys.Select(k => (int)k).Order());
        Assert.Equal(1, byId[0x0303].Rcode);
        Assert.Equal(1, byId[0x0404].Rcode);
        Assert.Equal(1, byId[0x0505].Rcode);
        Assert.Equal(4, byId[0x0606].Rcode);
        Assert.Contains(Assert.Single(byId[0x0707].Answers).Address!.ToString(), ThreeIps);

        var after = await Client(server, tcp: false).QueryAsync("stream.farm.test", QueryType.A);
        Assert.Single(after.Answers.ARecords());
    }

    /// <summary>
    /// Datagrams read and answered in batches (recvmmsg/sendmmsg on Linux): a burst gets every
    /// answer, each to its own query; one datagram too long for a batch slot (over 4 KiB: no DNS
    /// query is) is dropped without costing its neighbours anything.
    /// </summary>
    [Fact]
    public async Task RawUdp_BurstWithAnOversizedDatagram_EveryQueryAnsweredOnce_TheOversizedOneDropped()
    {
        await using var server = Start(Farm.Healthy(3), o => o.RateLimit = 0);
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Client.ReceiveBufferSize = 4 << 20;
        udp.Connect(server.EndPoint);
        const int burst = 400;
        for (var id = 1; id <= burst; id++)
        {
            await udp.SendAsync(Query(id % 2 == 0 ? "stream.farm.test" : "s1.farm.test", A, id: (ushort)id));
            if (id == burst / 2)
            {
                await udp.SendAsync(Concat(Query("stream.farm.test", A, id: 0x7FFF), new byte[5000])); // trailing bytes: over a slot
            }
        }

        var replies = await ReceiveAllAsync(udp, got => got.Count >= burst);
        var ids = replies.Select(r => (int)DnsMessage.Parse(r).Id).ToList();
        Assert.Equal(Enumerable.Range(1, burst), ids.Order());
        Assert.DoesNotContain(0x7FFF, ids);
    }

    [Fact]
    public async Task RawUdp_ThousandsOfRandomDatagrams_EveryReplyIsWellFormedAndTheServerStillAnswers()
    {
        await using var server = Start(Farm.Healthy(3), o => o.RateLimit = 0);
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Connect(server.EndPoint);
        var random = new Random(99);

        for (var i = 0; i < 3000; i++)
        {
            var bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            if (bytes.Length > 3 && i % 2 == 0)
            {
                bytes[2] &= 0x7F; // a query, not a response: it gets past the first check
            }

            await udp.SendAsync(bytes);
            if (i % 200 == 0)
            {
                await Task.Yield();
            }
        }

        var replies = await ReceiveAllAsync(udp, _ => true, quiet: TimeSpan.FromSeconds(1));

        Assert.NotEmpty(replies);
        Assert.All(replies, r =>
        {
            var m = DnsMessage.Parse(r);
            Assert.True(m.Qr);
            Assert.Contains(m.Rcode, new[] { 1, 4 }); // random bytes are never a valid query
        });
        var after = await Client(server, tcp: false).QueryAsync("stream.farm.test", QueryType.A);
        Assert.Single(after.Answers.ARecords());
        var afterTcp = await Client(server, tcp: true).QueryAsync("stream.farm.test", QueryType.A);
        Assert.Single(afterTcp.Answers.ARecords());
    }

    [Fact]
    public async Task RawTcp_MalformedMessages_FormerrOrCloseAndOtherConnectionsKeepWorking()
    {
        await using var server = Start(Farm.Healthy(3));

        // A FORMERR keeps the connection; a valid query after it on the same connection is answered.
        using (var tcp = new TcpClient(AddressFamily.InterNetwork))
        {
            await tcp.ConnectAsync(server.EndPoint);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Framed(Concat(Header(id: 0x0303), [0xC0, 0x0C], TypeClass(A))));
            Assert.Equal(1, DnsMessage.Parse(await ReadFramedAsync(stream)).Rcode);

            // Two queries in one write: two answers, in order.
            await stream.WriteAsync(Concat(Framed(Query("stream.farm.test", A, id: 1)), Framed(Query("_rttp._tcp.stream.farm.test", Srv, id: 2))));
            var first = DnsMessage.Parse(await ReadFramedAsync(stream));
            var second = DnsMessage.Parse(await ReadFramedAsync(stream));
            Assert.Equal(1, first.Id);
            Assert.Single(first.Answers);
            Assert.Equal(2, second.Id);
            Assert.Equal(3, second.Answers.Count);
        }

        // A message shorter than a header, or a response: the server closes the connection.
        foreach (var message in new[] { new byte[] { 1, 2, 3, 4, 5 }, Query("stream.farm.test", A, flags: 0x8000) })
        {
            using var tcp = new TcpClient(AddressFamily.InterNetwork);
            await tcp.ConnectAsync(server.EndPoint);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Framed(message));
            Assert.True(await ClosedAsync(stream));
        }

        // A half-sent message holds only its own connection.
        using var stalled = new TcpClient(AddressFamily.InterNetwork);
        await stalled.ConnectAsync(server.EndPoint);
        await stalled.GetStream().WriteAsync(new byte[] { 0xFF, 0xFF, 1, 2, 3 });

        var after = await Client(server, tcp: true).QueryAsync("stream.farm.test", QueryType.A);
        Assert.Single(after.Answers.ARecords());
    }

    // ---- response rate limiting ----

    [Fact]
    public async Task RateLimit_200QueriesFromOneSource_FarFewerFullAnswersSomeTruncatedAndTcpStillAnswered()
    {
        await using var server = Start(Farm.Healthy(3), o =>
        {
            o.RateLimit = 10;
            o.Slip = 2;
        });

        var (full, truncated, other) = await FloodAsync(server, 200);

        Assert.Equal(0, other);
        Assert.InRange(full, 1, 60);
        Assert.InRange(truncated, 1, 200 - full);
        Assert.True(full + truncated < 200, $"{full} full and {truncated} truncated: some must be dropped");
        Assert.True(server.RateLimited >= 100, $"{server.RateLimited} limited");
        await AssertTcpAnswersAsync(server);
    }

    [Fact]
    public async Task RateLimit_FrozenClock_ExactlyTheBudgetIsAnsweredInFull()
    {
        var time = new FakeTimeProvider(Farm.Start);
        await using var server = Start(Farm.Healthy(3), o =>
        {
            o.RateLimit = 10;
            o.Slip = 2;
        }, time);

        var (full, truncated, other) = await FloodAsync(server, 200);

        // No time passes, so the bucket never refills: 10 full answers; of the 190 over the limit,
        // every second one slips (truncated) and the rest are dropped.
        Assert.Equal(0, other);
        Assert.InRange(full, 1, 10);
        Assert.InRange(truncated, 1, 95);
        Assert.Equal(server.Queries - 10, server.RateLimited); // all but the budget, whatever loopback lost
        await AssertTcpAnswersAsync(server);
    }

    [Fact]
    public async Task RateLimit_SlipOfMalformedQueries_NeverSendsEmptyDatagrams()
    {
        var time = new FakeTimeProvider(Farm.Start);
        await using var server = Start(Farm.Healthy(3), o =>
        {
            o.RateLimit = 5;
            o.Slip = 1; // every response over the limit would slip
        }, time);
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Connect(server.EndPoint);

        for (var i = 0; i < 50; i++)
        {
            await udp.SendAsync(Concat(Header(id: (ushort)i), [0xC0, 0x0C], TypeClass(A)));
        }

        await udp.SendAsync(Query("stream.farm.test", A, id: 1000)); // over the limit: slips, truncated
        var replies = await ReceiveAllAsync(udp, got => got.Any(r => r.Length >= 2 && BinaryPrimitives.ReadUInt16BigEndian(r) == 1000));

        Assert.All(replies, r => Assert.True(r.Length >= 12, $"a datagram of {r.Length} bytes"));
        Assert.InRange(replies.Count(r => DnsMessage.Parse(r).Rcode == 1), 1, 5);
        var slipped = DnsMessage.Parse(Assert.Single(replies, r => BinaryPrimitives.ReadUInt16BigEndian(r) == 1000));
        Assert.True(slipped.Tc);
        Assert.Empty(slipped.Answers);
    }

    [Fact]
    public async Task RateLimit_Zero_AnswersEveryQueryInFull()
    {
        await using var server = Start(Farm.Healthy(3), o => o.RateLimit = 0);

        var (full, truncated, other) = await FloodAsync(server, 200);

        Assert.Equal(0, other);
        Assert.Equal(0, truncated);
        Assert.InRange(full, 150, 200); // loopback UDP may in theory lose a few
        Assert.Equal(0, server.RateLimited);
    }

    // ---- helpers ----

    private static DnsServer Start(FarmSnapshot farm, Action<DnsOptions>? configure = null, TimeProvider? time = null, IPAddress? bind = null)
    {
        var options = Farm.Options(configure);
        var responder = new DnsResponder(options, () => farm);
        var server = new DnsServer(responder, options, new IPEndPoint(bind ?? IPAddress.Loopback, 0), time ?? TimeProvider.System);
        server.Start();
        return server;
    }

    private static LookupClient Client(DnsServer server, bool tcp) => new(new LookupClientOptions(server.EndPoint)
    {
        UseCache = false,
        Recursion = false,
        UseTcpOnly = tcp,
        Timeout = TimeSpan.FromSeconds(5),
        Retries = 3,
        ThrowDnsErrors = false,
        ContinueOnDnsError = false,
    });

    /// <summary>Sends <paramref name="count"/> queries for the service name from one socket; sorts the replies.</summary>
    private static async Task<(int Full, int Truncated, int Other)> FloodAsync(DnsServer server, int count)
    {
        using var udp = new UdpClient(AddressFamily.InterNetwork);
        udp.Connect(server.EndPoint);
        for (var i = 0; i < count; i++)
        {
            await udp.SendAsync(Query("stream.farm.test", A, id: (ushort)(i + 1)));
        }

        var replies = (await ReceiveAllAsync(udp, got => got.Count > 0, quiet: TimeSpan.FromSeconds(1))).Select(r => DnsMessage.Parse(r)).ToList();
        Assert.Equal(replies.Count, replies.Select(m => m.Id).Distinct().Count());
        var full = replies.Count(m => !m.Tc && m.Rcode == 0 && m.Answers.Count == 1);
        var truncated = replies.Count(m => m.Tc && m.Rcode == 0 && m.Answers.Count == 0 && m.QuestionName == "stream.farm.test");
        return (full, truncated, replies.Count - full - truncated);
    }

    private static async Task AssertTcpAnswersAsync(DnsServer server)
    {
        var client = Client(server, tcp: true);
        for (var i = 0; i < 20; i++)
        {
            var r = await client.QueryAsync("stream.farm.test", QueryType.A);
            Assert.Contains(Assert.Single(r.Answers.ARecords()).Address.ToString(), ThreeIps);
        }

        Assert.Contains(Assert.Single(Tool.Lines(await Tool.DigAsync(server.EndPoint, "stream.farm.test", "A", "+short", "+tcp"))), ThreeIps);
    }

    /// <summary>
    /// Receives datagrams: waits up to 10 s for each while <paramref name="enough"/> is false, then
    /// only <paramref name="quiet"/> (default 500 ms) for stragglers.
    /// </summary>
    private static async Task<List<byte[]>> ReceiveAllAsync(UdpClient udp, Func<List<byte[]>, bool> enough, TimeSpan? quiet = null)
    {
        var got = new List<byte[]>();
        while (got.Count < 100_000)
        {
            using var wait = new CancellationTokenSource(enough(got) ? quiet ?? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(10));
            try
            {
                got.Add((await udp.ReceiveAsync(wait.Token)).Buffer);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return got;
    }

    /// <summary>Whether the server closes the connection (FIN, or RST when it left bytes unread).</summary>
    private static async Task<bool> ClosedAsync(NetworkStream stream)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            return await stream.ReadAsync(new byte[2], deadline.Token) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static byte[] Framed(byte[] message) => [.. U16((ushort)message.Length), .. message];

    private static async Task<byte[]> ReadFramedAsync(NetworkStream stream)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var length = new byte[2];
        await stream.ReadExactlyAsync(length, deadline.Token);
        var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
        await stream.ReadExactlyAsync(message, deadline.Token);
        return message;
    }
}
