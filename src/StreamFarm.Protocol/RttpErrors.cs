using System.Text;

namespace StreamFarm.Protocol;

/// <summary>Wire names and fatality of <see cref="RttpErrorCode"/>.</summary>
public static class RttpErrors
{
    private static readonly string[] Names =
    [
        "NONE", "SYNTAX", "UNKNOWN_VERB", "BAD_SUBJECT", "BAD_FIELD", "BAD_ESCAPE", "BAD_UTF8",
        "TOO_MANY_FIELDS", "TOO_MANY_SUBS", "DENIED", "DUPLICATE_HELLO", "LINE_TOO_LONG",
        "HELLO_REQUIRED", "HELLO_TIMEOUT", "VERSION", "AUTH_FAILED", "FULL", "SLOW_CONSUMER", "IDLE",
        "BINARY", "INTERNAL", "DRAINING", "WRONG_GROUP", "UNAVAILABLE", "TOO_LARGE", "AUTH_EXPIRED",
    ];

    private static readonly byte[][] Utf8Names = Array.ConvertAll(Names, Encoding.ASCII.GetBytes);

    /// <summary>The code as written on the wire, for example <c>LINE_TOO_LONG</c>.</summary>
    public static string WireName(this RttpErrorCode code) => Names[(int)code];

    /// <summary>The code's wire name as ASCII bytes.</summary>
    public static ReadOnlySpan<byte> WireNameUtf8(this RttpErrorCode code) => Utf8Names[(int)code];

    /// <summary>Whether the server closes the connection after sending this error.</summary>
    public static bool IsFatal(this RttpErrorCode code) => code is >= RttpErrorCode.LineTooLong and not RttpErrorCode.Unavailable and not RttpErrorCode.TooLarge;

    /// <summary>Parses a wire name; unknown names give <see cref="RttpErrorCode.None"/>.</summary>
    public static RttpErrorCode Parse(ReadOnlySpan<byte> name)
    {
        for (var i = 1; i < Utf8Names.Length; i++)
        {
            if (name.SequenceEqual(Utf8Names[i]))
            {
                return (RttpErrorCode)i;
            }
        }

        return RttpErrorCode.None;
    }
}
