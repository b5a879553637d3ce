using System.Text;
using StreamFarm.Membership;

namespace StreamFarm.Fuzz;

/// <summary>The seed corpus of each target: well-formed inputs of every kind it reads, written to <c>fuzz/corpus/&lt;target&gt;/</c>.</summary>
public static class Corpus
{
    public static IReadOnlyDictionary<string, byte[]> Rttp() => new Dictionary<string, byte[]>(StringComparer.Ordinal)
    {
        ["hello"] = Lines("HELLO 1,2 client=pricer-7 group=eu user=alice password=s3cret"),
        ["session"] = Lines("HELLO 1 client=t", "SUB /FX/GBPUSD /EQ/VOD.L", "PUB /FX/GBPUSD @ack=7 bid=1.2702 ask=1.2704 venue=LSE\\sIOB", "PUBIMAGE /SCORES/m-9 home=2 away=1", "UNSUB /EQ/VOD.L", "PING tok", "PONG", "FARM", "BYE done"),
        ["escapes"] = Lines("PUB /a/b t=tab\\there nl=\\n cr=\\r bs=\\\\ sp=\\s ctl=\\x01\\x7f eq=a=b empty= utf=caf\u00e9\u20ac"),
        ["server-lines"] = Lines("WELCOME 1 server=s1 session=17 maxline=16384 ping=1000 idle=10000", "IMAGE /FX/GBPUSD 1732861234000 41 bid=1.2701", "UPDATE /FX/GBPUSD 1732861234000 42 @merged=3 bid=1.2702", "STATUS /FX/EURUSD NOT_FOUND", "FARM 1 1", "SERVER 1 id=s1 group=default state=active liveness=alive users=3 capacity=100 tcp=10.0.0.1:7400 ws=ws://10.0.0.1:7480/rttp http=http://10.0.0.1:7480", "FARMDEL 1 s2", "MOVE REBALANCE @server=s2 @after=250", "ACK 7", "NACK 8 UNAVAILABLE @after=1000 owner unreachable", "ERR SYNTAX @subject=/x text here"),
        ["route"] = Lines("HELLO 1 route=s2 ts=1732861234000 nonce=abc mac=def", "PUB /x @ts=7421 @hop=1 a=1", "PUBIMAGE /x @seed=1732861234000.5 @handover=1 @stamps=1,2 a=1 b=2", "ACK 12", "NACK 13 TOO_LARGE too large"),
        ["crlf-and-blank"] = Encoding.UTF8.GetBytes("HELLO 1\r\n\r\n  SUB   /a   \r\nPING\n"),
    };

    public static IReadOnlyDictionary<string, byte[]> Dns() => new Dictionary<string, byte[]>(StringComparer.Ordinal)
    {
        ["a"] = Query("stream.farm.test", 1),
        ["aaaa-edns"] = Query("stream.farm.test", 28, edns: true),
        ["srv"] = Query("_rttp._tcp.stream.farm.test", 33, edns: true),
        ["srv-ws"] = Query("_rttp-ws._tcp.stream.farm.test", 33),
        ["ns"] = Query("farm.test", 2),
        ["soa"] = Query("farm.test", 6),
        ["any"] = Query("stream.farm.test", 255),
        ["axfr"] = Query("farm.test", 252),
        ["server-name"] = Query("s1.farm.test", 1),
        ["outside"] = Query("example.com", 1),
        ["txt-mixed-case"] = Query("StReAm.FaRm.TeSt", 16),
        ["compressed"] = CompressedQuery(),
    };

    public static IReadOnlyDictionary<string, byte[]> Gossip()
    {
        var member = new MemberInfo { Id = "s1", Gossip = "10.0.0.1:7401", Incarnation = 3, State = "active", Group = "eu", Capacity = 100, Users = 7, Tcp = "10.0.0.1:7400", Ws = "ws://10.0.0.1:7480/rttp", Http = "http://10.0.0.1:7480", Tls = "s1:7443", Wss = "wss://s1:7481/rttp", Route = "10.0.0.1:7402" };
        var other = member with { Id = "s2", Gossip = "10.0.0.2:7401", Liveness = Liveness.Suspect, Observer = true };
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["ping"] = MessageCodec.Encode(new Ping(1, "s2", "s1", "10.0.0.1:7401")),
            ["indirect-ping"] = MessageCodec.Encode(new IndirectPing(2, "s3", "10.0.0.3:7401", "s1", "10.0.0.1:7401")),
            ["ack-nack"] = [.. MessageCodec.Encode(new Ack(1, "s2")), .. MessageCodec.Encode(new Nack(2, "s3"))],
            ["alive"] = MessageCodec.Encode(new Alive(member)),
            ["suspect-dead"] = [.. MessageCodec.Encode(new Suspect("s2", 4, "s1")), .. MessageCodec.Encode(new Dead("s3", 5, "s1", Left: true))],
            ["push-pull"] = MessageCodec.EncodeStream(new PushPull(Join: true, Reply: false, "s1", "10.0.0.1:7401", [member, other])),
        };
    }

    public static IReadOnlyDictionary<string, byte[]> For(string target) => target switch
    {
        "rttp" => Rttp(),
        "dns" => Dns(),
        "gossip" => Gossip(),
        _ => throw new ArgumentException($"unknown target {target}"),
    };

    /// <summary>Writes every target's seeds under <paramref name="root"/> (one file per seed).</summary>
    public static void Write(string root)
    {
        foreach (var target in Targets.All.Keys)
        {
            var dir = Path.Combine(root, target);
            Directory.CreateDirectory(dir);
            foreach (var (name, bytes) in For(target))
            {
                File.WriteAllBytes(Path.Combine(dir, name), bytes);
            }
        }
    }

    private static byte[] Lines(params string[] lines) => Encoding.UTF8.GetBytes(string.Concat(lines.Select(l => l + "\n")));

    private static byte[] Query(string name, ushort type, bool edns = false)
    {
        var m = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, (byte)(edns ? 1 : 0) };
        m.AddRange(Name(name));
        m.AddRange([(byte)(type >> 8), (byte)type, 0, 1]);
        if (edns)
        {
            // OPT: root name, type 41, UDP size 1232, no extended rcode, DO bit, one cookie option
            m.AddRange([0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        }

        return [.. m];
    }

    private static byte[] CompressedQuery()
    {
        // Two questions, the second's name a pointer to the first (QDCOUNT 2: refused, but read).
        var m = new List<byte> { 0xAB, 0xCD, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0 };
        m.AddRange(Name("stream.farm.test"));
        m.AddRange([0, 1, 0, 1, 0xC0, 12, 0, 33, 0, 1]);
        return [.. m];
    }

    private static byte[] Name(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
        return [.. bytes];
    }
}
