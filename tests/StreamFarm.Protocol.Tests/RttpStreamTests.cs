using System.Buffers;
using System.Text;
using CsCheck;
using StreamFarm.Protocol.Tests.Kit;

namespace StreamFarm.Protocol.Tests;

/// <summary>
/// A stream of lines through <see cref="RttpLineReader"/> and <see cref="RttpParser"/>, as a connection
/// reads it: however the bytes are cut into segments, the parsed lines are the same.
/// </summary>
public sealed class RttpStreamTests
{
    private const int MaxLine = RttpLimits.DefaultMaxLineBytes;

    [Fact]
    public void ReadAll_GeneratedStreamInOneSegment_GivesTheGeneratedLines()
    {
        RttpGen.Stream.Sample(s =>
        {
            var parsed = Parsed.ReadAll(new ReadOnlySequence<byte>(s.Bytes), new RttpFrame(), MaxLine, out var leftOver, out var status);

            Assert.Equal(s.Lines.Select(l => l.Expected), parsed);
            Assert.Equal(OperationStatus.NeedMoreData, status);
            Assert.Equal(0, leftOver);
        }, iter: 500);
    }

    [Fact]
    public void ReadAll_GeneratedStreamSplitAtEveryOffset_GivesSameAsUnsplit()
    {
        Gen.Select(RttpGen.Stream, Gen.Int[1, 64]).Sample((s, gap) =>
        {
            var frame = new RttpFrame();
            var expected = Parsed.ReadAll(new ReadOnlySequence<byte>(s.Bytes), frame, MaxLine, out _, out _);
            for (var cut = 0; cut <= s.Bytes.Length; cut++)
            {
                // Two segments, then three (a second cut a little further on).
                var two = Parsed.ReadAll(Segments.Split(s.Bytes, cut), frame, MaxLine, out var leftTwo, out _);
                Assert.Equal(expected, two);
                Assert.Equal(0, leftTwo);

                var three = Parsed.ReadAll(Segments.Split(s.Bytes, cut, Math.Min(cut + gap, s.Bytes.Length)), frame, MaxLine, out var leftThree, out _);
                Assert.Equal(expected, three);
                Assert.Equal(0, leftThree);
            }
        }, iter: 100);
    }

    [Fact]
    public void ReadAll_GeneratedStreamFedOneByteAtATime_GivesEachLineWhenItsLfArrives()
    {
        RttpGen.Stream.Sample(s =>
        {
            var frame = new RttpFrame();
            var expected = Parsed.ReadAll(new ReadOnlySequence<byte>(s.Bytes), frame, MaxLine, out _, out _);

            // The bytes arrive one by one, each in its own segment, and the reader is asked after every
            // byte: a pipe handing out what it has, with what was read consumed.
            var all = Segments.OneBytePerSegment(s.Bytes);
            var got = new List<Parsed>();
            long consumed = 0;
            for (var received = 1; received <= s.Bytes.Length; received++)
            {
                var buffer = all.Slice(consumed, received - consumed);
                while (true)
                {
                    var before = buffer.Length;
                    var status = RttpLineReader.TryReadLine(ref buffer, MaxLine, out var line);
                    if (status != OperationStatus.Done)
                    {
                        Assert.Equal(OperationStatus.NeedMoreData, status);
                        break;
                    }

                    Assert.Equal((byte)'\n', s.Bytes[received - 1]);
                    consumed += before - buffer.Length;
                    got.Add(Parsed.Parse(line, frame));
                }
            }

            Assert.Equal(expected, got);
            Assert.Equal(s.Bytes.Length, consumed);
        }, iter: 200);
    }

    [Fact]
    public void ReadAll_LinesOfAllVerbsWithCrLf_InAnySegmentation_GiveTheSameFrames()
    {
        var text = "HELLO 1 client=ticker\r\nSUB /FX/GBPUSD /EQ/VOD.L\r\n\r\nPUB /FX/GBPUSD bid=1.2702 venue=LSE\\sIOB\n"
            + "IMAGE /FX/GBPUSD 1 41 bid=1.2701\nUPDATE /FX/GBPUSD 1 42 @merged=2 bid=1.2702\nSTATUS /X NOT_FOUND\r\n"
            + "ERR SYNTAX @line=3 bad line\nBYE SHUTDOWN server stopping\r\n";
        var bytes = Encoding.UTF8.GetBytes(text);
        var frame = new RttpFrame();
        var expected = Parsed.ReadAll(new ReadOnlySequence<byte>(bytes), frame, MaxLine, out _, out _);
        Assert.Equal(9, expected.Count);
        Assert.Equal(Parsed.Valid(RttpVerb.Update, ["/FX/GBPUSD", "1", "42"], ["bid=1.2702"], ["merged=2"]), expected[5]);
        Assert.Equal(Parsed.Valid(RttpVerb.Err, ["SYNTAX"], [], ["line=3"], "bad line"), expected[7]);

        Assert.Equal(expected, Parsed.ReadAll(Segments.OneBytePerSegment(bytes), frame, MaxLine, out _, out _));
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            Assert.Equal(expected, Parsed.ReadAll(Segments.Split(bytes, cut), frame, MaxLine, out _, out _));
        }
    }

    [Fact]
    public void ReadAll_InvalidLinesBetweenValidOnes_ReportEachErrorAndGoOn()
    {
        var bytes = Encoding.UTF8.GetBytes("PUB /A\nPUB /A x=1\nPUB /A x=\\q\nsub /A\nSUB /A\n");
        var frame = new RttpFrame();

        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var parsed = Parsed.ReadAll(Segments.Split(bytes, cut), frame, MaxLine, out _, out _);

            Assert.Equal(
                [RttpErrorCode.Syntax, RttpErrorCode.None, RttpErrorCode.BadEscape, RttpErrorCode.UnknownVerb, RttpErrorCode.None],
                parsed.Select(p => p.Error));
            Assert.Equal(Parsed.Valid(RttpVerb.Pub, ["/A"], ["x=1"]), parsed[1]);
            Assert.Equal(Parsed.Valid(RttpVerb.Sub, ["/A"], []), parsed[4]);
        }
    }
}
