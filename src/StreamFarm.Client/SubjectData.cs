using System.Buffers;
using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// One image, update or status of a subject with its field values as unescaped UTF-8 bytes in one
/// reusable buffer (rented from <see cref="ArrayPool{T}"/>): what the read loop parses a data line
/// into (no <see cref="RttpMessage"/>, no strings), what a pooled subscription hands to the
/// application (<see cref="PooledSubjectMessage"/>), and the client's last value of a subject
/// (<see cref="RecordState"/>). Reused: <c>Load</c> and <c>CopyFrom</c> overwrite it, and nothing
/// is allocated once its arrays have grown to the largest message seen. Not thread-safe: one owner
/// at a time (the read loop, a queue, the application).
/// </summary>
/// <remarks>
/// Hand-written rather than a list of strings because this is the core of the zero-allocation
/// path: a value is kept as the bytes it arrived as and becomes a string only when asked for.
/// </remarks>
internal sealed class SubjectData
{
    private string[] _names = new string[4];
    private int[] _offsets = new int[4];
    private int[] _lengths = new int[4];
    private ulong[] _stamps = new ulong[4];
    private byte[] _bytes = [];
    private int _used;

    public RttpMessageKind Kind { get; set; }

    public string Subject { get; set; } = "";

    public string Server { get; set; } = "";

    public ulong Epoch { get; set; }

    public ulong Seq { get; set; }

    public int Merged { get; set; } = 1;

    public SubjectStatus Status { get; set; }

    public Continuity Continuity { get; set; }

    public int Count { get; private set; }

    /// <summary>The line carried its writes' stamps (<c>HELLO ... stamps=1</c>): <see cref="Stamp"/> and <see cref="Clear"/> are set.</summary>
    public bool Stamped { get; set; }

    /// <summary>An image's <c>@clr</c>: the fields written before that stamp were removed by an image publication.</summary>
    public ulong Clear { get; set; }

    /// <summary>The stamp of field <paramref name="i"/>'s write (0 when the line had none).</summary>
    public ulong Stamp(int i) => _stamps[i];

    /// <summary>The pool this one returns to (null: not pooled).</summary>
    internal SubjectDataPool? Pool { get; set; }

    /// <summary>Changes each time it returns to its pool: a <see cref="PooledSubjectMessage"/> made before is then stale.</summary>
    internal int Version { get; set; }

    public string Name(int i) => _names[i];

    public ReadOnlySpan<byte> Value(int i) => _bytes.AsSpan(_offsets[i], _lengths[i]);

    public ReadOnlyMemory<byte> ValueMemory(int i) => _bytes.AsMemory(_offsets[i], _lengths[i]);

