using StreamFarm.Protocol;

namespace StreamFarm.Server.Auth;

/// <summary>What one authenticated principal may subscribe to and publish to.</summary>
public sealed class Permissions(string principal, IReadOnlyList<string> subscribe, IReadOnlyList<string> publish)
{
    public string Principal { get; } = principal;

    public bool CanSubscribe(ReadOnlySpan<char> subject) => AnyMatch(subscribe, subject);

    public bool CanPublish(ReadOnlySpan<char> subject) => AnyMatch(publish, subject);

    private static bool AnyMatch(IReadOnlyList<string> patterns, ReadOnlySpan<char> subject)
    {
        for (var i = 0; i < patterns.Count; i++)
        {
            if (SubjectSyntax.Matches(patterns[i], subject))
            {
                return true;
            }
        }

        return false;
    }
}
