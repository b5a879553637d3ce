using StreamFarm.Protocol;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Auth;

/// <summary>
/// What one authenticated principal may subscribe to and publish to. System subjects
/// (<c>/~sys/...</c>) are readable only through a pattern that names <c>/~sys</c> (a wildcard first
/// segment does not reach them), or by everyone when <paramref name="systemReadable"/> (a server
/// without authentication); no client may publish them.
/// </summary>
public sealed class Permissions(string principal, IReadOnlyList<string> subscribe, IReadOnlyList<string> publish, bool systemReadable = false)
{
    public string Principal { get; } = principal;

    public bool CanSubscribe(ReadOnlySpan<char> subject) =>
        SystemSubjects.IsSystem(subject) ? systemReadable || AnyMatch(subscribe, subject, systemOnly: true) : AnyMatch(subscribe, subject, systemOnly: false);

    public bool CanPublish(ReadOnlySpan<char> subject) => !SystemSubjects.IsSystem(subject) && AnyMatch(publish, subject, systemOnly: false);

    private static bool AnyMatch(IReadOnlyList<string> patterns, ReadOnlySpan<char> subject, bool systemOnly)
    {
        for (var i = 0; i < patterns.Count; i++)
        {
            if ((!systemOnly || SystemSubjects.NamesSystem(patterns[i])) && SubjectSyntax.Matches(patterns[i], subject))
            {
                return true;
            }
        }

        return false;
    }
}
