using System.Buffers;
using System.Net;
using StreamFarm.Dns;
using StreamFarm.Membership;
using StreamFarm.Protocol;

namespace StreamFarm.Fuzz;

/// <summary>The targets' names, apart from <see cref="Targets"/>: reading them runs no code of the assemblies under test (whose static constructors need AFL's coverage map set up first).</summary>
public static class TargetNames
{
    public static IReadOnlyList<string> All { get; } = ["rttp", "dns", "gossip"];
}

/// <summary>
/// The fuzz targets: code that reads bytes a stranger sends. Each must return (any outcome, any
/// error code) for every input; an exception or a hang is a finding.
/// </summary>
public static class Targets
{

    /// <summary>The targets by name.</summary>
    public static IReadOnlyDictionary<string, Action<byte[]>> All { get; } = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["rttp"] = Rttp,
        ["dns"] = Dns,
        ["gossip"] = Gossip,
    };

    private static readonly RttpLimits Limits = new() { MaxLineBytes = 16 * 1024, MaxFields = 256 };

    /// <summary>
    /// RTTP input as a server reads it: lines cut from the bytes (the line limit applied), each
    /// parsed, and every field value of a line that parsed unescaped.
    /// </summary>
    public static void Rttp(byte[] input)
    {
        var buffer = new ReadOnlySequence<byte>(input);
        var frame = new RttpFrame();
        Span<byte> scratch = stackalloc byte[256];
        while (true)
        {
            var status = RttpLineReader.TryReadLine(ref buffer, Limits.MaxLineBytes, out var line);
            if (status != OperationStatus.Done)
            {
                break;
            }

            if (RttpParser.TryParse(line, frame, Limits, out _) != RttpErrorCode.None)
            {
                continue;
            }

            for (var i = 0; i < frame.FieldCount; i++)
            {
                var value = frame.FieldValue(i);
                var dest = value.Length <= scratch.Length ? scratch : new byte[value.Length];
                _ = FieldEscaping.TryUnescape(value, dest, out _);
            }
        }
    }

    private static readonly FarmSnapshot Farm = new(3,
    [
        new FarmMember { Id = "s1", Group = "eu", Users = 10, Capacity = 100, Tcp = "10.0.0.1:7400", Ws = "ws://10.0.0.1:7480/rttp", Http = "http://10.0.0.1:7480", Tls = "s1.farm.test:7443" },
        new FarmMember { Id = "s2", Group = "us", Users = 20, Capacity = 100, Tcp = "10.0.0.2:7400", Ws = "ws://10.0.0.2:7480/rttp", Http = "http://10.0.0.2:7480", External = "[2001:db8::2]:7400" },
        new FarmMember { Id = "s3", Group = "eu", State = "draining", Users = 5, Capacity = 100, Tcp = "10.0.0.3:7400", Ws = "ws://10.0.0.3:7480/rttp", Http = "http://10.0.0.3:7480" },
    ]);

    private static readonly DnsResponder Responder = new(new DnsOptions { Zone = "farm.test", Service = "stream", AnswerCount = 2, RateLimit = 0 }, () => Farm, new Random(1));
    private static readonly byte[] Client = IPAddress.Parse("192.0.2.7").GetAddressBytes();

    /// <summary>A DNS query, over UDP and over TCP sizes: the responder answers or drops it, never throws, never writes past its buffer.</summary>
    public static void Dns(byte[] input)
    {
        var response = new byte[65536];
        _ = Responder.Respond(input, response, Client, tcp: false);
        _ = Responder.Respond(input, response, Client, tcp: true);
        _ = DnsResponder.Truncated(input, response);
    }

    /// <summary>A membership datagram (after decryption) and a stream message.</summary>
    public static void Gossip(byte[] input)
    {
        _ = MessageCodec.TryDecodePacket(input, []);
        _ = MessageCodec.TryDecodeStream(input, 1 << 20, out _);
    }
}
