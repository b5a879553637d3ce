using System.Buffers;
using System.Text;
using StreamFarm.Protocol.Tests.Kit;

namespace StreamFarm.Protocol.Tests;

public sealed class RttpLineReaderTests
{
    private const int Max = 8;

    /// <summary>
    /// Input, then the expected status, line and bytes left in the buffer, with <c>maxLine = 8</c>.
    /// The LF of the longest line sits at offset 8 (9 after a CR), so the reader decides within the
    /// first <c>maxLine + 2</c> bytes.
    /// </summary>
    public static TheoryData<string, OperationStatus, string, string> Cases => new()
    {
        // incomplete
        { "", OperationStatus.NeedMoreData, "", "" },
        { "PING", OperationStatus.NeedMoreData, "", "PING" },
        { "PING\r", OperationStatus.NeedMoreData, "", "PING\r" },
        { "12345678", OperationStatus.NeedMoreData, "", "12345678" },      // maxLine bytes, no LF yet
        { "123456789", OperationStatus.NeedMoreData, "", "123456789" },    // maxLine + 1: a CR may still come
        { "12345678\r", OperationStatus.NeedMoreData, "", "12345678\r" },  // maxLine + CR, LF still to come

        // too long, decided without waiting for the LF
        { "1234567890", OperationStatus.InvalidData, "", "" },             // maxLine + 2 bytes, no LF
        { "123456789\r", OperationStatus.InvalidData, "", "" },
        { "12345678\r\r", OperationStatus.InvalidData, "", "" },
        { "123456789012345678901234567890", OperationStatus.InvalidData, "", "" },

        // too long, with its LF
        { "123456789\n", OperationStatus.InvalidData, "", "" },            // maxLine + 1 bytes then LF
        { "123456789\r\n", OperationStatus.InvalidData, "", "" },
        { "12345678\r\r\n", OperationStatus.InvalidData, "", "" },         // the line keeps one CR: 9 bytes
        { "1234567890\nPING\n", OperationStatus.InvalidData, "", "" },

        // done
        { "\n", OperationStatus.Done, "", "" },
        { "\r\n", OperationStatus.Done, "", "" },
        { "PING\n", OperationStatus.Done, "PING", "" },
        { "PING\r\n", OperationStatus.Done, "PING", "" },
        { "12345678\n", OperationStatus.Done, "12345678", "" },            // exactly maxLine bytes
        { "12345678\r\n", OperationStatus.Done, "12345678", "" },          // maxLine bytes, CRLF
        { "1234567\r\r\n", OperationStatus.Done, "1234567\r", "" },        // only the last CR is dropped
        { "a\rb\n", OperationStatus.Done, "a\rb", "" },                    // a CR inside is kept (the parser refuses it)
        { "\rPING\n", OperationStatus.Done, "\rPING", "" },
        { "PING\nPONG\n", OperationStatus.Done, "PING", "PONG\n" },
        { "PING\r\nPONG", OperationStatus.Done, "PING", "PONG" },
        { "\n\nPING\n", OperationStatus.Done, "", "\nPING\n" },
        { "12345678\n1234567890", OperationStatus.Done, "12345678", "1234567890" },
        { "é€\n", OperationStatus.Done, "é€", "" },                          // 5 bytes of UTF-8
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void TryReadLine_OneSegment_GivesStatusLineAndRest(string input, OperationStatus status, string line, string rest)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(input));

        var actual = RttpLineReader.TryReadLine(ref buffer, Max, out var read);

