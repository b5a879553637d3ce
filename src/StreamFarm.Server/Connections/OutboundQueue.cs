using System.Buffers;
using System.IO.Pipelines;
using StreamFarm.Protocol;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Connections;

/// <summary>
/// A connection's bounded outbound queue. Producers (publishers' fan-out, the session's own replies)
/// enqueue under a short lock; one writer loop drains it in batches into the transport pipe, one
/// flush per batch. When the queue reaches <see cref="LimitOptions.MaxOutboundBytes"/> it starts to
/// conflate: first every waiting message of a subject is merged into that subject's first waiting
/// one (so what waits is the newest state of each subject, and a flood on a few subjects shrinks
/// to a few lines), then each new record message is merged into its subject's waiting one, until
/// the writer has drained the queue below half the limit. A <c>STATUS</c> line of a subject is a
/// barrier: nothing of that subject is merged across it. Above four times the limit (or over it
/// for longer than the slow-consumer timeout) the owner cuts the connection.
/// </summary>
internal sealed class OutboundQueue
{
    private const int MaxBatchBytes = 64 * 1024;
    private const int MaxBatchEntries = 256;

    // An idle connection holds the smallest ring (memory per idle connection, issue 16); a burst
    // grows it, and a ring grown past ShrinkAbove goes back to KeptRing once the writer drained it.
    private const int InitialRing = 8;
    private const int KeptRing = 64;
    private const int ShrinkAbove = 256;
    private static readonly RttpLimits MergeLimits = new() { MaxLineBytes = int.MaxValue, MaxFields = int.MaxValue };
    private readonly Lock _lock = new();
    private readonly AsyncSignal _signal = new();
    private readonly int _maxBytes;
    private readonly TimeProvider _time;
    private Entry[] _ring = new Entry[InitialRing];
    private int _head;
    private int _count;
    private long _headIndex; // absolute index of _ring[_head]
    private long _bytes;
    private long _overSince; // timestamp when the queue went over the limit; 0 when under
    private Dictionary<SubjectRecord, long>? _pendingBySubject; // only while conflating: each subject's waiting record message (absolute index)
    private PipeWriter? _output; // the writer loop's transport, to hurry the last line of a cut
    private RttpFrame? _mergeFrame;
    private bool _completed;
    private long _conflations;
    private int _wakeDeferred; // 1 while a WakeBatch holds this queue's wake-up
    private TaskCompletionSource? _drained; // a route's read loop waits for the queue to go below half its limit

    public OutboundQueue(int maxBytes, TimeProvider time)
    {
        _maxBytes = maxBytes;
        _time = time;
    }

    public long QueuedBytes => Volatile.Read(ref _bytes);

    /// <summary>At or over the limit (conflating, and a slow consumer if it stays so).</summary>
    public bool IsOverLimit => Volatile.Read(ref _bytes) >= _maxBytes;

