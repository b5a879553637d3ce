using System.Runtime.CompilerServices;
using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// Subscriptions: one stream per <see cref="SubscribeAsync(string, CancellationToken)"/> call (typed
/// messages, each with its own bounded buffer and the client's overflow policy), the subjects of
/// <see cref="SubscribeAsync(IEnumerable{string}, CancellationToken)"/> on <see cref="Messages"/>,
/// and the last value of every subscribed subject (<see cref="GetAsync"/>). A subject is subscribed
/// on the server once, whoever asks, and ended when its last subscriber leaves.
/// </summary>
public sealed partial class FarmClient
{
    // Each subject's streams as an array replaced on every change, so delivery takes it as it is (no copy per message).
    private readonly Dictionary<string, SubjectStream[]> _streams = new(StringComparer.Ordinal);
    private readonly HashSet<string> _channelSubjects = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RecordState> _records = new(StringComparer.Ordinal);
    private long _endedConflated;
    private long _endedDropped;
    private long _endedWaits;

    /// <summary>
    /// Subscribes to one subject and yields its messages, typed: the image first (the subject's
    /// current record; a later subscriber of a subject already subscribed gets it from the client's
    /// copy), then updates and status changes, across moves (after a move, an image whose
    /// <see cref="SubjectImage.Continuity"/> says what was missed). Ending the enumeration (break,
    /// cancellation) ends the subscription; the subject is unsubscribed on the server when no one
    /// else follows it. Starts the client if it was not started. Overflow as
    /// <see cref="FarmClientOptions.Overflow"/> says, per subscription.
    /// </summary>
    public async IAsyncEnumerable<SubjectMessage> SubscribeAsync(string subject, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        CheckSubject(subject);
        var stream = new TypedStream(new DeliveryQueue<SubjectMessage>(_options.MessageBuffer, _options.Overflow, Conflation.Instance, RaiseOverflowed));
        var first = Add(subject, stream, static (s, state) => s.Queue.TryWrite(state.Snapshot()!.ToImage()));
        try
        {
            if (first)
            {
                await SubscribeOnServerAsync([subject], cancel);
            }

            EnsureStarted();
            await foreach (var message in stream.Queue.Reader.ReadAllAsync(cancel))
            {
                yield return message;
            }
        }
        finally
        {
            await RemoveAsync(subject, stream);
        }
    }

    /// <summary>
    /// As <see cref="SubscribeAsync(string, CancellationToken)"/> (the same messages, order,
    /// continuity, overflow policy and counters, and the last value kept), opt-in pooled: each
    /// message is a <see cref="PooledSubjectMessage"/> whose field values are UTF-8 bytes in a buffer
    /// the subscription reuses, delivered by the connection's read loop without a string or an
    /// object per message. The application owns each message until it disposes it, which gives the
    /// buffer back; using it after that throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async IAsyncEnumerable<PooledSubjectMessage> SubscribePooledAsync(string subject, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        CheckSubject(subject);
        var stream = new PooledStream(_options.MessageBuffer, _options.Overflow, RaiseOverflowed);
        Interlocked.Increment(ref _pooledStreams);
        var first = Add(subject, stream, static (s, state) =>
        {
            var image = s.Pool.Rent();
            if (state.CopyImageTo(image))
            {
                s.Queue.TryWrite(image);
            }
        });
        try
        {
            if (first)
            {
                await SubscribeOnServerAsync([subject], cancel);
            }

            EnsureStarted();
            var reader = stream.Queue.Reader;
            while (await reader.WaitToReadAsync(cancel))
            {
                while (reader.TryRead(out var data))
                {
                    yield return new PooledSubjectMessage(data);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _pooledStreams);
            await RemoveAsync(subject, stream);
        }
    }

    /// <summary>Adds a stream of <paramref name="subject"/>; a later subscriber gets the current record first (<paramref name="image"/>, under the lock: nothing newer can come before it). True for the subject's first subscriber.</summary>
    private bool Add<TStream>(string subject, TStream stream, Action<TStream, RecordState> image)
        where TStream : SubjectStream
    {
        lock (_lock)
        {
            _streams[subject] = _streams.TryGetValue(subject, out var list) ? [.. list, stream] : [stream];
            var first = _subjects.Add(subject);
            if (!first && _records.TryGetValue(subject, out var state) && state.HasRecord)
            {
                image(stream, state);
            }

            return first;
        }
    }

