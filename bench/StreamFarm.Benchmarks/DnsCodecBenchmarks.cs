using System.Net;
using System.Reflection;
using System.Text;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using BenchmarkDotNet.Attributes;
using StreamFarm.Dns;
using StreamFarm.Protocol;

namespace StreamFarm.Benchmarks;

/// <summary>
/// One DNS query answered, for the four queries of <c>./bench.sh dns</c>: our hot path
/// (<see cref="DnsResponder.Respond"/>: strict reader, answer written into a reused buffer) against
/// the same work with ARSoft.Tools.Net (<c>DnsMessage.Parse</c>, a response with pre-built records
/// from a dictionary, <c>Encode</c>). The zone is a farm of three active servers, three addresses per
/// answer, as in the dnsperf comparison. docs/architecture.md ("DNS system: codec by measurement").
/// </summary>
[MemoryDiagnoser]
public class DnsCodecBenchmarks
{
    private static readonly byte[] Client = [127, 0, 0, 1];

    /// <summary>ARSoft's encoder is internal: the same method its own DnsServer calls, bound once.</summary>
    private static readonly Func<DnsMessageBase, DnsRawPackage> Encode = BindEncode();

    private readonly byte[] _response = new byte[65536];
    private readonly Dictionary<(DomainName, RecordType), List<DnsRecordBase>> _records = [];
    private DnsResponder _responder = null!;
    private byte[] _query = [];
    private SoaRecord _soa = null!;

    [Params("stream A", "s1 A", "_rttp._tcp.stream SRV", "nonexistent A")]
    public string Query { get; set; } = "stream A";

    [GlobalSetup]
    public void Setup()
    {
        var farm = new FarmSnapshot(1,
        [
            new FarmMember { Id = "s1", Capacity = 100, Tcp = "127.0.0.2:7400", Ws = "ws://127.0.0.2:7480/rttp" },
            new FarmMember { Id = "s2", Capacity = 100, Tcp = "127.0.0.3:7400", Ws = "ws://127.0.0.3:7480/rttp" },
            new FarmMember { Id = "s3", Capacity = 100, Tcp = "127.0.0.4:7400", Ws = "ws://127.0.0.4:7480/rttp" },
        ]);
        _responder = new DnsResponder(new DnsOptions { AnswerCount = 3, NameServerAddress = "127.0.0.1", RateLimit = 0 }, () => farm);

        // The same zone as ARSoft records, built once (a fair ARSoft responder would not build them per query).
        var zone = DomainName.Parse("farm.test");
        var stream = DomainName.Parse("stream.farm.test");
        _soa = new SoaRecord(zone, 5, DomainName.Parse("ns1.farm.test"), DomainName.Parse("hostmaster.farm.test"), 1, 60, 30, 600, 5);
        var srv = DomainName.Parse("_rttp._tcp.stream.farm.test");
        for (var i = 1; i <= 3; i++)
        {
            var ip = IPAddress.Parse($"127.0.0.{i + 1}");
            var server = DomainName.Parse($"s{i}.farm.test");
            Add(stream, RecordType.A, new ARecord(stream, 5, ip));
            Add(server, RecordType.A, new ARecord(server, 5, ip));
            Add(srv, RecordType.Srv, new SrvRecord(srv, 5, 0, 100, 7400, server));
        }

        var (label, type) = (Query[..Query.LastIndexOf(' ')], Query[(Query.LastIndexOf(' ') + 1)..]);
        _query = BuildQuery($"{label}.farm.test", type == "SRV" ? (ushort)33 : (ushort)1);

        // Fail fast if either side does not answer as expected: a benchmark of an error path would mislead.
        var ours = Ours();
        var theirs = ArsoftParseAndEncode();
        var expected = label == "nonexistent" ? 3 : 0;
        if (ours < 12 || (_response[3] & 0xF) != expected || theirs < 12)
        {
            throw new InvalidOperationException($"unexpected answers for {Query}: ours {ours} B rcode {_response[3] & 0xF}, ARSoft {theirs} B");
        }
    }

    [Benchmark(Baseline = true, Description = "ours: DnsResponder.Respond")]
    public int Ours() => _responder.Respond(_query, _response, Client, tcp: false);

    [Benchmark(Description = "ARSoft: Parse + answer + Encode")]
    public int ArsoftParseAndEncode()
    {
        var query = DnsMessage.Parse(new ArraySegment<byte>(_query));
        var response = query.CreateResponseInstance();
        response.IsAuthoritiveAnswer = true;
        var question = query.Questions[0];
        if (_records.TryGetValue((question.Name, question.RecordType), out var answers))
        {
            response.AnswerRecords.AddRange(answers);
        }
        else
        {
            response.ReturnCode = ReturnCode.NxDomain;
            response.AuthorityRecords.Add(_soa);
        }

        return Encode(response).Length;
    }

    private void Add(DomainName name, RecordType type, DnsRecordBase record)
    {
        if (!_records.TryGetValue((name, type), out var list))
        {
            _records[(name, type)] = list = [];
        }

        list.Add(record);
    }

    /// <summary>A plain query as dnsperf sends it: RD set, one question, no EDNS.</summary>
    private static byte[] BuildQuery(string name, ushort type)
    {
        var q = new List<byte> { 0x4a, 0x21, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.Split('.'))
        {
            q.Add((byte)label.Length);
            q.AddRange(Encoding.ASCII.GetBytes(label));
        }

        q.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        return [.. q];
    }

    private static Func<DnsMessageBase, DnsRawPackage> BindEncode() =>
        (typeof(DnsMessageBase).GetMethod("Encode", BindingFlags.Instance | BindingFlags.NonPublic, Type.EmptyTypes)
            ?? throw new InvalidOperationException("ARSoft.Tools.Net has no DnsMessageBase.Encode() (another version?)"))
        .CreateDelegate<Func<DnsMessageBase, DnsRawPackage>>();
}
