namespace StreamFarm.Server.Subjects;

/// <summary>
/// The system subjects (docs/protocol.md, "System subjects"): <c>/~sys/...</c>, published by the
/// servers themselves. Clients never publish them, and with authentication on only a principal with
/// a subscribe pattern that names <c>/~sys</c> itself (not a wildcard) may read them.
/// </summary>
public static class SystemSubjects
{
    /// <summary>The first segment of every system subject.</summary>
    public const string Segment = "~sys";

    /// <summary>Every system subject starts with this.</summary>
    public const string Prefix = "/~sys/";

    /// <summary>A server's status, limits and counters: <c>/~sys/server/&lt;id&gt;</c>.</summary>
    public static string Server(string id) => Prefix + "server/" + id;

    /// <summary>The subjects a server holds records of: <c>/~sys/subjects/&lt;id&gt;</c>.</summary>
    public static string Catalog(string id) => Prefix + "subjects/" + id;

    /// <summary>Whether <paramref name="subject"/> is a system subject.</summary>
    public static bool IsSystem(ReadOnlySpan<char> subject) => subject.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Whether <paramref name="pattern"/> names the system subjects explicitly (its first segment is <c>~sys</c>).</summary>
    public static bool NamesSystem(ReadOnlySpan<char> pattern) => pattern.StartsWith(Prefix, StringComparison.Ordinal);
}