    /// <summary>Completes when the queue is below half its limit (or completed): a route's read loop waits on it before it reads more (<c>ClientSession.ReadLoopAsync</c>).</summary>
    public Task WaitBelowHalfAsync()
    {
        lock (_lock)
        {
            if (_bytes < _maxBytes / 2 || _completed)
            {
                return Task.CompletedTask;
            }

            return (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    public long Conflations => Volatile.Read(ref _conflations);

    /// <summary>The hard limit: four times the limit unless set (see <see cref="HardLimitExceeded"/>).</summary>
    public long HardLimitBytes { get => _hardLimit > 0 ? _hardLimit : 4L * _maxBytes; init => _hardLimit = value; }

    private readonly long _hardLimit;

    /// <summary>Raised (outside the lock) when the queue passes the hard limit; the owner closes the connection.</summary>
    public Action? HardLimitExceeded { get; set; }

    /// <summary>How long the queue has been over its limit, or zero.</summary>
    public TimeSpan OverLimitFor
    {
        get
        {
            var since = Volatile.Read(ref _overSince);
            return since == 0 ? TimeSpan.Zero : _time.GetElapsedTime(since);
        }
    }

    public void EnqueueRecord(RecordMessage message)
    {
        bool hard;
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            if (_pendingBySubject is null && _bytes >= _maxBytes)
            {
                Compact();
            }

            if (_pendingBySubject is not null && TryConflate(message))
            {
                return;
            }

            Append(new Entry(message, null));
            if (_pendingBySubject is not null)
            {
                _pendingBySubject[message.Subject] = _headIndex + _count - 1;
            }

            hard = _bytes > HardLimitBytes;
        }

        if (WakeBatch.Current is { } batch)
        {
            batch.Add(this); // a read loop applying a buffer: one wake-up per buffer (WakeBatch)
        }
        else
        {
            _signal.Set();
        }

        if (hard)
        {
            HardLimitExceeded?.Invoke();
        }
    }

    /// <summary>Marks this queue's wake-up as held by a <see cref="WakeBatch"/>; false if one already holds it.</summary>
    internal bool MarkWakeDeferred() => Interlocked.Exchange(ref _wakeDeferred, 1) == 0;

    /// <summary>The <see cref="WakeBatch"/> that held this queue's wake-up wakes the writer now.</summary>
    internal void WakeDeferred()
    {
        // Cleared before the wake: a message queued after this by another read loop, which saw the
        // mark and left the wake-up to this batch, is either taken by this wake-up or marks anew.
        Volatile.Write(ref _wakeDeferred, 0);
        _signal.Set();
    }

    /// <summary>Queues a STATUS line: never merged, and nothing of its subject is merged across it.</summary>
    public void EnqueueStatus(ReadOnlySpan<byte> subject, SubjectStatus status)
    {
        var w = new ArrayBufferWriter<byte>(subject.Length + 20);
        RttpWriter.WriteStatus(w, subject, status);
        EnqueueControl(w.WrittenSpan.ToArray(), System.Text.Encoding.UTF8.GetString(subject));
    }

    /// <summary>Queues a rendered line (or lines) that is never conflated: replies, errors, farm deltas.</summary>
    public void EnqueueControl(byte[] lines) => EnqueueControl(lines, null);

    private void EnqueueControl(byte[] lines, string? statusOf)
    {
        bool hard;
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            if (statusOf is not null && _pendingBySubject is not null)
            {
                EndMerging(_pendingBySubject, statusOf);
            }

            Append(new Entry(null, lines, statusOf));
            hard = _bytes > HardLimitBytes;
        }

        _signal.Set();
        if (hard)
        {
            HardLimitExceeded?.Invoke();
        }
    }

    /// <summary>Queues the last lines (optional) and refuses everything after; the writer ends once drained.</summary>
    public void Complete(byte[]? finalLines, bool discardPending = false)
    {
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            if (discardPending)
            {
                Array.Clear(_ring);
                _head = _count = 0;
                _bytes = 0;
                _pendingBySubject = null;
            }

            if (finalLines is not null)
            {
                Append(new Entry(null, finalLines));
            }

            _completed = true;
            _drained?.TrySetResult();
            _drained = null;
        }

        if (discardPending)
        {
            // A cut: the writer may be waiting for a full transport. Stop that wait, so that the
            // final line goes into the transport at once, behind only what it already holds.
            Volatile.Read(ref _output)?.CancelPendingFlush();
        }

        _signal.Set();
    }

    /// <summary>
    /// The writer loop: waits for entries, writes them in batches, one flush per batch. Returns when
    /// the queue is completed and drained, or the transport stops accepting writes.
    /// Counts written messages into <paramref name="sent"/>.
    /// </summary>
    public async Task RunWriterAsync(PipeWriter output, Action<int> sent, Action onWrite, CancellationToken cancel)
    {
        Volatile.Write(ref _output, output);
        while (!cancel.IsCancellationRequested)
        {
            await _signal.WaitAsync();
            while (true)
            {
                var (n, done) = WriteBatch(output);
                if (n == 0)
                {
                    if (done)
                    {
                        return;
                    }

                    break;
                }

                sent(n);
                onWrite();
                var result = await output.FlushAsync(cancel);
                if (result.IsCompleted)
                {
                    return;
                }

                // Canceled: Complete(discardPending) wants the final line written now; the loop
                // takes it next (and ends once it is flushed, or when the grace period cancels).
            }
        }
    }

