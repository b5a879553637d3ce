using System.Buffers;
using System.Buffers.Text;
using System.Text;
using StreamFarm.Protocol;
using StreamFarm.Server.Connections;

namespace StreamFarm.Server.Subjects;

/// <summary>
/// The last-value record of one subject and its subscribers. Every change and every subscribe runs
/// under this record's lock, so all subscribers see one order: the IMAGE first, then each UPDATE.
/// Lock order: record, then a session's outbound queue; never the reverse.
/// </summary>
/// <remarks>
/// Every field remembers the stamp of the publication that wrote it (<see cref="RecordClock"/>), and
/// a write never replaces a field written with a newer stamp: copies of a record merged in any order
/// (seeds after an owner change, a partition healing, publications passed on again after their
/// route broke) end in the same state, and a value never goes back to an older publication.
/// </remarks>
internal sealed class SubjectRecord
{
    private readonly List<Field> _fields = [];

    // The record's lock is its field list's monitor: a thin lock in the object's header, where a
    // Lock object of its own was 40 B more per subject (a million subjects: 40 MB; docs/benchmarks.md,
    // "Subjects per server"). Nothing else locks the list.
    private object _lock => _fields;
    private readonly RecordClock _clock;
    private ClientSession[] _subscribers = [];
    private ulong _seq;
    private ulong _epoch;
    private ulong _clear;      // stamp of the last PUBIMAGE: fields written before it are gone
    private long _term;        // owned: the server's ownership term this history belongs to
    private bool _retired;

    // Routes (see docs/architecture.md, "Routes"). _upstream is null while this server owns the
    // subject; otherwise the owner's id, and the record is a replica of the owner's, at the owner's
    // epoch and sequence numbers.
    private string? _upstream;
    private bool _awaiting;    // replica: subscribed upstream, no answer yet
    private bool _refreshing;  // replica with a copy that may be behind (new owner, route lost): newcomers wait for the owner's image
    private List<ClientSession>? _newcomers; // subscribed while refreshing: they get an image once the copy is confirmed or replaced
    private bool _stale;       // subscribers were told STALE
    private bool _genuine;     // owned: a publisher (not a seed) has published in this epoch
    private string? _source;   // owned: the server whose route brought the last publication (null: a client here)

    // Standby copies (docs/architecture.md, "Standby copies"). Owner side: the server next in line
    // for this subject (it takes the subject over if this one dies) and whether it was told to keep
    // a copy. Replica side: this server is next in line and keeps a copy, as if a client of its own
    // subscribed, so that it takes the subject over with the owner's last writes.
    private string? _successor;
    private bool _successorTold;
    private bool _standby;

    /// <summary>A replica is followed (subscribed at its owner, its copy kept) while a client here wants it or it is a standby copy.</summary>
    private bool Wanted => _subscribers.Length > 0 || _standby;

    // Owned, taken over from a live previous owner: its hand-over (its record, with every write it
    // applied) is on its way. Until it arrives (or HoldLimit passes, or that server is gone),
    // publications wait here and subscribers wait for the IMAGE, so the new history starts from
    // everything the old one had: no acknowledged value is skipped.
    private string? _handoverFrom;
    private long _holdSince;
    private List<Held>? _held;
    private bool _quiet; // under _lock, while Release applies what waited: no message per publication, one IMAGE after
    private readonly int _maxLine; // the clients' line limit (0: none): the record's IMAGE must fit in one line

    /// <summary>
    /// Room for everything of an <c>IMAGE</c> or <c>UPDATE</c> line but the subject and the fields:
    /// <c>"UPDATE "</c>, two spaces, epoch and seq (20 digits each), <c>" @merged="</c> and its count.
    /// </summary>
    public const int LineHeaderBytes = 80;

    /// <summary>
    /// The most bytes the record's fields may take on the wire (<c>" name=value"</c> each), so that
    /// its IMAGE, and every UPDATE, fits in one line of the clients' <c>maxline</c>: a publication
    /// that would make it longer is refused (<c>TOO_LARGE</c>) and changes nothing. Copies merged
    /// from other servers are not refused (they hold writes already applied).
    /// </summary>
    public long MaxFieldsBytes => _maxLine <= 0 ? long.MaxValue : (long)_maxLine - NameUtf8.Length - LineHeaderBytes;

    public SubjectRecord(string name, ulong epoch, string? upstream = null, RecordClock? clock = null, string? handoverFrom = null, int maxLine = 0)
    {
        Name = name;
        _maxLine = maxLine;
        NameUtf8 = Encoding.UTF8.GetBytes(name);
        _epoch = epoch;
        _upstream = upstream;
        _clock = clock ?? RecordClock.Detached;
        _term = _clock.Term;
        if (upstream is null && handoverFrom is not null)
        {
            Hold(handoverFrom);
        }
    }

    /// <summary>How long a new owner waits for its predecessor's hand-over at most.</summary>
    public static readonly TimeSpan HoldLimit = TimeSpan.FromSeconds(1);

    /// <summary>True while this record waits for a hand-over (see <see cref="HoldLimit"/>).</summary>
    public bool IsHolding => Volatile.Read(ref _handoverFrom) is not null;

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
            if (_upstream is not null && next.Length == 1 && !_standby)
            {
                // The first interest of this server in a subject another server owns: ask the owner,
                // whose IMAGE (or STATUS) will reach every subscriber waiting here.
                _awaiting = true;
                router?.Subscribe(_upstream, NameUtf8);
            }

