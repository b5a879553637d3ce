using System.Text;
using CsCheck;
using StreamFarm.Protocol.Tests.Kit;

namespace StreamFarm.Protocol.Tests;

public sealed class FieldEscapingTests
{
    /// <summary>Raw value, then its escaped form (docs/protocol.md, "Escaping field values").</summary>
    public static TheoryData<string, string> Escapes => new()
    {
        { "", "" },
        { "plain", "plain" },
        { "a b", "a\\sb" },
        { "\\", "\\\\" },
        { "\n", "\\n" },
        { "\r", "\\r" },
        { "\t", "\\t" },
        { "\0", "\\x00" },
        { "\u0001", "\\x01" },
        { "\u001b", "\\x1B" },
        { "\u001f", "\\x1F" },
        { "\u007f", "\\x7F" },
        { "  ", "\\s\\s" },
        { "a=b/c@d", "a=b/c@d" },
        { "Zoë 東京 😀", "Zoë\\s東京\\s😀" },
        { "\u00a0", "\u00a0" },
        { "C:\\dir\\file name.txt", "C:\\\\dir\\\\file\\sname.txt" },
        { "line1\r\nline2\t", "line1\\r\\nline2\\t" },
    };

    /// <summary>Escaped forms that are not valid, and the error Validate gives.</summary>
    public static TheoryData<string, RttpErrorCode> Invalid => new()
    {
        { "\\", RttpErrorCode.BadEscape },
        { "a\\", RttpErrorCode.BadEscape },
        { "\\q", RttpErrorCode.BadEscape },
        { "\\S", RttpErrorCode.BadEscape },
        { "\\0", RttpErrorCode.BadEscape },
        { "\\x", RttpErrorCode.BadEscape },
        { "\\x1", RttpErrorCode.BadEscape },
        { "\\xG0", RttpErrorCode.BadEscape },
        { "\\x0G", RttpErrorCode.BadEscape },
        { "\\\\\\", RttpErrorCode.BadEscape },

        // \xHH is for control bytes only (protocol.md 1): printable ASCII travels as itself.
        { "\\x41", RttpErrorCode.BadEscape },
        { "\\x20", RttpErrorCode.BadEscape },
        { "\\x5c", RttpErrorCode.BadEscape },
        { "\\x3d", RttpErrorCode.BadEscape },
        { "\\x80", RttpErrorCode.BadEscape },
        { "\\xff", RttpErrorCode.BadEscape },
        { "a b", RttpErrorCode.Syntax },
        { "a\tb", RttpErrorCode.Syntax },
        { "\n", RttpErrorCode.Syntax },
        { "\u007f", RttpErrorCode.Syntax },
    };

    [Theory]
    [MemberData(nameof(Escapes))]
    public void Escape_Value_GivesWireForm(string raw, string escaped)
    {
        Assert.Equal(escaped, Utf8(FieldEscaping.Escape(raw)));

        var rawBytes = Encoding.UTF8.GetBytes(raw);
        var dest = new byte[FieldEscaping.EscapedLength(rawBytes)];
        Assert.Equal(dest.Length, FieldEscaping.Escape(rawBytes, dest));
        Assert.Equal(escaped, Utf8(dest));
    }

    [Theory]
    [MemberData(nameof(Escapes))]
    public void Unescape_WireForm_GivesValue(string raw, string escaped)
    {
        var bytes = Encoding.UTF8.GetBytes(escaped);

        Assert.Equal(RttpErrorCode.None, FieldEscaping.Validate(bytes));
        Assert.Equal(raw, FieldEscaping.Unescape(bytes));
    }

