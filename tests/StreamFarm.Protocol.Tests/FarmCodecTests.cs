using System.Buffers;
using System.Text;
using StreamFarm.Protocol.Tests.Kit;

namespace StreamFarm.Protocol.Tests;

public sealed class FarmCodecTests
{
    private static readonly FarmMember S1 = new()
    {
        Id = "s1", Group = "default", State = "active", Liveness = "alive", Users = 3, Capacity = 10000,
        Tcp = "127.0.0.2:7400", Ws = "ws://127.0.0.2:7480/rttp", Http = "http://127.0.0.2:7480",
    };

    private static readonly FarmMember S2 = new()
    {
        Id = "s2", Group = "eu west\\1", State = "draining", Liveness = "suspect", Users = 0, Capacity = 1,
        Tcp = "[::1]:7401", Ws = "ws://[::1]:7481/rttp?a=b c", Http = "http://[::1]:7481",
    };

    private static readonly FarmMember S3 = new() { Id = "s3-é", Group = "ap", State = "joining", Liveness = "dead", Users = int.MaxValue, Capacity = int.MaxValue };

    [Fact]
    public void WriteTable_ThenParse_GivesFarmLineAndEveryMember()
    {
        var w = new ArrayBufferWriter<byte>();

        FarmCodec.WriteTable(w, new FarmSnapshot(5, [S1, S2, S3]));

        var lines = ParseAll(w);
        Assert.Equal(4, lines.Count);
        Assert.Equal(Parsed.Valid(RttpVerb.Farm, ["5", "3"], []), lines[0].Parsed);
        Assert.All(lines.Skip(1), l => Assert.Equal(RttpVerb.Server, l.Parsed.Verb));
        Assert.All(lines.Skip(1), l => Assert.Equal("5", l.Parsed.Args));
        Assert.Equal([S1, S2, S3], lines.Skip(1).Select(l => l.Member));
    }

    [Fact]
    public void WriteTable_SingleServer_MatchesTheDocumentedLines()
    {
        var w = new ArrayBufferWriter<byte>();

        FarmCodec.WriteTable(w, new FarmSnapshot(1, [S1]));

        Assert.Equal(
            "FARM 1 1\nSERVER 1 id=s1 group=default state=active liveness=alive users=3 capacity=10000 tcp=127.0.0.2:7400 ws=ws://127.0.0.2:7480/rttp http=http://127.0.0.2:7480\n",
            Encoding.UTF8.GetString(w.WrittenSpan));
    }

    [Fact]
    public void WriteTable_Empty_GivesFarmLineWithZeroCount()
    {
        var w = new ArrayBufferWriter<byte>();

        FarmCodec.WriteTable(w, FarmSnapshot.Empty);

        Assert.Equal("FARM 0 0\n", Encoding.UTF8.GetString(w.WrittenSpan));
    }

    [Fact]
    public void WriteDelta_InsertChangeDelete_GivesServerAndFarmDelLinesAtNewVersion()
    {
        var from = new FarmSnapshot(6, [S1, S2, S3]);
        var s2Busier = S2 with { Users = 42, State = "active" };
        var s4 = new FarmMember { Id = "s4", Tcp = "10.0.0.4:7400" };
        var to = new FarmSnapshot(7, [S1, s2Busier, s4]);
        var w = new ArrayBufferWriter<byte>();

        FarmCodec.WriteDelta(w, from, to);

        var lines = ParseAll(w);
        Assert.Equal(3, lines.Count);
        Assert.Equal(RttpVerb.Server, lines[0].Parsed.Verb);
        Assert.Equal(s2Busier, lines[0].Member);
        Assert.Equal(RttpVerb.Server, lines[1].Parsed.Verb);
        Assert.Equal(s4, lines[1].Member);
        Assert.Equal(Parsed.Valid(RttpVerb.FarmDel, ["7", "s3-é"], []), lines[2].Parsed);
        Assert.All(lines, l => Assert.StartsWith("7", l.Parsed.Args, StringComparison.Ordinal));
    }

    [Fact]
    public void WriteDelta_SameMembers_WritesNothing()
    {
        var w = new ArrayBufferWriter<byte>();

        FarmCodec.WriteDelta(w, new FarmSnapshot(3, [S1, S2]), new FarmSnapshot(4, [S2 with { }, S1 with { }]));

        Assert.Equal(0, w.WrittenCount);
    }

    [Fact]
    public void WriteDelta_FromEmpty_WritesEveryMember()
    {
        var w = new ArrayBufferWriter<byte>();

        FarmCodec.WriteDelta(w, FarmSnapshot.Empty, new FarmSnapshot(1, [S1, S2]));

        Assert.Equal([S1, S2], ParseAll(w).Select(l => l.Member));
    }

    [Fact]
    public void ReadServer_MissingAndUnknownFields_GivesDefaultsAndIgnoresUnknown()
    {
        var frame = Parse("SERVER 9 id=s9 future=yes users=many tcp=h:1 @x=1");

        var member = FarmCodec.ReadServer(frame);

        Assert.Equal(new FarmMember { Id = "s9", Group = "default", State = "active", Liveness = "alive", Users = 0, Capacity = 0, Tcp = "h:1", Ws = "", Http = "" }, member);
    }

    [Fact]
    public void ReadServer_EscapedValues_AreUnescaped()
    {
        var frame = Parse("SERVER 1 id=s1 group=eu\\swest\\x09x capacity=-5");

        var member = FarmCodec.ReadServer(frame);

        Assert.Equal("eu west\tx", member.Group);
        Assert.Equal(-5, member.Capacity);
    }

    private static RttpFrame Parse(string line)
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line)), frame, RttpLimits.Default, out _));
        return frame;
    }

    /// <summary>Every line written, parsed, with the member read from each SERVER line.</summary>
    private static List<(Parsed Parsed, FarmMember? Member)> ParseAll(ArrayBufferWriter<byte> w)
    {
        var buffer = new ReadOnlySequence<byte>(w.WrittenMemory);
        var frame = new RttpFrame();
        var lines = new List<(Parsed, FarmMember?)>();
        while (RttpLineReader.TryReadLine(ref buffer, RttpLimits.DefaultMaxLineBytes, out var line) == OperationStatus.Done)
        {
            var error = RttpParser.TryParse(line, frame, RttpLimits.Default, out var reason);
            Assert.True(error == RttpErrorCode.None, $"{error}: {reason}");
            lines.Add((Parsed.From(error, frame), frame.Verb == RttpVerb.Server ? FarmCodec.ReadServer(frame) : null));
        }

        Assert.Equal(0, buffer.Length);
        return lines;
    }
}
