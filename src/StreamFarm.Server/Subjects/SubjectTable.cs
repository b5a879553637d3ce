using System.Collections.Concurrent;
using System.Text;
using StreamFarm.Protocol;
using StreamFarm.Server.Connections;

namespace StreamFarm.Server.Subjects;

/// <summary>All subjects this server holds. Lookups by UTF-8 name allocate nothing for known subjects.</summary>
internal sealed class SubjectTable(TimeProvider time, int serverBits = 0)
{
    /// <summary>Stamps, epochs and the ownership term of this server's records.</summary>
    public RecordClock Clock { get; } = new(time, serverBits);

    /// <summary>The clients' line limit (0: none): every record's IMAGE must fit in one such line (<see cref="SubjectRecord.MaxFieldsBytes"/>).</summary>
    public int MaxLine { get; init; }

    private readonly ConcurrentDictionary<string, SubjectRecord> _records = new(StringComparer.Ordinal);

    // Taken to create a record and to reassign owners, so that no record is created with an owner
    // from a table that a reassignment has already replaced. Creating a record is rare (a new
    // subject); the hot paths only look records up.
    private readonly Lock _createLock = new();

    public int Count => _records.Count;

    /// <summary>With routes: where publications and interests go for subjects other servers own.</summary>
    public IUpstream? Router { get; private set; }

    /// <summary>With routes: the owner of a subject, or null when this server owns it.</summary>
    private Func<string, string?>? _ownerOf;

    /// <summary>With routes: the live server whose hand-over of a subject this server (its new owner) still awaits, if any.</summary>
    private Func<string, string?>? _predecessorOf;

    /// <summary>With routes and standby copies: the server next in line for a subject (it keeps a standby copy); null: none.</summary>
    private Func<string, string?>? _successorOf;

    /// <summary>This server's id (with routes).</summary>
    private string? _self;

    /// <summary>Subscribes a session, looking the record up again if it was retired meanwhile.</summary>
    public SubjectRecord Subscribe(ReadOnlySpan<byte> subjectUtf8, ClientSession session)
    {
        while (true)
        {
            var record = GetOrAdd(subjectUtf8);
            if (record.TrySubscribe(session, Router))
            {
                return record;
            }
        }
    }

    /// <summary>Ends a session's subscription; drops the record when nothing is left of it.</summary>
    public void Unsubscribe(SubjectRecord record, ClientSession session)
    {
        if (record.Unsubscribe(session, Router))
        {
            RemoveIfUnused(record);
        }
    }

    /// <summary>
    /// Publishes into the subject's record (or forwards to its owner), looking it up again if it was
    /// retired meanwhile. <paramref name="hop"/> counts the routes the publication came through,
    /// <paramref name="source"/> names the server whose route brought it (null: a client here),
    /// <paramref name="stamp"/> is its stamp (0: stamped here).
    /// </summary>
    public PublishOutcome Publish(ReadOnlySpan<byte> subjectUtf8, RttpFrame frame, bool replace, int hop = 0, string? source = null, ulong stamp = 0, PubOrigin origin = default)
    {
        while (true)
        {
            var record = GetOrAdd(subjectUtf8);
            var outcome = record.Publish(frame, replace, Router, hop, source, stamp, origin);
            if (outcome != PublishOutcome.Retired)
            {
                if (record.SuccessorUntold)
                {
                    record.TellSuccessor(Router!); // its first value: the successor keeps a copy from now on
                }

                return outcome;
            }
        }
    }

    /// <summary>Owner side: a seed from another server's copy (see <see cref="SubjectRecord.Seed"/>).</summary>
    public bool Seed(ReadOnlySpan<byte> subjectUtf8, RttpFrame frame, ulong fromEpoch, SeedKind kind, int hop)
    {
        while (true)
        {
            var record = GetOrAdd(subjectUtf8);
            if (record.Seed(frame, fromEpoch, kind, Router, hop) is { } taken)
            {
                if (record.SuccessorUntold)
                {
                    record.TellSuccessor(Router!);
                }

                return taken;
            }
        }
    }

    /// <summary>Replica side: <c>STANDBY</c> from the subject's owner: this server keeps a copy (see <see cref="SubjectRecord.KeepStandby"/>).</summary>
    public void KeepStandby(ReadOnlySpan<byte> subjectUtf8)
    {
        if (Router is null)
        {
            return;
        }

        while (GetOrAdd(subjectUtf8).KeepStandby(Router) is null)
        {
            // retired meanwhile: look it up again
        }
    }

    /// <summary>Turns routes on: from now on records are created with their owner.</summary>
    public void UseRoutes(IUpstream router, Func<string, string?> ownerOf, Func<string, string?>? predecessorOf = null, Func<string, string?>? successorOf = null, string? self = null)
    {
        lock (_createLock)
        {
            Router = router;
            _ownerOf = ownerOf;
            _predecessorOf = predecessorOf;
            _successorOf = successorOf;
            _self = self;
        }
    }

    /// <summary>
    /// Applies new owners to every record (under the creation lock, after <paramref name="ownerOf"/>
    /// took effect for new records).
    /// </summary>
    /// <param name="ownerOf">The owner of a subject, or null for this server.</param>
    /// <param name="isAlive">Whether a server is alive.</param>
    /// <param name="then">Runs under each record's lock once its owner is set (publications that waited for a server that is gone are passed on there).</param>
    public void Reassign(Func<string, string?> ownerOf, Func<string, bool> isAlive, Action<SubjectRecord>? then)
    {
        lock (_createLock)
        {
            _ownerOf = ownerOf;
            foreach (var record in All) // under _createLock: nothing is created meanwhile
            {
                var owner = ownerOf(record.Name);
                if (record.Reassign(owner, isAlive, Router!, then))
                {
                    RemoveIfUnused(record);
                }

                if (owner is null)
                {
                    // Owned here: the server next in line may have changed; it keeps a copy.
                    record.SetSuccessor(_successorOf?.Invoke(record.Name));
                    record.TellSuccessor(Router!);
                }
                else if (record.IsStandby && _successorOf?.Invoke(record.Name) != _self && record.DropStandby(Router!))
                {
                    RemoveIfUnused(record); // no longer next in line, and nobody here subscribes
                }
            }
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
        lock (_createLock)
        {
            return _records.GetOrAdd(name, static (key, self) =>
            {
                var owner = self._ownerOf?.Invoke(key);
                var record = new SubjectRecord(key, self.Clock.NextEpoch(), owner, self.Clock, owner is null ? self._predecessorOf?.Invoke(key) : null, self.MaxLine);
                if (owner is null && self._successorOf is { } successorOf)
                {
                    record.SetSuccessor(successorOf(key));
                }

                return record;
            }, this);
        }
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

    /// <summary>Every record, enumerated in place (not a locked copy: <see cref="ConcurrentDictionaryExtensions.ValuesInPlace"/>).</summary>
    public IEnumerable<SubjectRecord> All => _records.ValuesInPlace();

    /// <summary>
    /// Epochs are the record's creation time in Unix milliseconds times 1,024, plus ten bits of this
    /// server's identity, made strictly increasing (see <see cref="RecordClock.NextEpoch(ulong)"/>).
    /// </summary>
    public ulong NextEpoch() => Clock.NextEpoch();
}
