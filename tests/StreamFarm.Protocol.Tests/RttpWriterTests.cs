using System.Buffers;
using System.Text;
using CsCheck;
using StreamFarm.Protocol.Tests.Kit;

namespace StreamFarm.Protocol.Tests;

public sealed class RttpWriterTests
{
    [Theory]
    [InlineData(0, "UPDATE /FX/GBPUSD 1732861234000 42 bid=1.2702\n")]
    [InlineData(1, "UPDATE /FX/GBPUSD 1732861234000 42 bid=1.2702\n")]
    [InlineData(2, "UPDATE /FX/GBPUSD 1732861234000 42 @merged=2 bid=1.2702\n")]
    [InlineData(int.MaxValue, "UPDATE /FX/GBPUSD 1732861234000 42 @merged=2147483647 bid=1.2702\n")]
    public void WriteUpdate_Merged_AddsMergedMetaOnlyAboveOne(int merged, string expected)
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteUpdate(w, "/FX/GBPUSD"u8, 1732861234000, 42, merged, "bid=1.2702"u8);

        Assert.Equal(expected, Utf8(w.WrittenSpan));
    }

    [Fact]
    public void WriteImage_WithAndWithoutFields_WritesImageLine()
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteImage(w, "/A"u8, ulong.MaxValue, 0, "x=1 y=a\\sb"u8);
        RttpWriter.WriteImage(w, "/B"u8, 1, 2, default);

        Assert.Equal("IMAGE /A 18446744073709551615 0 x=1 y=a\\sb\nIMAGE /B 1 2\n", Utf8(w.WrittenSpan));
    }

    [Fact]
    public void WriteUpdate_LargestNumbersIntoExactBuffer_Fits()
    {
        var fields = "x=1"u8;
        var buffer = new byte[RttpWriter.RecordLineLength("UPDATE "u8.Length, 2, fields.Length)];
        var w = new FixedWriter(buffer);

        RttpWriter.WriteUpdate(w, "/A"u8, ulong.MaxValue, ulong.MaxValue, int.MaxValue, fields);

        Assert.Equal("UPDATE /A 18446744073709551615 18446744073709551615 @merged=2147483647 x=1\n", Utf8(w.Written));
    }

    [Theory]
    [InlineData(SubjectStatus.Ok, "STATUS /A OK\n")]
    [InlineData(SubjectStatus.Stale, "STATUS /A STALE\n")]
    [InlineData(SubjectStatus.NotFound, "STATUS /A NOT_FOUND\n")]
    [InlineData(SubjectStatus.Denied, "STATUS /A DENIED\n")]
    public void WriteStatus_Status_WritesWireName(SubjectStatus status, string expected)
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteStatus(w, "/A"u8, status);

        Assert.Equal(expected, Utf8(w.WrittenSpan));
        var frame = ParseOne(w.WrittenSpan);
        Assert.True(SubjectStatusNames.TryParse(frame.Arg(1), out var back));
        Assert.Equal(status, back);
    }

    [Theory]
    [InlineData(RttpErrorCode.Syntax, "bad line", null, "ERR SYNTAX bad line\n")]
    [InlineData(RttpErrorCode.Full, "server s1 is full", "@after=1000", "ERR FULL @after=1000 server s1 is full\n")]
    [InlineData(RttpErrorCode.Idle, null, null, "ERR IDLE\n")]
    [InlineData(RttpErrorCode.Internal, "", null, "ERR INTERNAL\n")]
    [InlineData(RttpErrorCode.Syntax, "two\nlines\tand\u007fmore", null, "ERR SYNTAX two lines and more\n")]
    public void WriteError_CodeTextMeta_WritesOneLine(RttpErrorCode code, string? text, string? meta, string expected)
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteError(w, code, text, meta);

        Assert.Equal(expected, Utf8(w.WrittenSpan));
        var frame = ParseOne(w.WrittenSpan);
        Assert.Equal(RttpVerb.Err, frame.Verb);
        Assert.Equal(code, RttpErrors.Parse(frame.Arg(0)));
    }

    [Theory]
    [InlineData(false, "", "PING\n")]
    [InlineData(true, "", "PONG\n")]
    [InlineData(false, "t-42", "PING t-42\n")]
    [InlineData(true, "t-42", "PONG t-42\n")]
    public void WritePingPong_Token_WritesLine(bool pong, string token, string expected)
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WritePingPong(w, pong, Encoding.UTF8.GetBytes(token));

        Assert.Equal(expected, Utf8(w.WrittenSpan));
    }

    [Theory]
    [InlineData(0L, " n=0")]
    [InlineData(-12L, " n=-12")]
    [InlineData(long.MaxValue, " n=9223372036854775807")]
    [InlineData(long.MinValue, " n=-9223372036854775808")]
    public void WriteField_Number_WritesDecimal(long value, string expected)
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteField(w, "n"u8, value);

        Assert.Equal(expected, Utf8(w.WrittenSpan));
    }

    [Theory]
    [InlineData("LSE IOB", " venue=LSE\\sIOB")]
    [InlineData("", " venue=")]
    [InlineData("a\\b\n", " venue=a\\\\b\\n")]
    public void WriteField_String_WritesEscapedValue(string value, string expected)
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteField(w, "venue"u8, value);
        Assert.Equal(expected, Utf8(w.WrittenSpan));

        w.ResetWrittenCount();
        RttpWriter.WriteField(w, "venue"u8, Encoding.UTF8.GetBytes(value).AsSpan());
        Assert.Equal(expected, Utf8(w.WrittenSpan));
    }

    [Fact]
    public void WriteText_ControlCharacters_BecomeSpaces()
    {
        var w = new ArrayBufferWriter<byte>();

        RttpWriter.WriteText(w, "a\u0000b\u001fc\u007fd é");

        Assert.Equal("a b c d é", Utf8(w.WrittenSpan));
    }

    [Fact]
    public void WritePub_AnyFieldValues_ParsesBackToSameFields()
    {
        Gen.Select(RttpGen.Subject, RttpGen.Field.Array[1, 8]).Sample((subject, fields) =>
        {
            var w = new ArrayBufferWriter<byte>();
            RttpWriter.WriteRaw(w, "PUB "u8);
            RttpWriter.WriteRaw(w, Encoding.UTF8.GetBytes(subject));
            WriteFields(w, fields);
            RttpWriter.WriteRaw(w, "\n"u8);

            var frame = ParseOne(w.WrittenSpan);

            Assert.Equal(RttpVerb.Pub, frame.Verb);
            Assert.Equal(subject, Utf8(frame.Arg(0)));
            AssertFields(fields, frame);
        }, iter: 1000);
    }

    [Fact]
    public void WriteImage_AnyFieldValues_ParsesBackToSameFields()
    {
        Gen.Select(RttpGen.Subject, Gen.ULong, Gen.ULong, RttpGen.Field.Array[0, 8]).Sample((subject, epoch, seq, fields) =>
        {
            var escaped = new ArrayBufferWriter<byte>();
            WriteFields(escaped, fields);
            var w = new ArrayBufferWriter<byte>();
            RttpWriter.WriteImage(w, Encoding.UTF8.GetBytes(subject), epoch, seq, escaped.WrittenSpan.TrimStart((byte)' '));

            var frame = ParseOne(w.WrittenSpan);

            Assert.Equal(RttpVerb.Image, frame.Verb);
            Assert.Equal(subject, Utf8(frame.Arg(0)));
            Assert.True(frame.TryGetUInt64(1, out var e) && e == epoch);
            Assert.True(frame.TryGetUInt64(2, out var s) && s == seq);
            AssertFields(fields, frame);
        }, iter: 1000);
    }

    [Fact]
    public void WriteUpdate_AnyFieldValues_ParsesBackToSameFieldsAndMerged()
    {
        Gen.Select(RttpGen.Subject, Gen.ULong, Gen.Int[0, 1000], RttpGen.Field.Array[1, 8]).Sample((subject, seq, merged, fields) =>
        {
            var escaped = new ArrayBufferWriter<byte>();
            WriteFields(escaped, fields);
            var w = new ArrayBufferWriter<byte>();
            RttpWriter.WriteUpdate(w, Encoding.UTF8.GetBytes(subject), 7, seq, merged, escaped.WrittenSpan.TrimStart((byte)' '));

            var frame = ParseOne(w.WrittenSpan);

            Assert.Equal(RttpVerb.Update, frame.Verb);
            Assert.True(frame.TryGetUInt64(2, out var s) && s == seq);
            AssertFields(fields, frame);
            if (merged > 1)
            {
                Assert.True(frame.TryGetMeta("merged"u8, out var m));
                Assert.Equal(merged.ToString(System.Globalization.CultureInfo.InvariantCulture), Utf8(m));
            }
            else
            {
                Assert.Equal(0, frame.MetaCount);
            }
        }, iter: 1000);
    }

    /// <summary>Writes each field with one of the three overloads (string, UTF-8 bytes, number when it is one).</summary>
    private static void WriteFields(IBufferWriter<byte> w, Item[] fields)
    {
        for (var i = 0; i < fields.Length; i++)
        {
            var name = Encoding.UTF8.GetBytes(fields[i].Name);
            if (long.TryParse(fields[i].Value, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var n)
                && n.ToString(System.Globalization.CultureInfo.InvariantCulture) == fields[i].Value)
            {
                RttpWriter.WriteField(w, name, n);
            }
            else if (i % 2 == 0)
            {
                RttpWriter.WriteField(w, name, fields[i].Value);
            }
            else
            {
                RttpWriter.WriteField(w, name, Encoding.UTF8.GetBytes(fields[i].Value).AsSpan());
            }
        }
    }

    private static void AssertFields(Item[] fields, RttpFrame frame)
    {
        Assert.Equal(fields.Length, frame.FieldCount);
        for (var i = 0; i < fields.Length; i++)
        {
            Assert.Equal(fields[i].Name, Utf8(frame.FieldName(i)));
            Assert.Equal(fields[i].Value, FieldEscaping.Unescape(frame.FieldValue(i)));
        }
    }

    /// <summary>Reads exactly one line from <paramref name="written"/> and parses it (it must be valid).</summary>
    private static RttpFrame ParseOne(ReadOnlySpan<byte> written)
    {
        var buffer = new ReadOnlySequence<byte>(written.ToArray());
        Assert.Equal(OperationStatus.Done, RttpLineReader.TryReadLine(ref buffer, RttpLimits.DefaultMaxLineBytes, out var line));
        Assert.Equal(0, buffer.Length);
        var frame = new RttpFrame();
        var error = RttpParser.TryParse(line, frame, RttpLimits.Default, out var reason);
        Assert.True(error == RttpErrorCode.None, $"{error}: {reason}");
        return frame;
    }

    private static string Utf8(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    /// <summary>A writer over one fixed array: fails if a method asks for more than it said it needs.</summary>
    private sealed class FixedWriter(byte[] buffer) : IBufferWriter<byte>
    {
        private int _written;

        public ReadOnlySpan<byte> Written => buffer.AsSpan(0, _written);

        public void Advance(int count) => _written += count;

        public Memory<byte> GetMemory(int sizeHint = 0) => buffer.AsMemory(_written);

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Assert.True(buffer.Length - _written >= sizeHint, "asked for more than RecordLineLength");
            return buffer.AsSpan(_written);
        }
    }
}
