using System.Collections.Concurrent;
using System.Text;
using StreamFarm.Protocol;
using StreamFarm.Server.Connections;

namespace StreamFarm.Server.Subjects;

/// <summary>All subjects this server holds. Lookups by UTF-8 name allocate nothing for known subjects.</summary>
internal sealed class SubjectTable(TimeProvider time, int serverBits = 0)
{
    private readonly ConcurrentDictionary<string, SubjectRecord> _records = new(StringComparer.Ordinal);
    private long _lastEpoch;

    public int Count => _records.Count;

    /// <summary>Subscribes a session, looking the record up again if it was retired meanwhile.</summary>
    public SubjectRecord Subscribe(ReadOnlySpan<byte> subjectUtf8, ClientSession session)
    {
        while (true)
        {
            var record = GetOrAdd(subjectUtf8);
            if (record.TrySubscribe(session))
            {
                return record;
            }
        }
    }

    /// <summary>Publishes into the subject's record, looking it up again if it was retired meanwhile.</summary>
    public void Publish(ReadOnlySpan<byte> subjectUtf8, RttpFrame frame, bool replace)
    {
        while (GetOrAdd(subjectUtf8).Publish(frame, replace) < 0)
        {
        }
    }

    public SubjectRecord GetOrAdd(ReadOnlySpan<byte> subjectUtf8)
    {
        Span<char> chars = stackalloc char[subjectUtf8.Length];
        var n = Encoding.UTF8.GetChars(subjectUtf8, chars);
        var lookup = _records.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(chars[..n], out var record))
        {
            return record;
        }

        var name = new string(chars[..n]);
        return _records.GetOrAdd(name, static (key, self) => new SubjectRecord(key, self.NextEpoch()), this);
    }

    public SubjectRecord? Find(ReadOnlySpan<byte> subjectUtf8)
    {
        Span<char> chars = stackalloc char[subjectUtf8.Length];
        var n = Encoding.UTF8.GetChars(subjectUtf8, chars);
        return _records.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(chars[..n], out var r) ? r : null;
    }

    /// <summary>Removes a record nobody uses any more (no data, no subscribers).</summary>
    public void RemoveIfUnused(SubjectRecord record)
    {
        if (record.TryRetire())
        {
            ((ICollection<KeyValuePair<string, SubjectRecord>>)_records).Remove(KeyValuePair.Create(record.Name, record));
        }
    }

    public IEnumerable<SubjectRecord> All => _records.Values;

    /// <summary>
    /// Epochs are the record's creation time in Unix milliseconds times 1,024, plus ten bits of this
    /// server's identity, made strictly increasing: a record created again (after a restart) never
    /// reuses an epoch with older sequence numbers, and two servers creating a subject in the same
    /// millisecond almost never share one (1 in 1,024).
    /// </summary>
    private ulong NextEpoch()
    {
        var now = (time.GetUtcNow().ToUnixTimeMilliseconds() * 1024) + serverBits;
        while (true)
        {
            var last = Interlocked.Read(ref _lastEpoch);
            var next = Math.Max(now, last + 1);
            if (Interlocked.CompareExchange(ref _lastEpoch, next, last) == last)
            {
                return (ulong)next;
            }
        }
    }
}
