using System.Buffers;

namespace StreamFarm.Protocol;

/// <summary>Subject and name syntax (see <c>docs/protocol.md</c>, "Names").</summary>
public static class SubjectSyntax
{
    private static readonly SearchValues<byte> SegmentBytes =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:~+"u8);

    private static readonly SearchValues<byte> NameBytes =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."u8);

    /// <summary>Whether <paramref name="s"/> is a valid subject (no wildcards).</summary>
    public static bool IsValidSubject(ReadOnlySpan<byte> s) => IsValid(s, allowWildcards: false);

    /// <summary>Whether <paramref name="s"/> is a valid subject pattern (<c>*</c> segments, trailing <c>&gt;</c>).</summary>
    public static bool IsValidPattern(ReadOnlySpan<byte> s) => IsValid(s, allowWildcards: true);

    /// <summary>Whether <paramref name="s"/> is a valid field name.</summary>
    public static bool IsValidName(ReadOnlySpan<byte> s) =>
        s.Length is > 0 and <= RttpLimits.MaxNameBytes
        && !char.IsAsciiDigit((char)s[0]) && s[0] != '-' && s[0] != '.'
        && !s.ContainsAnyExcept(NameBytes);

    private static bool IsValid(ReadOnlySpan<byte> s, bool allowWildcards)
    {
        if (s.Length is < 2 or > RttpLimits.MaxSubjectBytes || s[0] != '/')
        {
            return false;
        }

        var rest = s[1..];
        while (true)
        {
            var slash = rest.IndexOf((byte)'/');
            var segment = slash < 0 ? rest : rest[..slash];
            if (segment.IsEmpty)
            {
                return false;
            }

            if (allowWildcards && segment.Length == 1 && (segment[0] == '*' || segment[0] == '>'))
            {
                if (segment[0] == '>' && slash >= 0)
                {
                    return false; // '>' only as the last segment
                }
            }
            else if (segment.ContainsAnyExcept(SegmentBytes))
            {
                return false;
            }

            if (slash < 0)
            {
                return true;
            }

            rest = rest[(slash + 1)..];
        }
    }

    /// <summary>
    /// Whether <paramref name="subject"/> matches <paramref name="pattern"/>: <c>*</c> is one segment,
    /// a final <c>&gt;</c> one or more.
    /// </summary>
    public static bool Matches(ReadOnlySpan<char> pattern, ReadOnlySpan<char> subject)
    {
        if (pattern.IsEmpty || subject.IsEmpty || pattern[0] != '/' || subject[0] != '/')
        {
            return false;
        }

        pattern = pattern[1..];
        subject = subject[1..];
        while (true)
        {
            var ps = pattern.IndexOf('/');
            var pseg = ps < 0 ? pattern : pattern[..ps];
            if (pseg is ">")
            {
                return !subject.IsEmpty;
            }

            if (subject.IsEmpty)
            {
                return false;
            }

            var ss = subject.IndexOf('/');
            var sseg = ss < 0 ? subject : subject[..ss];
            if (pseg is not "*" && !pseg.SequenceEqual(sseg))
            {
                return false;
            }

            if (ps < 0 || ss < 0)
            {
                return ps < 0 && ss < 0;
            }

            pattern = pattern[(ps + 1)..];
            subject = subject[(ss + 1)..];
        }
    }
}
