using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// The last value of a subject as the client holds it (<see cref="FarmClient.GetAsync"/>,
/// <see cref="FarmClient.TryGetRecord"/>): every field, from the latest image and the updates since.
/// Immutable: a newer message makes a new record.
/// </summary>
/// <param name="Subject">The subject.</param>
/// <param name="Server">The server the latest message came from.</param>
/// <param name="Epoch">The record's history.</param>
/// <param name="Seq">Its sequence number.</param>
/// <param name="Fields">Every field, in the order first received.</param>
/// <param name="Status">The latest status (<see cref="SubjectStatus.Ok"/> unless the farm said otherwise).</param>
public sealed record SubjectRecord(string Subject, string Server, ulong Epoch, ulong Seq, IReadOnlyList<KeyValuePair<string, string>> Fields, SubjectStatus Status)
{
    /// <summary>The value of a field, or null.</summary>
    public string? this[string name]
    {
        get
        {
            foreach (var (key, value) in Fields)
            {
                if (string.Equals(key, name, StringComparison.Ordinal))
                {
                    return value;
                }
            }

            return null;
        }
    }

    /// <summary>The record after <paramref name="fm"/>; null when it cannot be applied (an update of another history, or before any image).</summary>
    internal static SubjectRecord? Apply(SubjectRecord? record, FarmMessage fm)
    {
        var m = fm.Message;
        switch (m.Kind)
        {
            case RttpMessageKind.Image:
                return new SubjectRecord(m.Subject, fm.Server, m.Epoch, m.Seq, m.Fields, record?.Status ?? SubjectStatus.Ok);
            case RttpMessageKind.Update when record is not null && record.Epoch == m.Epoch:
                var merged = Conflation.Instance.Merge(new RttpMessage { Kind = RttpMessageKind.Image, Subject = m.Subject, Epoch = record.Epoch, Seq = record.Seq, Fields = record.Fields }, m);
                return merged is null ? record : record with { Server = fm.Server, Seq = merged.Seq, Fields = merged.Fields };
            case RttpMessageKind.Status when record is not null:
                return record with { Status = m.Status, Server = fm.Server };
            default:
                return record;
        }
    }

    /// <summary>This record as an image message (for a subscriber that comes after the subject's image).</summary>
    internal FarmMessage ToImage() =>
        new(new RttpMessage { Kind = RttpMessageKind.Image, Subject = Subject, Epoch = Epoch, Seq = Seq, Fields = Fields }, Server, Continuity.Continuous);
}
