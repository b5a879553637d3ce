using System.Text;

namespace StreamFarm.Protocol.Tests;

public sealed class RttpErrorsTests
{
    /// <summary>Every code of docs/protocol.md section 5 with its wire name and whether it is fatal.</summary>
    public static TheoryData<RttpErrorCode, string, bool> Codes => new()
    {
        { RttpErrorCode.Syntax, "SYNTAX", false },
        { RttpErrorCode.UnknownVerb, "UNKNOWN_VERB", false },
        { RttpErrorCode.BadSubject, "BAD_SUBJECT", false },
        { RttpErrorCode.BadField, "BAD_FIELD", false },
        { RttpErrorCode.BadEscape, "BAD_ESCAPE", false },
        { RttpErrorCode.BadUtf8, "BAD_UTF8", false },
        { RttpErrorCode.TooManyFields, "TOO_MANY_FIELDS", false },
        { RttpErrorCode.TooManySubs, "TOO_MANY_SUBS", false },
        { RttpErrorCode.Denied, "DENIED", false },
        { RttpErrorCode.DuplicateHello, "DUPLICATE_HELLO", false },
        { RttpErrorCode.LineTooLong, "LINE_TOO_LONG", true },
        { RttpErrorCode.HelloRequired, "HELLO_REQUIRED", true },
        { RttpErrorCode.HelloTimeout, "HELLO_TIMEOUT", true },
        { RttpErrorCode.Version, "VERSION", true },
        { RttpErrorCode.AuthFailed, "AUTH_FAILED", true },
        { RttpErrorCode.Full, "FULL", true },
        { RttpErrorCode.SlowConsumer, "SLOW_CONSUMER", true },
        { RttpErrorCode.Idle, "IDLE", true },
        { RttpErrorCode.Binary, "BINARY", true },
        { RttpErrorCode.Internal, "INTERNAL", true },
    };

    [Theory]
    [MemberData(nameof(Codes))]
    public void WireName_Code_IsDocumentedNameAndParsesBack(RttpErrorCode code, string name, bool fatal)
    {
        Assert.Equal(name, code.WireName());
        Assert.Equal(name, Encoding.ASCII.GetString(code.WireNameUtf8()));
        Assert.Equal(code, RttpErrors.Parse(Encoding.ASCII.GetBytes(name)));
        Assert.Equal(fatal, code.IsFatal());
    }

    [Theory]
    [InlineData("")]
    [InlineData("NONE")]
    [InlineData("syntax")]
    [InlineData("SYNTAX ")]
    [InlineData("NOPE")]
    public void Parse_UnknownName_GivesNone(string name)
    {
        Assert.Equal(RttpErrorCode.None, RttpErrors.Parse(Encoding.ASCII.GetBytes(name)));
    }
}
