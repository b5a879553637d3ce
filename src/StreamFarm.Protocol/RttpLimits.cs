namespace StreamFarm.Protocol;

/// <summary>The parser's limits. The defaults are the ones <c>docs/protocol.md</c> announces.</summary>
public sealed record RttpLimits
{
    /// <summary>The default of <see cref="MaxLineBytes"/>: 16 KiB, the <c>maxline</c> a server announces unless configured otherwise.</summary>
    public const int DefaultMaxLineBytes = 16 * 1024;

    /// <summary>Longest subject, in UTF-8 bytes (longer: <see cref="RttpErrorCode.BadSubject"/>).</summary>
    public const int MaxSubjectBytes = 256;

    /// <summary>Longest field or meta attribute name, in bytes (longer: <see cref="RttpErrorCode.BadField"/>).</summary>
    public const int MaxNameBytes = 64;

    /// <summary>Longest line accepted, without its terminator.</summary>
    public int MaxLineBytes { get; init; } = DefaultMaxLineBytes;

    /// <summary>Most fields (plus meta attributes) in one line.</summary>
    public int MaxFields { get; init; } = 256;

    /// <summary>Most positional arguments in one line (subjects of one SUB).</summary>
    public int MaxArgs { get; init; } = 1024;

    /// <summary>The protocol's default limits, shared (the record is immutable).</summary>
    public static RttpLimits Default { get; } = new();
}