            if (_awaiting || _handoverFrom is not null)
            {
                return true; // the IMAGE comes with the owner's answer, or when the hand-over is in
            }

            if (_upstream is not null && _seq != 0 && !(session.IsRoute && session.RoutePeer == _upstream))
            {
                // A copy may be behind without knowing it (a route that went quiet, a short pause,
                // an owner change on its way), and a new subscriber may have seen newer values at
                // another server (it is often one that just failed over). So the owner is asked
                // again, and the newcomer gets the owner's image, or this copy once the owner
                // confirms it: never a value older than the farm's. One question per subject at a
                // time: newcomers meanwhile wait for the same answer.
                (_newcomers ??= []).Add(session);
                if (!_refreshing)
                {
                    _refreshing = true;
                    router?.Subscribe(_upstream, NameUtf8);
                }

                return true;
            }

            if (_upstream is not null && session.IsRoute && session.RoutePeer == _upstream)
            {
                // The server this copy comes from takes this server for the owner: the tables
                // disagree for a moment. Answering would send its own lines back to it in a circle;
                // it gets the IMAGE when the owners are settled (a new owner fans its image out).
                return true;
            }

            if (_seq == 0)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.NotFound);
            }
            else
            {
                session.Outbound.EnqueueRecord(RenderImage(session.Stamped));
            }

            if (_stale)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.Stale);
            }

            return true;
        }
    }

    /// <summary>
    /// A subscriber asks again (a replica at another server checking that its copy is current):
    /// it gets the first message again (IMAGE, or STATUS NOT_FOUND), unless that is still to come.
    /// </summary>
    public void Resend(ClientSession session)
    {
        lock (_lock)
        {
            if (_retired || _awaiting || _handoverFrom is not null || Array.IndexOf(_subscribers, session) < 0)
            {
                return; // the answer comes anyway (to every subscriber)
            }

            if (_upstream is not null && _refreshing)
            {
                if (_newcomers?.Contains(session) != true)
                {
                    (_newcomers ??= []).Add(session); // this copy is being checked itself: the same answer
                }

                return;
            }

            if (_seq == 0)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.NotFound);
                return;
            }

            session.Outbound.EnqueueRecord(RenderImage(session.Stamped));
            if (_stale)
            {
                session.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.Stale);
            }
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
                _newcomers?.Remove(session);
                if (next.Length == 0 && _upstream is not null && !_standby)
                {
                    // Nobody here wants it any more: stop the owner's updates and forget the copy,
                    // which would go out of date without them.
                    router?.Unsubscribe(_upstream, NameUtf8);
                    ClearReplica();
                }
            }

            return _seq == 0 && !Wanted && _handoverFrom is null;
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
            if (_seq != 0 || Wanted || _handoverFrom is not null)
            {
                return false; // data, subscribers, or publications held for a hand-over
            }

            _retired = true;
            return true;
        }
    }

    /// <summary>
    /// Applies a PUB (merge) or PUBIMAGE (replace) from a parsed frame and fans the result out, or
    /// passes it on to the subject's owner. <paramref name="stamp"/> is the publication's stamp (0: a
    /// client published it here, stamp it now).
    /// </summary>
    public PublishOutcome Publish(RttpFrame frame, bool replace, IUpstream? router = null, int hop = 0, string? source = null, ulong stamp = 0, PubOrigin origin = default)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return PublishOutcome.Retired;
            }

            if (stamp == 0)
            {
                stamp = _clock.NextStamp();
            }
            else
            {
                _clock.Observe(stamp);
            }

            if (_upstream is not null)
            {
                // Another server owns the subject: the publication goes there (under this lock, so
                // publications through this server keep their order), and comes back as an UPDATE.
                return router is null || router.Forward(_upstream, frame, stamp, hop, origin) ? PublishOutcome.Forwarded : PublishOutcome.Dropped;
            }

            if (_handoverFrom is not null && !ReleaseIfDue())
            {
                if (_maxLine > 0 && FrameFieldsBytes(frame) > MaxFieldsBytes)
                {
                    // Too large whatever the hand-over brings: refused now. Held, it would be
                    // acknowledged with its route's batch and refused only later.
                    return PublishOutcome.TooLarge;
                }

                (_held ??= []).Add(new Held(frame.LineWithLf(), replace, stamp, source, origin));
                if (_held.Count > MaxHeld)
                {
                    Release(stale: true);
                }

                return PublishOutcome.Forwarded; // acknowledged when applied
            }

            return ApplyOwned(frame, replace, stamp, source);
        }
    }

    private const int MaxHeld = 10_000;

    /// <summary>What a publication's fields take on the wire (<c>" name=value"</c> each).</summary>
    private static long FrameFieldsBytes(RttpFrame frame)
    {
        long bytes = 0;
        for (var i = 0; i < frame.FieldCount; i++)
        {
            bytes += 2 + frame.FieldName(i).Length + frame.FieldValue(i).Length;
        }

        return bytes;
    }

    /// <summary>Whether applying the publication could make the fields longer than <see cref="MaxFieldsBytes"/> (an upper bound: a field it would not overwrite, being older, still counts).</summary>
    private bool WouldOutgrowLine(RttpFrame frame, bool replace)
    {
        var limit = MaxFieldsBytes;
        var n = frame.FieldCount;
        var added = FrameFieldsBytes(frame);

        if (replace || added > limit)
        {
            return added > limit;
        }

        long current = 0;
        foreach (var f in _fields)
        {
            current += 2 + f.Name.Length + f.Value.Length;
        }

        if (current + added <= limit)
        {
            return false; // the common case: no lookups
        }

        // Fields it rewrites replace their old values.
        var projected = current;
        for (var i = 0; i < n; i++)
        {
            var name = frame.FieldName(i);
            var value = frame.FieldValue(i).Length;
            var old = -1;
            for (var j = 0; j < _fields.Count && old < 0; j++)
            {
                old = _fields[j].Name.AsSpan().SequenceEqual(name) ? _fields[j].Value.Length : -1;
            }

            projected += old < 0 ? 2 + name.Length + value : value - old;
        }

        return projected > limit;
    }

    /// <summary>Owned: applies a publication (merge or replace) and fans the result out. Under the lock.</summary>
    private PublishOutcome ApplyOwned(RttpFrame frame, bool replace, ulong stamp, string? source)
    {
        {
            if (_maxLine > 0 && WouldOutgrowLine(frame, replace))
            {
                return PublishOutcome.TooLarge;
            }

            CheckTerm();
            var n = frame.FieldCount;
            Span<bool> applied = n <= 128 ? stackalloc bool[n] : new bool[n];
            var count = 0;
            if (replace)
            {
                if (stamp <= _clear)
                {
                    return PublishOutcome.Superseded; // a newer image (or this one, sent again) was applied
                }

                _clear = stamp;
                _fields.RemoveAll(f => f.Stamp < stamp);
            }

            if (stamp >= _clear)
            {
                for (var i = 0; i < n; i++)
                {
                    if (Write(frame.FieldName(i), frame.FieldValue(i), stamp, frame, i, applied))
                    {
                        applied[i] = true;
                        count++;
                    }
                }
            }

            if (count == 0 && !replace)
            {
                return PublishOutcome.Superseded;
            }

            if (_stale)
            {
                _stale = false;
                FanOutStatus(SubjectStatus.Ok);
            }

            _genuine = true;
            _source = source;
            var first = _seq == 0;
            _seq++;
            var subscribers = _subscribers;
            if (subscribers.Length == 0 || _quiet)
            {
                return PublishOutcome.Applied;
            }

            if (replace || first)
            {
                FanOutImage();
                return PublishOutcome.Applied;
            }

            // The PUB's fields are sent on as they came (already validated and escaped) when all of
            // them were applied and no meta attribute is mixed in; otherwise the applied ones are
            // written one by one.
            byte[]? rebuilt = null;
            ReadOnlySpan<byte> fields;
            if (count == n && frame.FieldsSectionIsClean)
            {
                fields = frame.FieldsSection;
            }
            else
            {
                rebuilt = JoinFields(frame, applied);
                fields = rebuilt;
            }

            var message = Render(image: false, default, fields);
            RecordMessage? routed = null;
            foreach (var s in subscribers)
            {
                if (s.Stamped)
                {
                    routed ??= Render(image: false, StampMeta("@ts="u8, stamp), fields);
                    s.Outbound.EnqueueRecord(routed);
                }
                else
                {
                    s.Outbound.EnqueueRecord(message);
                }
            }

            return PublishOutcome.Applied;
        }
    }

    /// <summary>
    /// Owner side: a seed from another server (its copy of the record when the owner changes; see
    /// docs/architecture.md). Merged field by field (a newer stamp wins). A copy from a history with
    /// a higher epoch moves this record to an epoch above it, so subscribers never see an epoch go
    /// back. A handover (from the live previous owner) leaves the subject OK; an orphan's copy that
    /// brought anything leaves it STALE until a publisher is back. True when it changed the record,
    /// false when not; null when the record was retired meanwhile (the caller looks it up again).
    /// </summary>
    public bool? Seed(RttpFrame frame, ulong fromEpoch, SeedKind kind, IUpstream? router, int hop)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return null;
            }

            if (_upstream is not null)
            {
                router?.Forward(_upstream, frame, 0, hop, PubOrigin.None);
                return true;
            }

            CheckTerm();
            var (clear, stamps) = ReadStamps(frame);
            var changed = false;
            if (clear > _clear)
            {
                _clear = clear;
                _fields.RemoveAll(f => f.Stamp < clear);
                changed = true;
            }

            for (var i = 0; i < frame.FieldCount; i++)
            {
                _clock.Observe(stamps[i]);
                if (stamps[i] >= _clear && Write(frame.FieldName(i), frame.FieldValue(i), stamps[i], frame, i, default))
                {
                    changed = true;
                }
            }

            var hasData = _seq != 0 || changed;
            if (fromEpoch > _epoch)
            {
                // The copy comes from a later history than this one: continue above it.
                _epoch = _clock.NextEpoch(fromEpoch + 1);
                _seq = 0;
                changed |= hasData;
            }

            if (_handoverFrom is not null)
            {
                // Merged silently while the hand-over is awaited; the hand-over ends the wait (any
                // copy does, when no live predecessor is known).
                if (kind == SeedKind.Handover || _handoverFrom.Length == 0)
                {
                    Release(stale: kind == SeedKind.Orphan);
                }

                return changed;
            }

            if (changed)
            {
                _seq++;
                FanOutImage();
            }

            if (kind == SeedKind.Handover)
            {
                SetStale(false);
            }
            else if (kind == SeedKind.Orphan && changed && !_genuine)
            {
                SetStale(true);
            }

            return changed;
        }
    }

    /// <summary>
    /// Replica side: the owner's IMAGE, passed on, unless it is older than this copy (a new owner
    /// that has not merged the copy yet, for example one replaying publications it took over): then
    /// the copy goes to the owner again and the subscription starts over, and the subscribers keep
    /// the copy (STALE) until an image that includes it arrives. A value never goes back here.
    /// </summary>
    public void ApplyImage(string from, RttpFrame frame, ulong epoch, ulong seq, IUpstream? router = null)
    {
        lock (_lock)
        {
            if (_upstream != from || !Wanted)
            {
                return; // from a previous owner, or nobody here wants it any more
            }

            if (_seq != 0 && epoch == _epoch && seq <= _seq)
            {
                if (_refreshing && seq == _seq)
                {
                    Refreshed(); // the owner confirms this copy
                }

                return; // this copy's own state (or an older one) coming back: nothing new
            }

            var (clear, stamps) = ReadStamps(frame);
            if (router is not null && _seq != 0 && epoch != _epoch && IsOlder(frame, clear, stamps))
            {
                router.Seed(from, RenderSeed(SeedKind.Copy));
                router.Unsubscribe(from, NameUtf8);
                router.Subscribe(from, NameUtf8);
                SetStale(true);
                _refreshing = true;
                return;
            }

            _awaiting = false;
            _refreshing = false;
            _newcomers = null; // the image goes to every subscriber
            _fields.Clear();
            SizeFields(frame.FieldCount);

            _clear = clear;
            for (var i = 0; i < frame.FieldCount; i++)
            {
                _clock.Observe(stamps[i]);
                _fields.Add(new Field(FieldNames.Intern(frame.FieldName(i)), frame.FieldValue(i).ToArray(), stamps[i]));
            }

            _epoch = epoch;
            _seq = seq;
            PassOn(frame, isImage: true, 1);
            SetStale(false);
        }
    }

    /// <summary>Whether an image lacks a write this record holds (a field written later than the image's version of it).</summary>
    private bool IsOlder(RttpFrame frame, ulong clear, ulong[] stamps)
    {
        foreach (var f in _fields)
        {
            if (f.Stamp == 0)
            {
                continue; // written by a server that does not stamp: nothing to compare
            }

            var found = false;
            for (var i = 0; i < frame.FieldCount; i++)
            {
                if (frame.FieldName(i).SequenceEqual(f.Name))
                {
                    found = true;
                    if (stamps[i] < f.Stamp)
                    {
                        return true;
                    }

                    break;
                }
            }

            if (!found && f.Stamp > clear)
            {
                return true; // the image has not seen this write (it would have kept it, or cleared it later)
            }
        }

        return false;
    }

    /// <summary>Replica side: the owner's UPDATE, passed on if it follows what this copy has.</summary>
    public bool ApplyUpdate(string from, RttpFrame frame, ulong epoch, ulong seq)
    {
        lock (_lock)
        {
            if (_upstream != from || _awaiting || !Wanted || epoch != _epoch || seq <= _seq)
            {
                return false;
            }

            var (_, stamps) = ReadStamps(frame);
            for (var i = 0; i < frame.FieldCount; i++)
            {
                _clock.Observe(stamps[i]);
                Write(frame.FieldName(i), frame.FieldValue(i), stamps[i], frame, i, default, force: true);
            }

            var merged = frame.TryGetMeta("merged"u8, out var m) && int.TryParse(m, out var k) ? k : 1;
            _seq = seq;
            PassOn(frame, isImage: false, merged);
            return true;
        }
    }

    /// <summary>Replica side: the owner's STATUS for the subject (NOT_FOUND, STALE, OK).</summary>
    public void ApplyStatus(string from, SubjectStatus status, IUpstream? router = null)
    {
        lock (_lock)
        {
            if (_upstream != from || !Wanted)
            {
                return;
            }

            if (status == SubjectStatus.NotFound)
            {
                _awaiting = false;
                if (_seq != 0)
                {
                    // Subjects are never deleted: an owner without data while this copy has some lost
                    // it (a restarted process). The copy goes to it; its IMAGE follows.
                    router?.Seed(from, RenderSeed(SeedKind.Copy));
                    router?.Subscribe(from, NameUtf8);
                    _refreshing = true;
                    return;
                }

                FanOutStatus(SubjectStatus.NotFound);
                _stale = false;
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
            if (_upstream == from && Wanted && _seq != 0)
            {
                SetStale(true);
                _refreshing = true;
            }
        }
    }

    /// <summary>
    /// Replica side: the route to the owner is up (again): this copy goes to the owner first (it may
    /// be a restarted process that lost the record), then the subject is asked for anew.
    /// </summary>
    public void Resubscribe(string to, IUpstream router)
    {
        lock (_lock)
        {
            if (_upstream == to && Wanted)
            {
                _awaiting = _seq == 0;
                router.Subscribe(to, NameUtf8);
            }
        }
    }

    /// <summary>
    /// The route to this replica's owner came up (again): this copy, for the owner, which may have
    /// been restarted and lost it (a copy it has already changes nothing there); its subscribers'
    /// newcomers wait for the owner's answer (<see cref="Resubscribe"/> follows). Null when there is
    /// nothing to send (no subscribers, no data, or not a replica of <paramref name="owner"/>).
    /// </summary>
    public byte[]? CopyForOwner(string owner)
    {
        lock (_lock)
        {
            if (_upstream != owner || !Wanted || _seq == 0)
            {
                return null;
            }

            _refreshing = true;
            return RenderSeed(SeedKind.Copy);
        }
    }

    /// <summary>
    /// The subject's owner is now <paramref name="owner"/> (null: this server). A record this server
    /// owned hands its data to the new owner; a replica sends its copy to the new owner before it
    /// subscribes there (so the owner's IMAGE is never older than what its subscribers had), and
    /// tells its subscribers STALE until that IMAGE; a replica that becomes the owner keeps its copy
    /// under a new, higher epoch. Returns true when the record is unused afterwards.
    /// </summary>
    /// <param name="owner">The new owner, or null for this server.</param>
    /// <param name="isAlive">Whether a server is alive (a live previous owner hands over its record itself).</param>
    /// <param name="router">The routes.</param>
    /// <param name="then">
    /// Runs under this record's lock once the owner is set: publications that were waiting for a
    /// server that is gone are passed on here, before any later publication can take the lock.
    /// </param>
    public bool Reassign(string? owner, Func<string, bool> isAlive, IUpstream router, Action<SubjectRecord>? then = null)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return false;
            }

            ReassignLocked(owner, isAlive, router);
            then?.Invoke(this);
            return _seq == 0 && !Wanted && _handoverFrom is null;
        }
    }

    private void ReassignLocked(string? owner, Func<string, bool> isAlive, IUpstream router)
    {
        if (_handoverFrom is not null && (!isAlive(_handoverFrom) || owner is not null))
        {
            Release(stale: true); // the predecessor is gone (or this server no longer owns it): no hand-over will come
        }

        var old = _upstream;
        if (old == owner)
        {
            return;
        }

        var hasData = _seq != 0;
        if (old is null)
        {
            // This server owned it: hand the record over, then follow the new owner. Subscribers
            // here keep the values until the new owner's IMAGE (which includes the hand-over: it
            // goes first on the same route), so they never see the subject as unknown meanwhile.
            if (hasData)
            {
                router.Seed(owner!, RenderSeed(SeedKind.Handover));
            }

            _upstream = owner;
            _successor = null;
            if (Wanted)
            {
                _awaiting = !hasData;
                _refreshing = hasData;
                router.Subscribe(owner!, NameUtf8);
            }
            else
            {
                ClearData();
            }
        }
        else if (owner is null)
        {
            // This server takes the subject over, keeping its copy under a new, higher epoch (a
            // standby copy is what it was kept for).
            _upstream = null;
            _standby = false;
            _awaiting = false;
            _refreshing = false;
            _newcomers = null; // the IMAGE of the new history reaches every subscriber
            _genuine = false;
            _term = _clock.Term;
            _epoch = _clock.NextEpoch(_epoch + 1);
            if (isAlive(old))
            {
                // The previous owner is alive and hands its record over: wait for it.
                router.Unsubscribe(old, NameUtf8);
                Hold(old);
                return;
            }

            // The previous owner is gone. Its last writes may be on their way from the others: their
            // copies (each sends its own when it sees the new owner) and the publications their
            // routes send again (the dead owner acknowledged them, perhaps to subscribers that now
            // move here). Wait for them, as for a hand-over, rather than show this copy at once: it
            // can lag them (a standby copy is one route behind the owner), and a subscriber that
            // had seen a newer value would be shown an older one. No copy here: wait for the first,
            // rather than tell subscribers that the subject does not exist. The owners barrier ends
            // the wait as soon as every survivor has sent what it had (RouteManager).
            Hold("");
        }
        else
        {
            // Another server takes it over: it gets this copy first (an orphan's, if the old owner is
            // gone), so that what it answers to the subscription is never older than the copy.
            var oldAlive = isAlive(old);
            if (hasData)
            {
                router.Seed(owner, RenderSeed(oldAlive ? SeedKind.Copy : SeedKind.Orphan));
            }

            if (oldAlive)
            {
                router.Unsubscribe(old, NameUtf8);
            }

            _upstream = owner;
            if (Wanted)
            {
                if (hasData)
                {
                    SetStale(true);
                }

                _awaiting = !hasData;
                _refreshing = hasData;
                router.Subscribe(owner, NameUtf8);
            }
            else
            {
                ClearData();
            }
        }
    }

    /// <summary>Whether this is a standby copy (this server is next in line for the subject).</summary>
    public bool IsStandby => Volatile.Read(ref _standby);

    /// <summary>Owner side: a successor that should be told to keep a copy and was not yet (a hint read without the lock).</summary>
    public bool SuccessorUntold => Volatile.Read(ref _upstream) is null && Volatile.Read(ref _successor) is not null && !Volatile.Read(ref _successorTold);

    /// <summary>Owner side: the server next in line for this subject by this server's owners (null: none, or this record is not owned here).</summary>
    public void SetSuccessor(string? successor)
    {
        lock (_lock)
        {
            if (_upstream is not null)
            {
                successor = null;
            }

            if (_successor != successor)
            {
                _successor = successor;
                _successorTold = false;
            }
        }
    }

    /// <summary>
    /// Owner side: asks the successor to keep a standby copy, once it has something to keep (data,
    /// or a hand-over on its way). <paramref name="again"/>: the route to <paramref name="again"/>
    /// came up (the peer may have been restarted and forgotten it): tell it again if it is the successor.
    /// </summary>
    public void TellSuccessor(IUpstream router, string? again = null)
    {
        lock (_lock)
        {
            if (again is not null && _successor == again)
            {
                _successorTold = false;
            }

            if (_upstream is null && !_retired && !_successorTold && _successor is not null && (_seq != 0 || _handoverFrom is not null))
            {
                _successorTold = true;
                router.Standby(_successor, NameUtf8);
            }
        }
    }

    /// <summary>
    /// Replica side: the owner says this server is next in line: keep a copy, following the owner
    /// as for a subscriber. False when this server owns the subject itself (the tables disagree for
    /// a moment): the ask is kept, and the record follows the owner once this server's table names
    /// it (the owner tells its successor once, so an ask forgotten here left the successor without a
    /// copy: a kill of the owner then showed the subject NOT_FOUND). Null when the record was
    /// retired meanwhile (the caller looks it up again).
    /// </summary>
    public bool? KeepStandby(IUpstream router)
    {
        lock (_lock)
        {
            if (_retired)
            {
                return null;
            }

            if (_upstream is null)
            {
                _standby = true; // kept: Reassign subscribes to the owner when this server's table agrees
                return false;
            }

            if (!_standby)
            {
                _standby = true;
                if (_subscribers.Length == 0)
                {
                    _awaiting = _seq == 0;
                    router.Subscribe(_upstream, NameUtf8);
                }
            }

            return true;
        }
    }

    /// <summary>Replica side: this server is no longer next in line. True when the record is unused afterwards.</summary>
    public bool DropStandby(IUpstream router)
    {
        lock (_lock)
        {
            if (_standby)
            {
                _standby = false;
                if (_subscribers.Length == 0 && _upstream is not null)
                {
                    router.Unsubscribe(_upstream, NameUtf8);
                    ClearReplica();
                }
            }

            return _seq == 0 && !Wanted && _handoverFrom is null;
        }
    }

    /// <summary>Releases the hold now (nothing more is on its way: see the routes' owners barrier).</summary>
    public void ReleaseNow()
    {
        lock (_lock)
        {
            if (_handoverFrom is not null)
            {
                Release(stale: true);
            }
        }
    }

    /// <summary>Releases the hold if <see cref="HoldLimit"/> passed; true if it did (or there was none).</summary>
    public bool ReleaseIfDue()
    {
        lock (_lock)
        {
            if (_handoverFrom is null)
            {
                return true;
            }

            if (_clock.Elapsed(_holdSince) < HoldLimit)
            {
                return false;
            }

            Release(stale: true);
            return true;
        }
    }

    /// <summary>Waits for <paramref name="from"/>'s hand-over, or for any copy when it is empty (no live predecessor known).</summary>
    private void Hold(string from)
    {
        _handoverFrom = from;
        _holdSince = _clock.Timestamp();
        _clock.Holding(this);
    }

    /// <summary>
    /// Ends the wait for a hand-over: the new history starts with an IMAGE of what this record has
    /// (its copy, merged with the hand-over if it came), then the publications that waited, in order.
    /// </summary>
    private void Release(bool stale)
    {
        _handoverFrom = null;
        var held = _held;
        _held = null;
        if (held is not null)
        {
            // In stamp order: while the owners changed, publications came by two paths (straight, and
            // through the previous owner); applied in arrival order, an older one arriving second would
            // be superseded and never shown. Each server's stamps follow its clients' order.
            // Applied quietly, then shown as one IMAGE: what waited can reach back seconds (the
            // publications a dead owner's peers send again), and shown one by one, from an empty
            // record, the first would be an IMAGE of the oldest of them, an old value shown as
            // current to subscribers that had seen newer ones from the dead owner.
            held.Sort(static (a, b) => a.Stamp.CompareTo(b.Stamp));
            var frame = new RttpFrame();
            _quiet = true;
            try
            {
                foreach (var h in held)
                {
                    if (RttpParser.TryParse(new ReadOnlySequence<byte>(h.Line.AsMemory(0, h.Line.Length - 1)), frame, OwnLines, out _) == RttpErrorCode.None)
                    {
                        ClientSession.Settle(h.Origin, ApplyOwned(frame, h.Replace, h.Stamp, h.Source), NameUtf8);
                    }
                }
            }
            finally
            {
                _quiet = false;
            }
        }

        if (_seq != 0 || _fields.Count > 0)
        {
            _seq++;
            FanOutImage();
            SetStale(stale && !_genuine);
        }
        else if (_subscribers.Length > 0)
        {
            FanOutStatus(SubjectStatus.NotFound);
        }
    }

    private static readonly RttpLimits OwnLines = new() { MaxLineBytes = int.MaxValue, MaxFields = int.MaxValue };

    private sealed record Held(byte[] Line, bool Replace, ulong Stamp, string? Source, PubOrigin Origin);

    /// <summary>A copy of the current fields (escaped values), for status pages and tests.</summary>
    public (ulong Seq, KeyValuePair<string, string>[] Fields) Snapshot()
    {
        lock (_lock)
        {
            var fields = _fields.Select(f => KeyValuePair.Create(Encoding.UTF8.GetString(f.Name), FieldEscaping.Unescape(f.Value))).ToArray();
            return (_seq, fields);
        }
    }

    /// <summary>
    /// Owned: if this server started a new ownership term since this history was sequenced (it was
    /// paused, or the farm declared it dead), the history may have been replaced elsewhere: move to
    /// a new epoch before sequencing anything.
    /// </summary>
    private void CheckTerm()
    {
        var term = _clock.Term;
        if (term == _term)
        {
            return;
        }

        _term = term;
        _epoch = _clock.NextEpoch(_epoch + 1);
        if (_seq != 0)
        {
            _seq = 1;
            FanOutImage();
        }
    }

    /// <summary>
    /// Writes one field with its stamp unless the record holds a newer write of it. An equal stamp is
    /// the same publication again (a resend): not written, unless an earlier field of the same frame
    /// (the same name twice in one line) wrote it.
    /// </summary>
    private bool Write(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, ulong stamp, RttpFrame? frame, int index, ReadOnlySpan<bool> appliedSoFar, bool force = false)
    {
        for (var i = 0; i < _fields.Count; i++)
        {
            var f = _fields[i];
            if (!f.Name.AsSpan().SequenceEqual(name))
            {
                continue;
            }

            if (!force && (f.Stamp > stamp || (f.Stamp == stamp && !WrittenEarlier(frame, name, index, appliedSoFar))))
            {
                return false;
            }

            if (f.Value.Length == value.Length)
            {
                value.CopyTo(f.Value); // same length: reuse the array, no allocation
                if (f.Stamp != stamp)
                {
                    _fields[i] = f with { Stamp = stamp };
                }
            }
            else
            {
                _fields[i] = new Field(f.Name, value.ToArray(), stamp);
            }

            return true;
        }

        if (_fields.Count == 0 && frame is not null)
        {
            SizeFields(frame.FieldCount);
        }

        _fields.Add(new Field(FieldNames.Intern(name), value.ToArray(), stamp));
        return true;
    }

    /// <summary>An empty field list about to take <paramref name="count"/> fields gets an array of their size (a list grows to 4 at its first add: 48 B more per subject of two fields).</summary>
    private void SizeFields(int count)
    {
        if (_fields.Capacity < count)
        {
            _fields.Capacity = count;
        }
    }

    private static bool WrittenEarlier(RttpFrame? frame, ReadOnlySpan<byte> name, int index, ReadOnlySpan<bool> applied)
    {
        if (frame is null || applied.IsEmpty)
        {
            return false;
        }

        for (var j = 0; j < index; j++)
        {
            if (applied[j] && frame.FieldName(j).SequenceEqual(name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The stamps a route line or a seed carries: <c>@clr</c> (the last image's stamp), <c>@fts</c>
    /// (one stamp per field, comma-separated) or <c>@ts</c> (one for every field). 0 when absent (a
    /// line from a server that does not stamp: older than any stamped write).
    /// </summary>
    internal static (ulong Clear, ulong[] Stamps) ReadStamps(RttpFrame frame)
    {
        var stamps = frame.FieldCount == 0 ? [] : new ulong[frame.FieldCount];
        RttpStamps.Read(frame, stamps, out var clear);
        return (clear, stamps);
    }

    private static byte[] StampMeta(ReadOnlySpan<byte> name, ulong stamp)
    {
        Span<byte> buffer = stackalloc byte[32];
        name.CopyTo(buffer);
        Utf8Formatter.TryFormat(stamp, buffer[name.Length..], out var n);
        return buffer[..(name.Length + n)].ToArray();
    }

    /// <summary><c>@clr=C @fts=s1,s2,...</c>: the stamps of this record's fields, for a route or a seed.</summary>
    private byte[] StampsMeta()
    {
        var w = new ArrayBufferWriter<byte>(32 + (_fields.Count * 21));
        RttpWriter.WriteRaw(w, "@clr="u8);
        RttpWriter.WriteNumber(w, _clear);
        if (_fields.Count > 0)
        {
            RttpWriter.WriteRaw(w, " @fts="u8);
            for (var i = 0; i < _fields.Count; i++)
            {
                if (i > 0)
                {
                    RttpWriter.WriteRaw(w, ","u8);
                }

                RttpWriter.WriteNumber(w, _fields[i].Stamp);
            }
        }

        return w.WrittenSpan.ToArray();
    }

    /// <summary>The frame's fields (those marked in <paramref name="applied"/>; all when it is empty), written one by one.</summary>
    private static byte[] JoinFields(RttpFrame frame, ReadOnlySpan<bool> applied)
    {
        var length = 0;
        for (var i = 0; i < frame.FieldCount; i++)
        {
            if (applied.IsEmpty || applied[i])
            {
                length += frame.FieldName(i).Length + frame.FieldValue(i).Length + 2;
            }
        }

        var fields = new byte[Math.Max(0, length - 1)];
        var p = 0;
        for (var i = 0; i < frame.FieldCount; i++)
        {
            if (!applied.IsEmpty && !applied[i])
            {
                continue;
            }

            if (p > 0)
            {
                fields[p++] = (byte)' ';
            }

            frame.FieldName(i).CopyTo(fields.AsSpan(p));
            p += frame.FieldName(i).Length;
            fields[p++] = (byte)'=';
            frame.FieldValue(i).CopyTo(fields.AsSpan(p));
            p += frame.FieldValue(i).Length;
        }

        return fields;
    }

    private byte[] JoinFields()
    {
        var length = 0;
        foreach (var f in _fields)
        {
            length += f.Name.Length + f.Value.Length + 2;
        }

        var fields = new byte[Math.Max(0, length - 1)];
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

        return fields;
    }

    private RecordMessage Render(bool image, ReadOnlySpan<byte> meta, ReadOnlySpan<byte> fields, int merged = 1)
    {
        var buffer = new byte[RttpWriter.RecordLineLength(7, NameUtf8.Length, meta.Length + 16, fields.Length)];
        var w = new SpanWriter(buffer);
        if (merged > 1 && meta.IsEmpty)
        {
            RttpWriter.WriteUpdate(w, NameUtf8, _epoch, _seq, merged, fields);
        }
        else
        {
            RttpWriter.WriteRecord(w, image, NameUtf8, _epoch, _seq, meta, fields);
        }

        return new RecordMessage(this, image, _epoch, _seq, merged, buffer, w.Written);
    }

    /// <summary>The IMAGE of this record: plain, or with every field's stamp (for a route, or a client that asked).</summary>
    private RecordMessage RenderImage(bool stamped) => Render(image: true, stamped ? StampsMeta() : default, JoinFields());

    private void FanOutImage()
    {
        RecordMessage? client = null;
        RecordMessage? routed = null;
        foreach (var s in _subscribers)
        {
            s.Outbound.EnqueueRecord(s.Stamped ? routed ??= RenderImage(stamped: true) : client ??= RenderImage(stamped: false));
        }
    }

    /// <summary>
    /// A replica passes the owner's line on: as it came to routes and clients that asked for stamps
    /// (stamps included), and to other clients without the stamps (only <c>@merged</c> stays).
    /// </summary>
    private void PassOn(RttpFrame frame, bool isImage, int merged)
    {
        RecordMessage? client = null;
        RecordMessage? routed = null;
        foreach (var s in _subscribers)
        {
            if (!isImage && _newcomers is not null && _newcomers.Contains(s))
            {
                continue; // waits for an image first
            }

            if (s.Stamped)
            {
                routed ??= Verbatim(frame, isImage, merged);
                s.Outbound.EnqueueRecord(routed);
            }
            else
            {
                client ??= frame.MetaCount == 0 ? Verbatim(frame, isImage, merged) : Render(isImage, default, frame.FieldsSectionIsClean ? frame.FieldsSection : JoinFields(frame, default), merged);
                s.Outbound.EnqueueRecord(client);
            }
        }
    }

    private void FanOutStatus(SubjectStatus status)
    {
        foreach (var s in _subscribers)
        {
            if (_newcomers is null || !_newcomers.Contains(s))
            {
                s.Outbound.EnqueueStatus(NameUtf8, status); // newcomers get their status with their image
            }
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
        _clear = 0;
    }

    private void ClearReplica()
    {
        ClearData();
        _awaiting = false;
        _stale = false;
        _refreshing = false;
        _newcomers = null;
    }

    /// <summary>A replica's copy is confirmed current: subscribers that waited get its image.</summary>
    private void Refreshed()
    {
        _refreshing = false;
        var waiting = _newcomers;
        _newcomers = null;
        foreach (var s in waiting ?? [])
        {
            s.Outbound.EnqueueRecord(RenderImage(s.Stamped));
            if (_stale)
            {
                s.Outbound.EnqueueStatus(NameUtf8, SubjectStatus.Stale);
            }
        }
    }

    /// <summary>The owner's IMAGE or UPDATE line as it came (with its LF).</summary>
    private RecordMessage Verbatim(RttpFrame frame, bool isImage, int merged)
    {
        var buffer = frame.LineWithLf();
        return new RecordMessage(this, isImage, _epoch, _seq, merged, buffer, buffer.Length);
    }

    /// <summary><c>PUBIMAGE subject @seed=epoch.seq [@handover=1 | @copy=1] @clr=C @fts=... fields</c>: this copy, for a new owner.</summary>
    private byte[] RenderSeed(SeedKind kind)
    {
        var w = new ArrayBufferWriter<byte>(256);
        RttpWriter.WriteRaw(w, "PUBIMAGE "u8);
        RttpWriter.WriteRaw(w, NameUtf8);
        RttpWriter.WriteAscii(w, $" @seed={_epoch}.{_seq}");
        RttpWriter.WriteRaw(w, kind switch { SeedKind.Handover => " @handover=1 "u8, SeedKind.Copy => " @copy=1 "u8, _ => " "u8 });
        RttpWriter.WriteRaw(w, StampsMeta());
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

    private readonly record struct Field(byte[] Name, byte[] Value, ulong Stamp);
}