    /// <summary>The stream ended: it leaves its subject, which is unsubscribed on the server when no one else follows it.</summary>
    private async Task RemoveAsync(string subject, SubjectStream stream)
    {
        bool last;
        lock (_lock)
        {
            var list = Array.FindAll(_streams[subject], q => q != stream);
            if (list.Length == 0)
            {
                _streams.Remove(subject);
            }
            else
            {
                _streams[subject] = list;
            }

            if (stream is PooledStream ended)
            {
                while (ended.Staged.TryDequeue(out var unwritten))
                {
                    unwritten.Return(); // never to be read: the stream has left _streams, nothing stages for it again
                    ended.WrittenCount++;
                }
            }

            last = list.Length == 0 && !_channelSubjects.Contains(subject);
            if (last)
            {
                Forget(subject);
            }

            _endedConflated += stream.Conflated;
            _endedDropped += stream.Dropped;
            _endedWaits += stream.Waits;
        }

        stream.Complete(null);
        if (last)
        {
            await UnsubscribeOnServerAsync([subject]);
        }
    }

    /// <summary>
    /// With <see cref="RttpConnectionOptions.Stamps"/>: record lines whose fields were older than
    /// this client's (the farm had lost writes it showed; see <see cref="SubjectRecord.Behind"/>).
    /// </summary>
    public long KeptNewer
    {
        get
        {
            lock (_lock)
            {
                return _records.Values.Sum(r => (long)r.KeptNewer);
            }
        }
    }

    /// <summary>
    /// The last value of a subject: at once when it is subscribed and its image has arrived;
    /// otherwise it subscribes, waits for the image, and ends that subscription again. Null when
    /// the subject has no record (<c>NOT_FOUND</c>) or may not be read (<c>DENIED</c>).
    /// </summary>
    public async Task<SubjectRecord?> GetAsync(string subject, CancellationToken cancel = default)
    {
        if (TryGetRecord(subject, out var held))
        {
            return held;
        }

        await foreach (var m in SubscribeAsync(subject, cancel))
        {
            switch (m)
            {
                case SubjectImage i:
                    return TryGetRecord(subject, out var record) ? record : new SubjectRecord(subject, i.Server, i.Epoch, i.Seq, i.Fields, SubjectStatus.Ok);
                case SubjectStatusChange { Status: SubjectStatus.NotFound or SubjectStatus.Denied }:
                    return null;
            }
        }

        return null;
    }

    /// <summary>The last value of a subscribed subject, if its image has arrived (never waits).</summary>
    public bool TryGetRecord(string subject, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SubjectRecord? record)
    {
        lock (_lock)
        {
            record = _records.TryGetValue(subject, out var state) ? state.Snapshot() : null;
            return record is not null;
        }
    }

    /// <summary>Hands a message to whoever follows it: its subject's streams and, for subjects of the channel API and messages about no subject, <see cref="Messages"/>.</summary>
    private ValueTask DeliverAsync(FarmMessage message, CancellationToken cancel) =>
        DeliverAsync(message.Message, message.Server, message.Continuity, cancel, message);

    /// <summary>
    /// As <see cref="DeliverAsync(FarmMessage, CancellationToken)"/>, for a message read from the
    /// connection's <see cref="RttpConnection.Messages"/> (the path before the read loop delivers
    /// directly, <see cref="IDataSink"/>): data is read into bytes and takes the same way.
    /// </summary>
    private async ValueTask DeliverAsync(RttpMessage m, string server, Continuity continuity, CancellationToken cancel, FarmMessage? labelled = null)
    {
        if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status)
        {
            // Only the client's loop delivers from RttpMessages (ServeAsync, PromoteAsync, one at a
            // time), so one buffer serves them all: nothing keeps it (the record and pooled streams copy).
            _loopData.Load(m, server, continuity);
            await DeliverDataAsync(_loopData, m, labelled, cancel);
            return;
        }