    /// <summary>
    /// Takes a batch and writes it into <paramref name="output"/> (not flushed). The batch array is
    /// rented for this call only: an idle connection, or one waiting for its flush, holds none
    /// (6 KiB per connection when each kept its own).
    /// </summary>
    private (int Count, bool Done) WriteBatch(PipeWriter output)
    {
        var batch = ArrayPool<Entry>.Shared.Rent(MaxBatchEntries);
        var n = 0;
        try
        {
            n = TakeBatch(batch, out var done);
            for (var i = 0; i < n; i++)
            {
                var e = batch[i];
                output.Write(e.Record is not null ? e.Record.Line.Span : e.Control);
            }

            return (n, done);
        }
        finally
        {
            Array.Clear(batch, 0, n); // no references to old messages left in the pool
            ArrayPool<Entry>.Shared.Return(batch);
        }
    }

    private int TakeBatch(Entry[] batch, out bool done)
    {
        lock (_lock)
        {
            var n = 0;
            var bytes = 0L;
            while (_count > 0 && n < MaxBatchEntries && bytes < MaxBatchBytes)
            {
                var e = _ring[_head];
                _ring[_head] = default;
                _head = (_head + 1) % _ring.Length;
                _count--;
                _headIndex++;
                var size = e.Size;
                bytes += size;
                _bytes -= size;
                batch[n++] = e;
            }

            if (_count == 0 && _ring.Length > ShrinkAbove)
            {
                // A burst grew the ring; drained, it goes back to a modest size. (Its slots are
                // all cleared, and the absolute indexes of waiting messages do not depend on it.)
                _ring = new Entry[KeptRing];
                _head = 0;
            }

            if (_bytes < _maxBytes / 2)
            {
                Volatile.Write(ref _overSince, 0);
                _pendingBySubject = null;
                _drained?.TrySetResult();
                _drained = null;
            }

            done = _completed && _count == 0;
            return n;
        }
    }

    private void Append(Entry e)
    {
        if (_count == _ring.Length)
        {
            var bigger = new Entry[_ring.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                bigger[i] = _ring[(_head + i) % _ring.Length];
            }

            _ring = bigger;
            _head = 0;
        }

        _ring[(_head + _count) % _ring.Length] = e;
        _count++;
        _bytes += e.Size;
        if (_bytes >= _maxBytes && _overSince == 0)
        {
            Volatile.Write(ref _overSince, _time.GetTimestamp());
        }
    }

    /// <summary>
    /// Starts conflating: merges every waiting record message into the first waiting one of its
    /// subject (not across a STATUS line of that subject), so the queue holds the newest state of
    /// each subject once, at the place its oldest message had. Counted as drained: a queue that
    /// shrinks below half its limit is no longer over it.
    /// </summary>
    private void Compact()
    {
        var open = new Dictionary<SubjectRecord, long>();
        var kept = new Entry[_ring.Length];
        var n = 0;
        var bytes = 0L;
        for (var i = 0; i < _count; i++)
        {
            var e = _ring[(_head + i) % _ring.Length];
            if (e.Record is { } record)
            {
                if (open.TryGetValue(record.Subject, out var at))
                {
                    var waiting = kept[at].Record!;
                    var merged = Merge(waiting, record);
                    bytes += merged.Length - waiting.Length;
                    kept[at] = new Entry(merged, null);
                    _conflations++;
                    continue;
                }

                open[record.Subject] = n;
            }
            else if (e.StatusOf is { } name)
            {
                EndMerging(open, name);
            }

            kept[n++] = e;
            bytes += e.Size;
        }

        _ring = kept;
        _head = 0;
        _count = n;
        _bytes = bytes;
        _pendingBySubject = new Dictionary<SubjectRecord, long>(open.Count);
        foreach (var (subject, at) in open)
        {
            _pendingBySubject[subject] = _headIndex + at;
        }

        if (_bytes < _maxBytes / 2)
        {
            Volatile.Write(ref _overSince, 0);
        }
    }

    /// <summary>A STATUS line of <paramref name="name"/> was queued: later messages of it are not merged into earlier ones.</summary>
    private static void EndMerging(Dictionary<SubjectRecord, long> open, string name)
    {
        foreach (var subject in open.Keys)
        {
            if (subject.Name == name)
            {
                open.Remove(subject);
                return;
            }
        }
    }

