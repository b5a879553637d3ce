using System.Buffers;
using System.Text;

namespace StreamFarm.Protocol.Tests;

/// <summary>Bugs found by review, fixed; these keep them fixed.</summary>
public sealed class RegressionTests
{
    // docs/protocol.md: "A value is any UTF-8 text"; \xHH is the escape of the control bytes 0x00-0x1F
    // and 0x7F. FieldEscaping.Validate says "valid UTF-8 once unescaped" and checks only the escaped
    // text, on the belief that "escapes only produce ASCII bytes" - but \x80..\xFF produce non-ASCII bytes.
    [Theory]
    [InlineData("\\xFF")]
    [InlineData("\\x80")]
    [InlineData("\\xC3")]
    [InlineData("ok\\xED\\xA0\\x80")]
    public void Validate_HexEscapeOfNonAsciiByte_IsRefused(string escaped)
    {
        var bytes = Encoding.ASCII.GetBytes(escaped);
        Assert.NotEqual(RttpErrorCode.None, FieldEscaping.Validate(bytes));
    }

    [Fact]
    public void TryParse_PubWithValueEscapedToInvalidUtf8_IsRefused()
    {
        var line = new ReadOnlySequence<byte>("PUB /A x=\\xFF"u8.ToArray());
        var frame = new RttpFrame();

        var error = RttpParser.TryParse(line, frame, RttpLimits.Default, out _);

        Assert.NotEqual(RttpErrorCode.None, error);
    }

    // docs/protocol.md section 4: UPDATE <subject> <epoch> <seq> [@merged=<n>] <field>=<value> [...]
    // (the first field is not optional, unlike IMAGE and PUBIMAGE; the parser's own usage text agrees).
    [Theory]
    [InlineData("UPDATE /A 1 2")]
    [InlineData("UPDATE /A 1 2 @merged=3")]
    public void TryParse_UpdateWithoutFields_IsSyntax(string text)
    {
        var line = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(text));

        Assert.Equal(RttpErrorCode.Syntax, RttpParser.TryParse(line, new RttpFrame(), RttpLimits.Default, out _));
    }
}