        Assert.Equal(status, actual);
        if (status == OperationStatus.Done)
        {
            Assert.Equal(line, Utf8(read));
            Assert.Equal(rest, Utf8(buffer));
        }
        else if (status == OperationStatus.NeedMoreData)
        {
            Assert.Equal(rest, Utf8(buffer)); // nothing consumed
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TryReadLine_TwoSegmentsCutAnywhere_GivesSameAsOneSegment(string input, OperationStatus status, string line, string rest)
    {
        var bytes = Encoding.UTF8.GetBytes(input);
        for (var cut = 0; cut <= bytes.Length; cut++)
        {
            var buffer = Segments.Split(bytes, cut);

            var actual = RttpLineReader.TryReadLine(ref buffer, Max, out var read);

            Assert.Equal(status, actual);
            if (status == OperationStatus.Done)
            {
                Assert.Equal(line, Utf8(read));
                Assert.Equal(rest, Utf8(buffer));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TryReadLine_OneBytePerSegment_GivesSameAsOneSegment(string input, OperationStatus status, string line, string rest)
    {
        var buffer = Segments.OneBytePerSegment(Encoding.UTF8.GetBytes(input));

        var actual = RttpLineReader.TryReadLine(ref buffer, Max, out var read);

        Assert.Equal(status, actual);
        if (status == OperationStatus.Done)
        {
            Assert.Equal(line, Utf8(read));
            Assert.Equal(rest, Utf8(buffer));
        }
    }

    [Fact]
    public void TryReadLine_DefaultLimitExactly_IsDone()
    {
        const int max = RttpLimits.DefaultMaxLineBytes;
        var buffer = Bytes(new string('a', max) + "\r\nPING\n");

        Assert.Equal(OperationStatus.Done, RttpLineReader.TryReadLine(ref buffer, max, out var line));
        Assert.Equal(max, line.Length);
        Assert.Equal("PING\n", Utf8(buffer));
    }

    [Theory]
    [InlineData(RttpLimits.DefaultMaxLineBytes, OperationStatus.NeedMoreData)]
    [InlineData(RttpLimits.DefaultMaxLineBytes + 1, OperationStatus.NeedMoreData)]
    [InlineData(RttpLimits.DefaultMaxLineBytes + 2, OperationStatus.InvalidData)]
    [InlineData(1024 * 1024, OperationStatus.InvalidData)]
    public void TryReadLine_DefaultLimitWithoutLf_DecidesWithinLimitPlusTwo(int length, OperationStatus expected)
    {
        var data = new byte[length];
        Array.Fill(data, (byte)'a');
        var single = new ReadOnlySequence<byte>(data);
        var chunked = Segments.Split(data, [.. Enumerable.Range(1, (length - 1) / 4096).Select(i => i * 4096)]);

        Assert.Equal(expected, RttpLineReader.TryReadLine(ref single, RttpLimits.DefaultMaxLineBytes, out _));
        Assert.Equal(expected, RttpLineReader.TryReadLine(ref chunked, RttpLimits.DefaultMaxLineBytes, out _));
    }

    [Fact]
    public void TryReadLine_LimitPlusOneThenLf_IsInvalidData()
    {
        var buffer = Bytes(new string('a', RttpLimits.DefaultMaxLineBytes + 1) + "\n");

        Assert.Equal(OperationStatus.InvalidData, RttpLineReader.TryReadLine(ref buffer, RttpLimits.DefaultMaxLineBytes, out _));
    }

    [Fact]
    public void TryReadLine_ManyLines_ReadsThemInOrderThenNeedsMoreData()
    {
        var buffer = Bytes("SUB /A\r\n\nPUB /A x=1\nPING 1\r\nPON");
        var lines = new List<string>();

        OperationStatus status;
        while ((status = RttpLineReader.TryReadLine(ref buffer, 64, out var line)) == OperationStatus.Done)
        {
            lines.Add(Utf8(line));
        }

        Assert.Equal(OperationStatus.NeedMoreData, status);
        Assert.Equal(["SUB /A", "", "PUB /A x=1", "PING 1"], lines);
        Assert.Equal("PON", Utf8(buffer));
    }

    [Fact]
    public void TryReadLine_CrAndLfInDifferentSegments_DropsTheCr()
    {
        var buffer = Segments.Of("PI", "NG\r", "", "\nPO", "NG\n");

        Assert.Equal(OperationStatus.Done, RttpLineReader.TryReadLine(ref buffer, Max, out var first));
        Assert.Equal("PING", Utf8(first));
        Assert.Equal(OperationStatus.Done, RttpLineReader.TryReadLine(ref buffer, Max, out var second));
        Assert.Equal("PONG", Utf8(second));
        Assert.Equal(0, buffer.Length);
    }

    [Fact]
    public void TryReadLine_LimitOfZero_AcceptsOnlyEmptyLines()
    {
        var empty = Bytes("\r\n");
        var one = Bytes("a\n");
        var pending = Bytes("\r");

        Assert.Equal(OperationStatus.Done, RttpLineReader.TryReadLine(ref empty, 0, out _));
        Assert.Equal(OperationStatus.InvalidData, RttpLineReader.TryReadLine(ref one, 0, out _));
        Assert.Equal(OperationStatus.NeedMoreData, RttpLineReader.TryReadLine(ref pending, 0, out _));
    }

    private static ReadOnlySequence<byte> Bytes(string s) => new(Encoding.UTF8.GetBytes(s));

    private static string Utf8(in ReadOnlySequence<byte> s) => Encoding.UTF8.GetString(s.ToArray());
}