    private bool TryConflate(RecordMessage message)
    {
        if (!_pendingBySubject!.TryGetValue(message.Subject, out var index) || index < _headIndex)
        {
            return false;
        }

        ref var slot = ref _ring[(_head + (int)(index - _headIndex)) % _ring.Length];
        if (slot.Record is not { } waiting || waiting.Subject != message.Subject)
        {
            return false;
        }

        var merged = Merge(waiting, message);
        _bytes += merged.Length - waiting.Length;
        slot = new Entry(merged, null);
        _conflations++;
        return true;
    }

    /// <summary>Merges a newer message of the same subject into a waiting one (the slow path).</summary>
    private RecordMessage Merge(RecordMessage older, RecordMessage newer)
    {
        if (newer.IsImage)
        {
            return newer; // a full image supersedes whatever waited
        }

        _mergeFrame ??= new RttpFrame();
        var fields = new List<(byte[] Name, byte[] Value, ulong Stamp)>();
        var clear = Collect(older, fields);
        Collect(newer, fields);
        var fieldsLength = fields.Sum(f => f.Name.Length + f.Value.Length + 2);
        var section = new byte[Math.Max(0, fieldsLength - 1)];
        var p = 0;
        foreach (var (name, value, _) in fields)
        {
            if (p > 0)
            {
                section[p++] = (byte)' ';
            }

            name.CopyTo(section, p);
            p += name.Length;
            section[p++] = (byte)'=';
            value.CopyTo(section, p);
            p += value.Length;
        }

        // Lines for a route carry the stamp of every field (see SubjectRecord); merged, each field
        // keeps its own.
        var meta = new ArrayBufferWriter<byte>(64);
        var count = older.Merged + newer.Merged;
        if (fields.Any(f => f.Stamp != 0))
        {
            if (older.IsImage)
            {
                RttpWriter.WriteRaw(meta, "@clr="u8);
                RttpWriter.WriteNumber(meta, clear);
                RttpWriter.WriteRaw(meta, " "u8);
            }

            RttpWriter.WriteRaw(meta, "@fts="u8);
            for (var i = 0; i < fields.Count; i++)
            {
                if (i > 0)
                {
                    RttpWriter.WriteRaw(meta, ","u8);
                }

                RttpWriter.WriteNumber(meta, fields[i].Stamp);
            }
        }

        if (!older.IsImage && count > 1)
        {
            if (meta.WrittenCount > 0)
            {
                RttpWriter.WriteRaw(meta, " "u8);
            }

            RttpWriter.WriteAscii(meta, $"@merged={count}");
        }

        var subject = newer.Subject;
        var buffer = new byte[RttpWriter.RecordLineLength(7, subject.NameUtf8.Length, meta.WrittenCount, section.Length)];
        var w = new SpanWriter(buffer);
        RttpWriter.WriteRecord(w, older.IsImage, subject.NameUtf8, newer.Epoch, newer.Seq, meta.WrittenSpan, section);
        return new RecordMessage(subject, older.IsImage, newer.Epoch, newer.Seq, count, buffer, w.Written);
    }

    /// <summary>Adds a message's fields (and their stamps, on route lines) to <paramref name="fields"/>; returns its <c>@clr</c>.</summary>
    private ulong Collect(RecordMessage message, List<(byte[] Name, byte[] Value, ulong Stamp)> fields)
    {
        var line = message.Line;
        var sequence = new ReadOnlySequence<byte>(line[..^1]); // without the LF
        RttpParser.TryParse(sequence, _mergeFrame!, MergeLimits, out _);
        var (clear, stamps) = SubjectRecord.ReadStamps(_mergeFrame!);
        for (var i = 0; i < _mergeFrame!.FieldCount; i++)
        {
            var name = _mergeFrame.FieldName(i);
            var value = _mergeFrame.FieldValue(i).ToArray();
            var at = -1;
            for (var j = 0; j < fields.Count && at < 0; j++)
            {
                at = fields[j].Name.AsSpan().SequenceEqual(name) ? j : -1;
            }

            if (at >= 0)
            {
                fields[at] = (fields[at].Name, value, stamps[i]);
            }
            else
            {
                fields.Add((name.ToArray(), value, stamps[i]));
            }
        }

        return clear;
    }

    // StatusOf: for a STATUS line, its subject (a barrier to merging).
    private readonly record struct Entry(RecordMessage? Record, byte[]? Control, string? StatusOf = null)
    {
        public int Size => Record?.Length ?? Control?.Length ?? 0;
    }
}
