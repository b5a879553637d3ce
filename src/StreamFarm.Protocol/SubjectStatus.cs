namespace StreamFarm.Protocol;

/// <summary>State of a subscription as carried by STATUS. Values are stable; append only.</summary>
public enum SubjectStatus : byte
{
    Ok = 0,
    Stale = 1,
    NotFound = 2,
    Denied = 3,
}

/// <summary>Wire names of <see cref="SubjectStatus"/>.</summary>
public static class SubjectStatusNames
{
    public static ReadOnlySpan<byte> WireName(this SubjectStatus s) => s switch
    {
        SubjectStatus.Ok => "OK"u8,
        SubjectStatus.Stale => "STALE"u8,
        SubjectStatus.NotFound => "NOT_FOUND"u8,
        _ => "DENIED"u8,
    };

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
