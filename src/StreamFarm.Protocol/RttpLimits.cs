namespace StreamFarm.Protocol;

/// <summary>The parser's limits. The defaults are the ones <c>docs/protocol.md</c> announces.</summary>
public sealed record RttpLimits
{
    public const int DefaultMaxLineBytes = 16 * 1024;
    public const int MaxSubjectBytes = 256;
    public const int MaxNameBytes = 64;

    /// <summary>Longest line accepted, without its terminator.</summary>
    public int MaxLineBytes { get; init; } = DefaultMaxLineBytes;

    /// <summary>Most fields (plus meta attributes) in one line.</summary>
    public int MaxFields { get; init; } = 256;

    /// <summary>Most positional arguments in one line (subjects of one SUB).</summary>
    public int MaxArgs { get; init; } = 1024;

    public static RttpLimits Default { get; } = new();
}
