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
    private ulong _epoch;
    private bool _retired;

    // Routes (see docs/architecture.md, "Routes"). _upstream is null while this server owns the
    // subject; otherwise the owner's id, and the record is a replica of the owner's, at the owner's
    // epoch and sequence numbers.
    private string? _upstream;
    private bool _awaiting;    // replica: subscribed upstream, no answer yet
    private bool _stale;       // subscribers were told STALE
    private bool _genuine;     // owned: a publisher (not a seed) has published in this epoch
    private ulong _seedEpoch;  // owned and seeded: the epoch and seq the seed came from
    private ulong _seedSeq;
    private string? _source;   // owned: the server whose route brought the last publication (null: a client here)

    public SubjectRecord(string name, ulong epoch, string? upstream = null)
    {
        Name = name;
        NameUtf8 = Encoding.UTF8.GetBytes(name);
        _epoch = epoch;
        _upstream = upstream;
    }

    public string Name { get; }

    public byte[] NameUtf8 { get; }

    public ulong Epoch => Volatile.Read(ref _epoch);

    public ulong Seq => Volatile.Read(ref _seq);

    /// <summary>The owner this record replicates, or null when this server owns the subject.</summary>
    public string? Upstream => Volatile.Read(ref _upstream);

    public bool IsStale => Volatile.Read(ref _stale);

    public bool IsRetired => Volatile.Read(ref _retired);

    public int SubscriberCount => Volatile.Read(ref _subscribers).Length;

    /// <summary>
    /// Adds a subscriber and queues its first message (IMAGE, or STATUS NOT_FOUND) under the lock.
    /// False when the record was retired from the table meanwhile: the caller looks it up again.
    /// </summary>
    public bool TrySubscribe(ClientSession session, IUpstream? router = null)
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
            if (_upstream is not null && next.Length == 1)
            {
                // The first interest of this server in a subject another server owns: ask the owner,
                // whose IMAGE (or STATUS) will reach every subscriber waiting here.
                _awaiting = true;
                router?.Subscribe(_upstream, NameUtf8);
            }

            if (_awaiting)
            {
                return true;
            }

            if (_seq == 0)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.NotFound);
            }
            else
            {
                session.Outbound.EnqueueRecord(RenderImage());
            }

            if (_stale)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.Stale);
            }

            return true;
        }
    }

    /// <summary>Removes a subscriber; true when the record is now unused (no data, no subscribers).</summary>
    public bool Unsubscribe(ClientSession session, IUpstream? router = null)
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
                if (next.Length == 0 && _upstream is not null)
                {
                    // Nobody here wants it any more: stop the owner's updates and forget the copy,
                    // which would go out of date without them.
                    router?.Unsubscribe(_upstream, NameUtf8);
                    ClearReplica();
                }
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
    public int Publish(RttpFrame frame, bool replace, IUpstream? router = null, int hop = 0, string? source = null)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return -1;
            }

            if (_upstream is not null)
            {
                // Another server owns the subject: the publication goes there (under this lock, so
                // publications through this server keep their order), and comes back as an UPDATE.
                router?.Forward(_upstream, frame, hop);
                return 0;
            }

            if (_stale)
            {
                _stale = false;
                FanOutStatus(SubjectStatus.Ok);
            }

            _genuine = true;
            _source = source;
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

    /// <summary>
    /// Owner side: a seed from another server (its copy of the record when the owner changes; see
    /// docs/architecture.md). Taken while no publisher has published in this epoch and the seed is
    /// newer than any taken before; a seed from a live previous owner (a handover) leaves the
    /// subject OK, any other leaves it STALE until a publisher is back. False when not taken; null
    /// when the record was retired meanwhile (the caller looks it up again).
    /// </summary>
    public bool? Seed(RttpFrame frame, ulong fromEpoch, ulong fromSeq, bool handover, IUpstream? router, int hop)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return null;
            }

            if (_upstream is not null)
            {
                router?.Forward(_upstream, frame, hop);
                return true;
            }

            var order = (fromEpoch, fromSeq).CompareTo((_seedEpoch, _seedSeq));
            if (handover && order == 0 && !_genuine)
            {
                SetStale(false); // a replica's copy came first; the live previous owner confirms it
                return true;
            }

            if (_genuine || order <= 0)
            {
                return false;
            }

            _seedEpoch = fromEpoch;
            _seedSeq = fromSeq;
            _fields.Clear();
            for (var i = 0; i < frame.FieldCount; i++)
            {
                SetField(frame.FieldName(i), frame.FieldValue(i));
            }

            _seq++;
            FanOut(RenderImage());
            SetStale(!handover);
            return true;
        }
    }

    /// <summary>Replica side: the owner's IMAGE, passed on verbatim.</summary>
    public void ApplyImage(string from, RttpFrame frame, ulong epoch, ulong seq)
    {
        lock (_lock)
        {
            if (_upstream != from || _subscribers.Length == 0)
            {
                return; // from a previous owner, or nobody here wants it any more
            }

            _awaiting = false;
            _fields.Clear();
            for (var i = 0; i < frame.FieldCount; i++)
            {
                SetField(frame.FieldName(i), frame.FieldValue(i));
            }

            _epoch = epoch;
            _seq = seq;
            FanOut(Verbatim(frame, isImage: true, epoch, seq, 1));
            SetStale(false);
        }
    }

    /// <summary>Replica side: the owner's UPDATE, passed on verbatim if it follows what this copy has.</summary>
    public bool ApplyUpdate(string from, RttpFrame frame, ulong epoch, ulong seq)
    {
        lock (_lock)
        {
            if (_upstream != from || _awaiting || _subscribers.Length == 0 || epoch != _epoch || seq <= _seq)
            {
                return false;
            }

            for (var i = 0; i < frame.FieldCount; i++)
            {
                SetField(frame.FieldName(i), frame.FieldValue(i));
            }

            var merged = frame.TryGetMeta("merged"u8, out var m) && int.TryParse(m, out var n) ? n : 1;
            _seq = seq;
            FanOut(Verbatim(frame, isImage: false, epoch, seq, merged));
            return true;
        }
    }

    /// <summary>Replica side: the owner's STATUS for the subject (NOT_FOUND, STALE, OK).</summary>
    public void ApplyStatus(string from, SubjectStatus status)
    {
        lock (_lock)
        {
            if (_upstream != from || _subscribers.Length == 0)
            {
                return;
            }

            if (status == SubjectStatus.NotFound)
            {
                var waiting = _awaiting;
                _awaiting = false;
                if (waiting || _seq != 0)
                {
                    ClearData();
                    FanOutStatus(SubjectStatus.NotFound);
                    _stale = false;
                }
            }
            else if (status is SubjectStatus.Stale or SubjectStatus.Ok)
            {
                SetStale(status == SubjectStatus.Stale);
            }
        }
    }

    /// <summary>
    /// Owner side: the server whose publisher published last is gone. Subscribers learn that the
    /// data is STALE until a publisher publishes again.
    /// </summary>
    public void SourceLost(string server)
    {
        lock (_lock)
        {
            if (_upstream is null && _source == server && _seq != 0)
            {
                _source = null;
                SetStale(true);
            }
        }
    }

    /// <summary>Replica side: the route to the owner is down. Subscribers learn that the data is STALE.</summary>
    public void UpstreamLost(string from)
    {
        lock (_lock)
        {
            if (_upstream == from && _subscribers.Length > 0 && _seq != 0)
            {
                SetStale(true);
            }
        }
    }

    /// <summary>Replica side: the route to the owner is up (again): ask for the subject anew.</summary>
    public void Resubscribe(string to, IUpstream router)
    {
        lock (_lock)
        {
            if (_upstream == to && _subscribers.Length > 0)
            {
                _awaiting = _seq == 0;
                router.Subscribe(to, NameUtf8);
            }
        }
    }

    /// <summary>
    /// The subject's owner is now <paramref name="owner"/> (null: this server). A record this server
    /// owned hands its data to the new owner; a replica whose owner is gone seeds the new owner with
    /// its copy and tells its subscribers STALE; a replica that becomes the owner keeps its copy under
    /// a new epoch. Returns true when the record is unused afterwards.
    /// </summary>
    /// <param name="owner">The new owner, or null for this server.</param>
    /// <param name="newEpoch">Makes a new epoch, for a subject this server takes over.</param>
    /// <param name="isAlive">Whether a server is alive (a live previous owner hands over its record itself).</param>
    /// <param name="router">The routes.</param>
    /// <param name="then">
    /// Runs under this record's lock once the owner is set: publications that were waiting for a
    /// server that is gone are passed on here, before any later publication can take the lock.
    /// </param>
    public bool Reassign(string? owner, Func<ulong> newEpoch, Func<string, bool> isAlive, IUpstream router, Action? then = null)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return false;
            }

            ReassignLocked(owner, newEpoch, isAlive, router);
            then?.Invoke();
            return _seq == 0 && _subscribers.Length == 0;
        }
    }

    private void ReassignLocked(string? owner, Func<ulong> newEpoch, Func<string, bool> isAlive, IUpstream router)
    {
        {
            var old = _upstream;
            if (old == owner)
            {
                return;
            }

            var hasData = _seq != 0;
            if (old is null)
            {
                // This server owned it: hand the record over, then follow the new owner.
                if (hasData)
                {
                    router.Seed(owner!, RenderSeed(handover: true));
                }

                _upstream = owner;
                ClearData();
                if (_subscribers.Length > 0)
                {
                    _awaiting = true;
                    router.Subscribe(owner!, NameUtf8);
                }
            }
            else if (owner is null)
            {
                // This server takes the subject over, keeping its copy under a new epoch.
                _upstream = null;
                _awaiting = false;
                _genuine = false;

                // Its own copy is the first seed: another copy replaces it only if it is newer.
                (_seedEpoch, _seedSeq) = hasData ? (_epoch, _seq) : (0, 0);
                _epoch = newEpoch();
                if (isAlive(old))
                {
                    router.Unsubscribe(old, NameUtf8);
                }

                if (hasData)
                {
                    _seq = 1;
                    FanOut(RenderImage());
                    SetStale(true);
                }
                else
                {
                    _seq = 0;
                    if (_subscribers.Length > 0)
                    {
                        FanOutStatus(SubjectStatus.NotFound);
                    }
                }
            }
            else
            {
                // Another server takes it over.
                if (hasData && !isAlive(old))
                {
                    router.Seed(owner, RenderSeed(handover: false));
                }
                else if (isAlive(old))
                {
                    router.Unsubscribe(old, NameUtf8);
                }

                _upstream = owner;
                if (_subscribers.Length > 0)
                {
                    if (hasData)
                    {
                        SetStale(true);
                    }

                    _awaiting = !hasData;
                    router.Subscribe(owner, NameUtf8);
                }
                else
                {
                    ClearData();
                }
            }
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

        RttpWriter.WriteImage(w, NameUtf8, _epoch, _seq, fields);
        return new RecordMessage(this, isImage: true, _epoch, _seq, 1, buffer, w.Written);
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
        RttpWriter.WriteUpdate(w, NameUtf8, _epoch, _seq, 1, fields);
        return new RecordMessage(this, isImage: false, _epoch, _seq, 1, buffer, w.Written);
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

    private void FanOut(RecordMessage message)
    {
        foreach (var s in _subscribers)
        {
            s.Outbound.EnqueueRecord(message);
        }
    }

    private void FanOutStatus(SubjectStatus status)
    {
        foreach (var s in _subscribers)
        {
            s.Outbound.EnqueueStatus(NameUtf8, status);
        }
    }

    private void SetStale(bool stale)
    {
        if (_stale != stale)
        {
            _stale = stale;
            FanOutStatus(stale ? SubjectStatus.Stale : SubjectStatus.Ok);
        }
    }

    private void ClearData()
    {
        _fields.Clear();
        _seq = 0;
    }

    private void ClearReplica()
    {
        ClearData();
        _awaiting = false;
        _stale = false;
    }

    /// <summary>The owner's IMAGE or UPDATE line as it came (with its LF), for this server's subscribers.</summary>
    private RecordMessage Verbatim(RttpFrame frame, bool isImage, ulong epoch, ulong seq, int merged)
    {
        var buffer = frame.LineWithLf();
        return new RecordMessage(this, isImage, epoch, seq, merged, buffer, buffer.Length);
    }

    /// <summary><c>PUBIMAGE subject @seed=epoch.seq [@handover=1] fields</c>: this copy, for a new owner.</summary>
    private byte[] RenderSeed(bool handover)
    {
        var w = new System.Buffers.ArrayBufferWriter<byte>(256);
        RttpWriter.WriteRaw(w, "PUBIMAGE "u8);
        RttpWriter.WriteRaw(w, NameUtf8);
        RttpWriter.WriteRaw(w, Encoding.ASCII.GetBytes($" @seed={_epoch}.{_seq}{(handover ? " @handover=1" : "")}"));
        foreach (var f in _fields)
        {
            RttpWriter.WriteRaw(w, " "u8);
            RttpWriter.WriteRaw(w, f.Name);
            RttpWriter.WriteRaw(w, "="u8);
            RttpWriter.WriteRaw(w, f.Value);
        }

        RttpWriter.WriteRaw(w, "\n"u8);
        return w.WrittenSpan.ToArray();
    }

    private readonly record struct Field(byte[] Name, byte[] Value);
}
