namespace StreamFarm.Protocol;

/// <summary>State of a subscription as carried by STATUS. Values are stable; append only.</summary>
public enum SubjectStatus : byte
{
    /// <summary><c>OK</c>: the subject's data is current again (after <see cref="Stale"/>).</summary>
    Ok = 0,

    /// <summary><c>STALE</c>: the data may be old (its owner or the route to it is gone) until <see cref="Ok"/> or a new image.</summary>
    Stale = 1,

    /// <summary><c>NOT_FOUND</c>: the subject has no record yet; the subscription stays and gets an image at the first publication.</summary>
    NotFound = 2,

    /// <summary><c>DENIED</c>: the user may not subscribe to the subject; the subscription is refused.</summary>
    Denied = 3,
}

/// <summary>Wire names of <see cref="SubjectStatus"/>.</summary>
public static class SubjectStatusNames
{
    /// <summary>The status as written on the wire (<c>OK</c>, <c>STALE</c>, <c>NOT_FOUND</c>, <c>DENIED</c>), as ASCII bytes.</summary>
    public static ReadOnlySpan<byte> WireName(this SubjectStatus s) => s switch
    {
        SubjectStatus.Ok => "OK"u8,
        SubjectStatus.Stale => "STALE"u8,
        SubjectStatus.NotFound => "NOT_FOUND"u8,
        _ => "DENIED"u8,
    };

    /// <summary>Parses a wire name (case-sensitive); false for any other token.</summary>
    public static bool TryParse(ReadOnlySpan<byte> s, out SubjectStatus status)
    {
        status = s switch
        {
            _ when s.SequenceEqual("OK"u8) => SubjectStatus.Ok,
            _ when s.SequenceEqual("STALE"u8) => SubjectStatus.Stale,
            _ when s.SequenceEqual("NOT_FOUND"u8) => SubjectStatus.NotFound,
            _ when s.SequenceEqual("DENIED"u8) => SubjectStatus.Denied,
            _ => (SubjectStatus)255,
        };
        return (byte)status != 255;
    }
}
