using System.Text;
using StreamFarm.Protocol;
using StreamFarm.Server.Connections;

namespace StreamFarm.Server.Subjects;

/// <summary>
/// The last-value record of one subject and its subscribers. Every change and every subscribe runs
/// under this record's lock, so all subscribers see one order: the IMAGE first, then each UPDATE.
/// Lock order: record, then a session's outbound queue; never the reverse.
/// </summary>
internal sealed class SubjectRecord
{
    private readonly Lock _lock = new();
    private readonly List<Field> _fields = [];
    private ClientSession[] _subscribers = [];
    private ulong _seq;
    private bool _retired;

    public SubjectRecord(string name, ulong epoch)
    {
        Name = name;
        NameUtf8 = Encoding.UTF8.GetBytes(name);
        Epoch = epoch;
    }

    public string Name { get; }

    public byte[] NameUtf8 { get; }

    public ulong Epoch { get; }

    public ulong Seq => Volatile.Read(ref _seq);

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    /// <summary>
    /// Adds a subscriber and queues its first message (IMAGE, or STATUS NOT_FOUND) under the lock.
    /// False when the record was retired from the table meanwhile: the caller looks it up again.
    /// </summary>
    public bool TrySubscribe(ClientSession session)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return false;
            }

            if (Array.IndexOf(_subscribers, session) >= 0)
            {
                return true;
            }

            var next = new ClientSession[_subscribers.Length + 1];
            _subscribers.CopyTo(next, 0);
            next[^1] = session;
            Volatile.Write(ref _subscribers, next);
            if (_seq == 0)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.NotFound);
            }
            else
            {
                session.Outbound.EnqueueRecord(RenderImage());
            }

            return true;
        }
    }

    /// <summary>Removes a subscriber; true when the record is now unused (no data, no subscribers).</summary>
    public bool Unsubscribe(ClientSession session)
    {
        lock (_lock)
        {
            var i = Array.IndexOf(_subscribers, session);
            if (i >= 0)
            {
                var next = new ClientSession[_subscribers.Length - 1];
                Array.Copy(_subscribers, 0, next, 0, i);
                Array.Copy(_subscribers, i + 1, next, i, next.Length - i);
                Volatile.Write(ref _subscribers, next);
            }

            return _seq == 0 && _subscribers.Length == 0;
        }
    }

    /// <summary>
    /// Marks an unused record (no data, no subscribers) as retired, so that nobody subscribes to or
    /// publishes into it after the table dropped it. True if it was retired.
    /// </summary>
    public bool TryRetire()
    {
        lock (_lock)
        {
            if (_seq != 0 || _subscribers.Length != 0)
            {
                return false;
            }

            _retired = true;
            return true;
        }
    }

    /// <summary>
    /// Applies a PUB (merge) or PUBIMAGE (replace) from a parsed frame and fans the result out.
    /// Returns the number of subscribers it was queued for, or -1 if the record was retired
    /// meanwhile (the caller looks it up again).
    /// </summary>
    public int Publish(RttpFrame frame, bool replace)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return -1;
            }

            var first = _seq == 0;
            if (replace)
            {
                _fields.Clear();
            }

            for (var i = 0; i < frame.FieldCount; i++)
            {
                SetField(frame.FieldName(i), frame.FieldValue(i));
            }

            _seq++;
            var subscribers = _subscribers;
            if (subscribers.Length == 0)
            {
                return 0;
            }

            var message = replace || first ? RenderImage() : RenderUpdate(frame);
            foreach (var s in subscribers)
            {
                s.Outbound.EnqueueRecord(message);
            }

            return subscribers.Length;
        }
    }

    /// <summary>A copy of the current fields (escaped values), for status pages and tests.</summary>
    public (ulong Seq, KeyValuePair<string, string>[] Fields) Snapshot()
    {
        lock (_lock)
        {
            var fields = _fields.Select(f => KeyValuePair.Create(Encoding.UTF8.GetString(f.Name), FieldEscaping.Unescape(f.Value))).ToArray();
            return (_seq, fields);
        }
    }

    private void SetField(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        for (var i = 0; i < _fields.Count; i++)
        {
            var f = _fields[i];
            if (f.Name.AsSpan().SequenceEqual(name))
            {
                if (f.Value.Length == value.Length)
                {
                    value.CopyTo(f.Value); // same length: reuse the array, no allocation
                }
                else
                {
                    _fields[i] = f with { Value = value.ToArray() };
                }

                return;
            }
        }

        _fields.Add(new Field(name.ToArray(), value.ToArray()));
    }

    private RecordMessage RenderImage()
    {
        var fieldsLength = 0;
        foreach (var f in _fields)
        {
            fieldsLength += f.Name.Length + f.Value.Length + 2;
        }

        var buffer = new byte[RttpWriter.RecordLineLength(6, NameUtf8.Length, fieldsLength)];
        var w = new SpanWriter(buffer);
        var fields = new byte[Math.Max(0, fieldsLength - 1)];
        var p = 0;
        foreach (var f in _fields)
        {
            if (p > 0)
            {
                fields[p++] = (byte)' ';
            }

            f.Name.CopyTo(fields, p);
            p += f.Name.Length;
            fields[p++] = (byte)'=';
            f.Value.CopyTo(fields, p);
            p += f.Value.Length;
        }

        RttpWriter.WriteImage(w, NameUtf8, Epoch, _seq, fields);
        return new RecordMessage(this, isImage: true, Epoch, _seq, 1, buffer, w.Written);
    }

    private RecordMessage RenderUpdate(RttpFrame frame)
    {
        // The PUB's fields are sent on as they came (already validated and escaped), unless meta
        // attributes are mixed in: then they are written one by one.
        ReadOnlySpan<byte> fields = frame.FieldsSection;
        byte[]? rebuilt = null;
        if (frame.MetaCount > 0)
        {
            rebuilt = RebuildFields(frame);
            fields = rebuilt;
        }

        var buffer = new byte[RttpWriter.RecordLineLength(7, NameUtf8.Length, fields.Length)];
        var w = new SpanWriter(buffer);
        RttpWriter.WriteUpdate(w, NameUtf8, Epoch, _seq, 1, fields);
        return new RecordMessage(this, isImage: false, Epoch, _seq, 1, buffer, w.Written);
    }

    private static byte[] RebuildFields(RttpFrame frame)
    {
        var parts = new List<byte>();
        for (var i = 0; i < frame.FieldCount; i++)
        {
            if (i > 0)
            {
                parts.Add((byte)' ');
            }

            parts.AddRange(frame.FieldName(i));
            parts.Add((byte)'=');
            parts.AddRange(frame.FieldValue(i));
        }

        return [.. parts];
    }

    private readonly record struct Field(byte[] Name, byte[] Value);
}
