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

    /// <summary>
    /// With <see cref="RttpConnectionOptions.Stamps"/>: the fields held at later writes than the farm
    /// now has (it lost them: every server that had them died before passing them on). Their values
    /// are the newest this client saw and may be out of date; empty when there are none.
    /// </summary>
    public IReadOnlyList<string> Behind { get; init; } = [];

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

    /// <summary>
    /// Applies <paramref name="m"/> (from <paramref name="server"/>): an image replaces every field;
    /// an update of the same history with a later <c>seq</c> sets its fields (the latest value of
    /// each, new ones added in order); a status sets the status. Anything else (an update before any
    /// image, of another history, or not newer) changes nothing. A line with stamps is first made to
    /// show nothing older than this record holds (<see cref="KeepNewer"/>); true when that changed it.
    /// </summary>
    public bool Apply(SubjectData m, string server)
    {
        var guarded = m.Stamped && HasRecord && m.Kind is RttpMessageKind.Image or RttpMessageKind.Update && KeepNewer(m);
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
                return guarded;
        }

        _snapshot = null;
        return guarded;
    }

    /// <summary>Fields held at later writes than the farm now has (see <see cref="SubjectRecord.Behind"/>).</summary>
    private List<string>? _behind;

    /// <summary>Lines whose fields were older than this record's (the farm had lost writes it showed).</summary>
    public int KeptNewer { get; private set; }

    /// <summary>
    /// The servers' merge rule, applied to a stamped line before it is shown (docs/protocol.md 4a,
    /// "Refusing to go back"; <c>StreamFarm.Protocol.StampedFields</c> is the same rule over strings):
    /// a field of the line older than the one held is dropped from an update and given the held
    /// value in an image; a field an image lacks but this record holds, written after the image's
    /// <c>@clr</c>, is added to it. The line then reads as what the application should see, and
    /// applying it leaves this record with the newest write of every field. True when it changed the line.
    /// </summary>
    private bool KeepNewer(SubjectData m)
    {
        var image = m.Kind == RttpMessageKind.Image;
        var clear = Math.Max(_fields.Clear, m.Clear);
        var kept = 0;
        var changed = false;
        for (var i = m.Count - 1; i >= 0; i--)
        {
            var name = m.Name(i);
            var j = _fields.IndexOf(name);
            var stamp = m.Stamp(i);
            if (j >= 0 && _fields.Stamp(j) > stamp && _fields.Stamp(j) >= clear)
            {
                kept++;
                changed = true;
                (_behind ??= []).Remove(name);
                _behind.Add(name);
                if (image)
                {
                    m.Set(name, _fields.Value(j), _fields.Stamp(j));
                }
                else
                {
                    m.RemoveAt(i);
                }
            }
            else if (stamp < clear && stamp != 0)
            {
                changed = true;
                m.RemoveAt(i); // an older write of a field an image publication removed
            }
            else
            {
                _behind?.Remove(name); // a write at least as late as the one held
            }
        }

        if (image)
        {
            for (var k = 0; k < _fields.Count; k++)
            {
                if (_fields.Stamp(k) >= clear && m.IndexOf(_fields.Name(k)) < 0)
                {
                    kept++;
                    changed = true;
                    (_behind ??= []).Remove(_fields.Name(k));
                    _behind.Add(_fields.Name(k));
                    m.Set(_fields.Name(k), _fields.Value(k), _fields.Stamp(k));
                }
            }

            m.Clear = clear;
            _behind?.RemoveAll(n => m.IndexOf(n) < 0); // removed by the image publication
        }

        if (kept > 0)
        {
            KeptNewer++;
        }

        return changed;
    }

    /// <summary>The record as it stands (null before any image).</summary>
    public SubjectRecord? Snapshot() =>
        !HasRecord ? null : _snapshot ??= new SubjectRecord(subject, _server, _epoch, _seq, _fields.ToFields(), _status) { Behind = _behind is { Count: > 0 } ? [.. _behind] : [] };

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