    public int IndexOf(string name)
    {
        for (var i = 0; i < Count; i++)
        {
            if (string.Equals(_names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Reads a parsed <c>IMAGE</c>, <c>UPDATE</c> or <c>STATUS</c> line (names through the read
    /// loop's <paramref name="names"/>, values unescaped); false for a status this client does not know.
    /// Throws <see cref="FormatException"/> on a bad escape, as the string path does.
    /// </summary>
    public bool Load(RttpFrame f, NameCache names)
    {
        ClearFields();
        (Stamped, Clear) = (false, 0);
        Subject = names.Get(f.Arg(0));
        Merged = 1;
        Continuity = Continuity.Continuous;
        if (f.Verb == RttpVerb.Status)
        {
            Kind = RttpMessageKind.Status;
            Epoch = Seq = 0;
            if (!SubjectStatusNames.TryParse(f.Arg(1), out var status))
            {
                return false;
            }

            Status = status;
            return true;
        }

        Kind = f.Verb == RttpVerb.Image ? RttpMessageKind.Image : RttpMessageKind.Update;
        f.TryGetUInt64(1, out var epoch);
        f.TryGetUInt64(2, out var seq);
        (Epoch, Seq, Status) = (epoch, seq, default);
        if (f.TryGetMeta("merged"u8, out var merged) && int.TryParse(merged, out var m))
        {
            Merged = m;
        }

        for (var i = 0; i < f.FieldCount; i++)
        {
            var escaped = f.FieldValue(i);
            var at = Reserve(escaped.Length);
            if (!FieldEscaping.TryUnescape(escaped, _bytes.AsSpan(at), out var n))
            {
                throw new FormatException("invalid escape in field value");
            }

            Append(names.Get(f.FieldName(i)), at, n);
        }

        Stamped = RttpStamps.Read(f, _stamps.AsSpan(0, Count), out var clear);
        Clear = clear;
        return true;
    }

    /// <summary>The line's field stamps for the string path (<see cref="RttpStamps.Read"/>): a new array, or null when the line has none.</summary>
    internal static ulong[]? StampsOf(RttpFrame f, out ulong clear)
    {
        var stamps = new ulong[f.FieldCount];
        return RttpStamps.Read(f, stamps, out clear) ? stamps : null;
    }

    /// <summary>Reads a message of the string path (values encoded as UTF-8).</summary>
    public void Load(RttpMessage m, string server, Continuity continuity)
    {
        ClearFields();
        (Kind, Subject, Server, Epoch, Seq, Merged, Status, Continuity) = (m.Kind, m.Subject, server, m.Epoch, m.Seq, m.Merged, m.Status, continuity);
        foreach (var (name, value) in m.Fields)
        {
            Add(name, value);
        }

        (Stamped, Clear) = (m.FieldStamps is not null, m.Clear);
        if (m.FieldStamps is { } stamps)
        {
            stamps.AsSpan(0, Math.Min(stamps.Length, Count)).CopyTo(_stamps);
        }
    }

    /// <summary>Everything of <paramref name="other"/> (its header and fields).</summary>
    public void CopyFrom(SubjectData other)
    {
        (Kind, Subject, Server, Epoch, Seq, Merged, Status, Continuity) = (other.Kind, other.Subject, other.Server, other.Epoch, other.Seq, other.Merged, other.Status, other.Continuity);
        CopyFieldsFrom(other);
    }

    /// <summary>The fields of <paramref name="other"/> (in its order), replacing these.</summary>
    public void CopyFieldsFrom(SubjectData other)
    {
        ClearFields();
        EnsureFields(other.Count);
        var at = Reserve(other._used);
        Buffer.BlockCopy(other._bytes, 0, _bytes, at, other._used);
        Array.Copy(other._names, _names, other.Count);
        Array.Copy(other._offsets, _offsets, other.Count);
        Array.Copy(other._lengths, _lengths, other.Count);
        Array.Copy(other._stamps, _stamps, other.Count);
        Count = other.Count;
        _used = other._used;
        (Stamped, Clear) = (other.Stamped, other.Clear);
    }

    /// <summary>Sets each field of <paramref name="newer"/> in order: the latest value of a field already here in its place, a new one added at the end.</summary>
    public void MergeFieldsFrom(SubjectData newer)
    {
        for (var j = 0; j < newer.Count; j++)
        {
            Set(newer._names[j], newer.Value(j), newer._stamps[j]);
        }
    }

    /// <summary>Sets a field (with the stamp of its write, 0 if none): in its place if present, else added.</summary>
    public void Set(string name, ReadOnlySpan<byte> value, ulong stamp = 0)
    {
        var i = IndexOf(name);
        if (i < 0)
        {
            var at = Reserve(value.Length);
            value.CopyTo(_bytes.AsSpan(at));
            Append(name, at, value.Length);
            _stamps[Count - 1] = stamp;
            return;
        }

        _stamps[i] = stamp;

        if (value.Length <= _lengths[i])
        {
            value.CopyTo(_bytes.AsSpan(_offsets[i])); // fits where the old value was
        }
        else
        {
            Compact(value.Length);
            var at = Reserve(value.Length);
            value.CopyTo(_bytes.AsSpan(at));
            _offsets[i] = at;
            _used = at + value.Length;
        }

        _lengths[i] = value.Length;
    }

    /// <summary>The fields as strings (allocates: the string path's view).</summary>
    public KeyValuePair<string, string>[] ToFields()
    {
        if (Count == 0)
        {
            return [];
        }

        var fields = new KeyValuePair<string, string>[Count];
        for (var i = 0; i < Count; i++)
        {
            fields[i] = KeyValuePair.Create(_names[i], Encoding.UTF8.GetString(Value(i)));
        }

        return fields;
    }

    /// <summary>As the string path's message (allocates).</summary>
    public RttpMessage ToRttpMessage() => new()
    {
        Kind = Kind,
        Subject = Subject,
        Epoch = Epoch,
        Seq = Seq,
        Merged = Merged,
        Fields = ToFields(),
        Status = Status,
        Code = Kind == RttpMessageKind.Status ? Encoding.ASCII.GetString(Status.WireName()) : "",
    };

    /// <summary>As a typed message of <see cref="FarmClient.SubscribeAsync(string, CancellationToken)"/> (allocates).</summary>
    public SubjectMessage ToSubjectMessage() => Kind switch
    {
        RttpMessageKind.Image => new SubjectImage(Subject, Server, Epoch, Seq, ToFields(), Continuity),
        RttpMessageKind.Update => new SubjectUpdate(Subject, Server, Epoch, Seq, Merged, ToFields()),
        _ => new SubjectStatusChange(Subject, Server, Status),
    };

    /// <summary>Back to its pool (a buffer the pool does not keep goes back to <see cref="ArrayPool{T}"/>).</summary>
    public void Return()
    {
        Version++;
        if (Pool?.Return(this) != true)
        {
            ReleaseBuffer();
        }
    }

    public void ReleaseBuffer()
    {
        if (_bytes.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = [];
        }

        ClearFields();
    }

    private void Add(string name, string value)
    {
        var at = Reserve(Encoding.UTF8.GetMaxByteCount(value.Length));
        Append(name, at, Encoding.UTF8.GetBytes(value, _bytes.AsSpan(at)));
    }

    private void ClearFields()
    {
        Array.Clear(_names, 0, Count); // names are shared strings; cleared so a pooled one keeps none alive
        Count = 0;
        _used = 0;
    }

    private void Append(string name, int at, int length)
    {
        EnsureFields(Count + 1);
        _names[Count] = name;
        _offsets[Count] = at;
        _lengths[Count] = length;
        _stamps[Count] = 0;
        Count++;
        _used = at + length;
    }

    /// <summary>Removes field <paramref name="i"/> (its bytes stay until the next compaction).</summary>
    public void RemoveAt(int i)
    {
        var after = Count - i - 1;
        Array.Copy(_names, i + 1, _names, i, after);
        Array.Copy(_offsets, i + 1, _offsets, i, after);
        Array.Copy(_lengths, i + 1, _lengths, i, after);
        Array.Copy(_stamps, i + 1, _stamps, i, after);
        Count--;
        _names[Count] = null!;
    }

    /// <summary>Room for <paramref name="bytes"/> more after what is used; where they go.</summary>
    private int Reserve(int bytes)
    {
        if (_used + bytes > _bytes.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_used + bytes, Math.Max(256, _bytes.Length * 2)));
            Buffer.BlockCopy(_bytes, 0, bigger, 0, _used);
            if (_bytes.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_bytes);
            }

            _bytes = bigger;
        }

        return _used;
    }

    /// <summary>Values replaced by longer ones leave their old bytes behind: when those would make the buffer grow, the live values are packed first.</summary>
    private void Compact(int needed)
    {
        if (_used + needed <= _bytes.Length)
        {
            return;
        }

        var live = 0;
        for (var i = 0; i < Count; i++)
        {
            live += _lengths[i];
        }

        if (live == _used)
        {
            return;
        }

        var packed = ArrayPool<byte>.Shared.Rent(Math.Max(256, live + needed));
        var at = 0;
        for (var i = 0; i < Count; i++)
        {
            Buffer.BlockCopy(_bytes, _offsets[i], packed, at, _lengths[i]);
            _offsets[i] = at;
            at += _lengths[i];
        }

        ArrayPool<byte>.Shared.Return(_bytes);
        _bytes = packed;
        _used = at;
    }

    private void EnsureFields(int count)
    {
        if (count <= _names.Length)
        {
            return;
        }

        var size = Math.Max(count, _names.Length * 2);
        Array.Resize(ref _names, size);
        Array.Resize(ref _offsets, size);
        Array.Resize(ref _lengths, size);
        Array.Resize(ref _stamps, size);
    }
}

/// <summary>
/// The <see cref="SubjectData"/> of one pooled subscription, reused: taken by the delivery, given
/// back by the application's <see cref="PooledSubjectMessage.Dispose"/> (or by the subscription's
/// buffer when it conflates or drops one). Bounded: beyond <c>capacity</c> kept, a returned one is
/// let go.
/// </summary>
/// <remarks>
/// Hand-written (a bounded ConcurrentQueue) rather than Microsoft.Extensions.ObjectPool: the client has
/// no dependency on it, and the pool must stamp each item as its own (<see cref="SubjectData.Pool"/>).
/// </remarks>
internal sealed class SubjectDataPool(int capacity)
{
    // Lock-free: the read loop rents while the application's loop returns, on another thread, for
    // every message; under a lock the two contended on each (measured: Lock's slow path and
    // sched_yield in the pooled path's profile). A ConcurrentQueue reuses its ring of slots, so it
    // allocates nothing once grown. The count bounds what is kept (approximately, under races).
    private readonly System.Collections.Concurrent.ConcurrentQueue<SubjectData> _free = new();
    private int _count;

    public SubjectData Rent()
    {
        if (_free.TryDequeue(out var data))
        {
            Interlocked.Decrement(ref _count);
            return data;
        }

        return new SubjectData { Pool = this };
    }

    public bool Return(SubjectData data)
    {
        if (Interlocked.Increment(ref _count) > capacity)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        _free.Enqueue(data);
        return true;
    }
}
