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

    /// <summary>This record as an image message (for a subscriber that comes after the subject's image).</summary>
    internal SubjectImage ToImage() => new(Subject, Server, Epoch, Seq, Fields, Continuity.Continuous);
}

/// <summary>
/// The client's working copy of a subject's last value: changed in place by each message (no
/// allocation per update: the values are kept as the bytes they arrived as, <see cref="SubjectData"/>),
/// handed out as an immutable <see cref="SubjectRecord"/> made when asked for and kept until the
/// next change.
/// </summary>
internal sealed class RecordState(string subject)
{
    private readonly SubjectData _fields = new();
    private string _server = "";
    private ulong _epoch;
    private ulong _seq;
    private SubjectStatus _status = SubjectStatus.Ok;
    private SubjectRecord? _snapshot;

    /// <summary>True once an image arrived (before that there is no record).</summary>
    public bool HasRecord { get; private set; }

    /// <summary>As <see cref="Apply(SubjectData, string)"/>, for a message of the string path.</summary>
    public void Apply(RttpMessage m, string server)
    {
        var data = new SubjectData();
        data.Load(m, server, Continuity.Continuous);
        Apply(data, server);
    }

    /// <summary>Applies <paramref name="m"/> (from <paramref name="server"/>): an image replaces every field; an update of the same history with a later <c>seq</c> sets its fields (the latest value of each, new ones added in order); a status sets the status. Anything else (an update before any image, of another history, or not newer) changes nothing.</summary>
    public void Apply(SubjectData m, string server)
    {
        switch (m.Kind)
        {
            case RttpMessageKind.Image:
                _fields.CopyFieldsFrom(m);
                _server = server;
                _epoch = m.Epoch;
                _seq = m.Seq;
                HasRecord = true;
                break;
            case RttpMessageKind.Update when HasRecord && _epoch == m.Epoch && m.Seq > _seq:
                _fields.MergeFieldsFrom(m);
                _server = server;
                _seq = m.Seq;
                break;
            case RttpMessageKind.Status when HasRecord:
                _status = m.Status;
                _server = server;
                break;
            default:
                return;
        }

        _snapshot = null;
    }

    /// <summary>The record as it stands (null before any image).</summary>
    public SubjectRecord? Snapshot() =>
        !HasRecord ? null : _snapshot ??= new SubjectRecord(subject, _server, _epoch, _seq, _fields.ToFields(), _status);

    /// <summary>The record as an image into <paramref name="image"/> (for a pooled subscriber that comes after the subject's image); false before any image.</summary>
    public bool CopyImageTo(SubjectData image)
    {
        if (!HasRecord)
        {
            return false;
        }

        image.CopyFieldsFrom(_fields);
        (image.Kind, image.Subject, image.Server, image.Epoch, image.Seq, image.Merged, image.Status, image.Continuity) =
            (RttpMessageKind.Image, subject, _server, _epoch, _seq, 1, default, Continuity.Continuous);
        return true;
    }
}