    [Theory]
    [InlineData("\\x1b", "\u001b")]
    [InlineData("\\x7f", "\u007f")]
    [InlineData("\\x0a\\x0D", "\n\r")]
    [InlineData("a\\\\s", "a\\s")]
    [InlineData("\\\\x41", "\\x41")]
    public void Unescape_LowerCaseHexAndEscapedBackslash_GivesValue(string escaped, string raw)
    {
        var bytes = Encoding.UTF8.GetBytes(escaped);

        Assert.Equal(RttpErrorCode.None, FieldEscaping.Validate(bytes));
        Assert.Equal(raw, FieldEscaping.Unescape(bytes));
    }

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_InvalidWireForm_GivesError(string escaped, RttpErrorCode expected)
    {
        Assert.Equal(expected, FieldEscaping.Validate(Encoding.UTF8.GetBytes(escaped)));
    }

    [Theory]
    [InlineData("\\")]
    [InlineData("a\\")]
    [InlineData("\\q")]
    [InlineData("\\x4")]
    [InlineData("\\xZZ")]
    public void Unescape_BadEscape_Throws(string escaped)
    {
        var bytes = Encoding.UTF8.GetBytes(escaped);

        Assert.Throws<FormatException>(() => FieldEscaping.Unescape(bytes));
        Assert.False(FieldEscaping.TryUnescape(bytes, new byte[bytes.Length], out _));
    }

    [Fact]
    public void Validate_NotUtf8_GivesBadUtf8()
    {
        Assert.Equal(RttpErrorCode.BadUtf8, FieldEscaping.Validate([(byte)'a', 0xFF]));
        Assert.Equal(RttpErrorCode.BadUtf8, FieldEscaping.Validate([0xC3]));
    }

    [Fact]
    public void Unescape_LongValue_GivesValue()
    {
        var raw = string.Concat(Enumerable.Repeat("a b\\c\n", 200)); // escaped form over the 512-byte stack buffer

        Assert.Equal(raw, FieldEscaping.Unescape(FieldEscaping.Escape(raw)));
    }

    [Fact]
    public void EscapeThenUnescape_AnyString_GivesOriginal()
    {
        RttpGen.Value.Sample(value =>
        {
            var escaped = FieldEscaping.Escape(value);

            Assert.Equal(value, FieldEscaping.Unescape(escaped));
            Assert.Equal(RttpErrorCode.None, FieldEscaping.Validate(escaped));
            Assert.DoesNotContain(escaped, b => b <= 0x20 || b == 0x7F);
            Assert.Equal(Encoding.UTF8.GetByteCount(value) + Extra(value), escaped.Length);
        }, iter: 5000);
    }

    [Fact]
    public void EscapeThenTryUnescape_AnyBytes_GivesOriginalBytes()
    {
        Gen.Byte.Array[0, 64].Sample(raw =>
        {
            var escaped = new byte[FieldEscaping.EscapedLength(raw)];
            Assert.Equal(escaped.Length, FieldEscaping.Escape(raw, escaped));
            Assert.DoesNotContain(escaped, b => b <= 0x20 || b == 0x7F);

            var back = new byte[escaped.Length];
            Assert.True(FieldEscaping.TryUnescape(escaped, back, out var n));
            Assert.Equal(raw, back[..n]);
        }, iter: 2000);
    }

    [Fact]
    public void Unescape_AnyValidWireForm_EscapesBackToCanonicalForm()
    {
        // The wire form is not unique (\x0a, \x0A and \n are the same byte) but its value is:
        // unescape, escape and unescape again gives the same value.
        var piece = Gen.OneOf("\\\\", "\\s", "\\n", "\\r", "\\t", "\\x00", "\\x0a", "\\x7F", "\\x1b", "a", "=", "é", "😀");
        piece.Array[0, 16].Select(p => string.Concat(p)).Sample(escaped =>
        {
            var value = FieldEscaping.Unescape(Encoding.UTF8.GetBytes(escaped));

            Assert.Equal(value, FieldEscaping.Unescape(FieldEscaping.Escape(value)));
        }, iter: 1000);
    }

    private static int Extra(string value) => value.Sum(c => c is '\\' or ' ' or '\n' or '\r' or '\t' ? 1 : c < 0x20 || c == 0x7F ? 3 : 0);

    private static string Utf8(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);
}
