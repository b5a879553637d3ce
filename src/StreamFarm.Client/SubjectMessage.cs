using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// A message of one subscription (<see cref="FarmClient.SubscribeAsync(string, CancellationToken)"/>):
/// a <see cref="SubjectImage"/>, a <see cref="SubjectUpdate"/> or a <see cref="SubjectStatusChange"/>.
/// </summary>
/// <param name="Subject">The subject.</param>
/// <param name="Server">The id of the server it came from.</param>
public abstract record SubjectMessage(string Subject, string Server)
{
    /// <summary>The typed message of a received one; null for messages that are not about a subject's data.</summary>
    internal static SubjectMessage? From(RttpMessage m, string server, Continuity continuity) => m.Kind switch
    {
        RttpMessageKind.Image => new SubjectImage(m.Subject, server, m.Epoch, m.Seq, m.Fields, continuity),
        RttpMessageKind.Update => new SubjectUpdate(m.Subject, server, m.Epoch, m.Seq, m.Merged, m.Fields),
        RttpMessageKind.Status => new SubjectStatusChange(m.Subject, server, m.Status),
        _ => null,
    };

    /// <summary>The value of <paramref name="name"/> among <paramref name="fields"/>, or null.</summary>
    private protected static string? Find(IReadOnlyList<KeyValuePair<string, string>> fields, string name)
    {
        for (var i = 0; i < fields.Count; i++)
        {
            if (string.Equals(fields[i].Key, name, StringComparison.Ordinal))
            {
                return fields[i].Value;
            }
        }

        return null;
    }
}

/// <summary>Every current field of the subject's record: the first message of a subscription, and after a move.</summary>
/// <param name="Subject">The subject.</param>
/// <param name="Server">The id of the server it came from.</param>
/// <param name="Epoch">The record's history; a new epoch is a new history.</param>
/// <param name="Seq">The record's sequence number in that history.</param>
/// <param name="Fields">Every field, values unescaped.</param>
/// <param name="Continuity">After a move: whether nothing was missed (<see cref="Continuity.Resumed"/>), updates were (<see cref="Continuity.Gap"/>), or a new history began (<see cref="Continuity.Fresh"/>).</param>
public sealed record SubjectImage(string Subject, string Server, ulong Epoch, ulong Seq, IReadOnlyList<KeyValuePair<string, string>> Fields, Continuity Continuity)
    : SubjectMessage(Subject, Server)
{
    /// <summary>The value of a field, or null.</summary>
    public string? this[string name] => Find(Fields, name);
}

/// <summary>Fields that changed.</summary>
/// <param name="Subject">The subject.</param>
/// <param name="Server">The id of the server it came from.</param>
/// <param name="Epoch">The record's history.</param>
/// <param name="Seq">One more than the previous message's (or <paramref name="Merged"/> more).</param>
/// <param name="Merged">How many updates this one stands for (more than 1 when the server or the client conflated).</param>
/// <param name="Fields">The changed fields, values unescaped.</param>
public sealed record SubjectUpdate(string Subject, string Server, ulong Epoch, ulong Seq, int Merged, IReadOnlyList<KeyValuePair<string, string>> Fields)
    : SubjectMessage(Subject, Server)
{
    /// <summary>The value of a field, or null when this update does not change it.</summary>
    public string? this[string name] => Find(Fields, name);
}

/// <summary>How the subscription stands: <c>NOT_FOUND</c> (nothing published yet), <c>DENIED</c>, <c>STALE</c> (the data may be old), <c>OK</c> (live again).</summary>
/// <param name="Subject">The subject.</param>
/// <param name="Server">The id of the server it came from.</param>
/// <param name="Status">The state.</param>
public sealed record SubjectStatusChange(string Subject, string Server, SubjectStatus Status) : SubjectMessage(Subject, Server);