        var fm = labelled ?? new FarmMessage(m, server, continuity);
        if (!_messages.TryWrite(fm))
        {
            await _messages.WriteAsync(fm, cancel);
        }
    }

    /// <summary>
    /// Delivers an image, update or status (its <see cref="SubjectData.Server"/> and
    /// <see cref="SubjectData.Continuity"/> set): the last value is changed in place from its
    /// bytes; typed streams get one message (shared: it is immutable), each pooled stream a copy of
    /// the bytes in a buffer of its own; <see cref="Messages"/> a <see cref="FarmMessage"/> when the
    /// subject is on the channel API. <paramref name="original"/>: the string path's message, if it
    /// came as one (its strings are used, not made again).
    /// </summary>
    private async ValueTask DeliverDataAsync(SubjectData data, RttpMessage? original, FarmMessage? labelled, CancellationToken cancel)
    {
        SubjectStream[]? streams;
        bool toChannel;
        List<(PooledStream Stream, long Ticket)>? waiting = null;
        lock (_lock)
        {
            if (!_subjects.Contains(data.Subject))
            {
                return; // unsubscribed while this was on its way
            }

            if (!_records.TryGetValue(data.Subject, out var state))
            {
                _records[data.Subject] = state = new RecordState(data.Subject);
            }

            if (state.Apply(data, data.Server))
            {
                // Stamps kept newer values than the line had: what is delivered is the line as
                // changed, not the string path's message made from the wire.
                original = null;
                labelled = null;
            }

            streams = _streams.GetValueOrDefault(data.Subject);
            toChannel = _channelSubjects.Contains(data.Subject);

            // Pooled buffers: behind whatever is staged for them (see _staged), then written at once
            // as far as they take it.
            if (streams is not null)
            {
                foreach (var stream in streams)
                {
                    if (stream is PooledStream p)
                    {
                        StageLocked(p, data);
                        if (!WriteStagedLocked(p))
                        {
                            (waiting ??= []).Add((p, p.StagedCount)); // full, OverflowPolicy.Wait
                        }
                    }
                }
            }
        }

        if (streams is not null)
        {
            SubjectMessage? typed = null;
            foreach (var stream in streams)
            {
                if (stream is TypedStream t)
                {
                    typed ??= original is not null ? SubjectMessage.From(original, data.Server, data.Continuity) : data.ToSubjectMessage();
                    if (typed is not null && !t.Queue.TryWrite(typed))
                    {
                        await t.Queue.WriteAsync(typed, cancel); // OverflowPolicy.Wait: the application sets the pace
                    }
                }
            }
        }

        if (waiting is not null)
        {
            // OverflowPolicy.Wait: the application sets the pace; this line is handed on once it
            // (and what was staged before it) is in the buffer.
            foreach (var (p, ticket) in waiting)
            {
                while (true)
                {
                    lock (_lock)
                    {
                        WriteStagedLocked(p);
                        if (p.WrittenCount >= ticket)
                        {
                            break;
                        }
                    }

                    await p.Queue.WaitForRoomAsync(cancel);
                }
            }
        }

        if (toChannel)
        {
            var fm = labelled ?? new FarmMessage(original ?? data.ToRttpMessage(), data.Server, data.Continuity);
            if (!_messages.TryWrite(fm))
            {
                await _messages.WriteAsync(fm, cancel);
            }
        }
    }

    private readonly SubjectData _loopData = new();
    private int _pooledStreams; // pooled streams open: none, and the read loop leaves every line to the client's loop

    /// <summary>The connection <see cref="ServeAsync"/> serves, whose read loop delivers data lines here directly (<see cref="IDataSink"/>); null between servers.</summary>
    private RttpConnection? _serving;

    /// <summary>
    /// Pooled streams with lines staged (<see cref="PooledStream.Staged"/>), each once. Under <c>_lock</c>.
    /// </summary>
    /// <remarks>
    /// <para><b>Invariant (the order of a pooled buffer).</b> A pooled stream's buffer is written
    /// only from the head of its <see cref="PooledStream.Staged"/> queue, under <c>_lock</c>
    /// (<see cref="WriteStagedLocked"/>); a line is appended there under <c>_lock</c> in the same
    /// take of the lock that decided its delivery (continuity, the last value), by whoever
    /// delivers it: the serving connection's read loop (<see cref="Sink"/>, which writes its
    /// staged lines once per socket read: one wake-up of the application per read, not per line)
    /// or the client's loop (<see cref="DeliverDataAsync"/>, which writes at once), for whichever
    /// connection. Anyone may write any stream's staged lines, always from the head. So a buffer
    /// holds its lines in the order their deliveries were decided, whenever and by whomever they
    /// are written: a line staged by a connection the client has since left (its read loop
    /// stopped between staging and writing, or waiting for the application under
    /// <see cref="OverflowPolicy.Wait"/>) is written before anything the next connection delivers
    /// to the same buffer, never after it. The only other write, a later subscriber's first image
    /// (<see cref="Add"/>), goes to a new buffer, under <c>_lock</c>, before anything is staged for it.</para>
    /// </remarks>
    private readonly List<PooledStream> _staged = [];

    /// <summary>Appends a copy of <paramref name="data"/> to <paramref name="p"/>'s staged lines. Under <c>_lock</c>.</summary>
    private void StageLocked(PooledStream p, SubjectData data)
    {
        var copy = p.Pool.Rent();
        copy.CopyFrom(data);
        p.Staged.Enqueue(copy);
        p.StagedCount++;
        if (!p.Listed)
        {
            p.Listed = true;
            _staged.Add(p);
        }
    }

    /// <summary>
    /// Writes <paramref name="p"/>'s staged lines to its buffer from the head, as far as it takes
    /// them (all, except when full under <see cref="OverflowPolicy.Wait"/>); a buffer that has
    /// ended takes none and they go back to its pool. True when none is left. Under <c>_lock</c>.
    /// </summary>
    private static bool WriteStagedLocked(PooledStream p)
    {
        if (p.Staged.Count == 0)
        {
            return true;
        }

        var written = p.Queue.TryWriteMany(p.Staged);
        if (written < 0)
        {
            written = p.Staged.Count;
            while (p.Staged.TryDequeue(out var ended))
            {
                ended.Return();
            }
        }

        p.WrittenCount += written;
        return p.Staged.Count == 0;
    }

    /// <summary>Writes every stream's staged lines as far as the buffers take them; a stream still holding some (full, <see cref="OverflowPolicy.Wait"/>), or null. Under <c>_lock</c>.</summary>
    private PooledStream? WriteAllStagedLocked()
    {
        PooledStream? full = null;
        for (var i = _staged.Count - 1; i >= 0; i--)
        {
            var p = _staged[i];
            if (WriteStagedLocked(p))
            {
                p.Listed = false;
                _staged[i] = _staged[^1];
                _staged.RemoveAt(_staged.Count - 1);
            }
            else
            {
                full = p;
            }
        }

        return full;
    }

    /// <summary>Writes every staged line, waiting for the application where a buffer is full under <see cref="OverflowPolicy.Wait"/>.</summary>
    private async ValueTask WriteAllStagedAsync(CancellationToken cancel)
    {
        while (true)
        {
            PooledStream? full;
            lock (_lock)
            {
                full = WriteAllStagedLocked();
            }

            if (full is null)
            {
                return;
            }

            await full.Queue.WaitForRoomAsync(cancel); // false: ended, and the next round lets its lines go
        }
    }

    /// <summary>
    /// Data lines straight from the serving connection's read loop, as <see cref="ServeAsync"/>
    /// would handle them (a standby's catch-up, continuity, then delivery), without the client's
    /// loop in between, for subjects only pooled streams follow (<see cref="PooledOnly"/>): each
    /// line in one take of <c>_lock</c>, staged on the subscriptions' buffers; the read loop
    /// writes them once per socket read (<see cref="_staged"/>). Refused (the line goes to
    /// <see cref="RttpConnection.Messages"/>, to the client's loop): a subject with a typed or
    /// channel follower, and any line of a connection no longer served (which no one reads any more).
    /// </summary>
    private sealed class Sink(FarmClient client) : IDataSink
    {
        public bool Accepts => Volatile.Read(ref client._pooledStreams) > 0;

        public bool TryStage(RttpConnection connection, SubjectData data)
        {
            lock (client._lock)
            {
                if (client._serving != connection || !client.PooledOnly(data.Subject, out var streams))
                {
                    return false;
                }

                if (client.StillBehindLocked(data.Kind, data.Subject, data.Epoch, data.Seq))
                {
                    return true; // a standby's stream catching up with what the application saw
                }

                data.Continuity = client.TrackLocked(data.Kind, data.Subject, data.Epoch, data.Seq);
                if (!client._records.TryGetValue(data.Subject, out var state))
                {
                    client._records[data.Subject] = state = new RecordState(data.Subject);
                }

                state.Apply(data, data.Server);
                foreach (var stream in streams)
                {
                    client.StageLocked((PooledStream)stream, data);
                }

                return true;
            }
        }

        public bool TryWriteStaged()
        {
            lock (client._lock)
            {
                return client.WriteAllStagedLocked() is null;
            }
        }

        public ValueTask WriteStagedAsync(CancellationToken cancel) => client.WriteAllStagedAsync(cancel);
    }

    /// <summary>
    /// True when every follower of <paramref name="subject"/> is a pooled stream: only then does the
    /// read loop deliver its lines itself. Typed streams and the channel API keep the two
    /// hand-overs (read loop → client's loop → buffer): measured, the read loop doing their work
    /// (strings, typed messages) took their rate from 0.41–0.45 M to 0.23–0.27 M updates/s with
    /// 16-byte values (docs/benchmarks.md). Under <c>_lock</c>.
    /// </summary>
    private bool PooledOnly(string subject, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SubjectStream[]? streams)
    {
        if (_channelSubjects.Contains(subject) || !_streams.TryGetValue(subject, out streams))
        {
            streams = null;
            return false;
        }

        foreach (var stream in streams)
        {
            if (stream is not PooledStream)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A subscription's buffer: typed messages or pooled ones.</summary>
    private abstract class SubjectStream
    {
        public abstract long Conflated { get; }

        public abstract long Dropped { get; }

        public abstract long Waits { get; }

        public abstract void Complete(Exception? error);
    }

    private sealed class TypedStream(DeliveryQueue<SubjectMessage> queue) : SubjectStream
    {
        public DeliveryQueue<SubjectMessage> Queue { get; } = queue;

        public override long Conflated => Queue.Conflated;

        public override long Dropped => Queue.Dropped;

        public override long Waits => Queue.Waits;

        public override void Complete(Exception? error) => Queue.Complete(error);
    }

    private sealed class PooledStream(int capacity, OverflowPolicy policy, Action<OverflowEventArgs> overflowed) : SubjectStream
    {
        // At most what the buffer holds (plus one per subject beyond it when conflating) and what a
        // read loop stages before writing (RttpConnection.MaxStaged) is out at once in the steady
        // state; a few more are kept for the application's messages not yet disposed.
        public SubjectDataPool Pool { get; } = new(capacity + RttpConnection.MaxStaged + 16);

        public DeliveryQueue<SubjectData> Queue { get; } = new(capacity, policy, Conflation.Instance, overflowed);

        /// <summary>Lines whose delivery is decided and that are not in <see cref="Queue"/> yet, oldest first (see <c>_staged</c>). Under the client's <c>_lock</c>, as the three below.</summary>
        public Queue<SubjectData> Staged { get; } = new();

        /// <summary>Lines ever staged.</summary>
        public long StagedCount { get; set; }

        /// <summary>Lines ever taken from <see cref="Staged"/> (into the buffer, or let go when it ended): line n is in the buffer once this reaches n.</summary>
        public long WrittenCount { get; set; }

        /// <summary>In the client's list of streams with staged lines.</summary>
        public bool Listed { get; set; }

        public override long Conflated => Queue.Conflated;

        public override long Dropped => Queue.Dropped;

        public override long Waits => Queue.Waits;

        public override void Complete(Exception? error) => Queue.Complete(error);
    }

    /// <summary>Ends every stream (the client stopped, or gave up: <paramref name="error"/>).</summary>
    private void CompleteStreams(Exception? error)
    {
        lock (_lock)
        {
            foreach (var stream in _streams.Values.SelectMany(l => l))
            {
                stream.Complete(error);
            }
        }
    }

    /// <summary>The subject has no subscriber left. Under <c>_lock</c>.</summary>
    private void Forget(string subject)
    {
        _subjects.Remove(subject);
        _positions.Remove(subject);
        _records.Remove(subject);
    }

    private async Task SubscribeOnServerAsync(List<string> subjects, CancellationToken cancel)
    {
        if (Volatile.Read(ref _connection) is { } c)
        {
            try
            {
                await c.SubscribeAsync(subjects, cancel);
            }
            catch (Exception ex) when (ex is RttpConnectionException or IOException or ObjectDisposedException)
            {
                // the loop resubscribes on the next server
            }
        }
    }

    private async Task UnsubscribeOnServerAsync(List<string> subjects)
    {
        if (Volatile.Read(ref _connection) is { } c)
        {
            try
            {
                await c.UnsubscribeAsync(subjects, CancellationToken.None);
            }
            catch (Exception ex) when (ex is RttpConnectionException or IOException or ObjectDisposedException)
            {
                // the next server is not told of it in the first place
            }
        }
    }

    private static void CheckSubject(string subject)
    {
        if (!SubjectSyntax.IsValidSubject(Encoding.UTF8.GetBytes(subject)))
        {
            throw new ArgumentException($"'{subject}' is not a valid subject (like /FX/GBPUSD)", nameof(subject));
        }
    }
}
