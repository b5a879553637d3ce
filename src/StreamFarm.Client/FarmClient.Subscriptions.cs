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

            state.Apply(data, data.Server);
            streams = _streams.GetValueOrDefault(data.Subject);
            toChannel = _channelSubjects.Contains(data.Subject);
        }

        if (streams is not null)
        {
            SubjectMessage? typed = null;
            foreach (var stream in streams)
            {
                switch (stream)
                {
                    case TypedStream t:
                        typed ??= original is not null ? SubjectMessage.From(original, data.Server, data.Continuity) : data.ToSubjectMessage();
                        if (typed is not null && !t.Queue.TryWrite(typed))
                        {
                            await t.Queue.WriteAsync(typed, cancel); // OverflowPolicy.Wait: the application sets the pace
                        }

                        break;
                    case PooledStream p:
                        var copy = p.Pool.Rent();
                        copy.CopyFrom(data);
                        if (!p.Queue.TryWrite(copy) && !await p.Queue.WriteAsync(copy, cancel))
                        {
                            copy.Return(); // the subscription ended
                        }

                        break;
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
    /// Data lines straight from the serving connection's read loop, as <see cref="ServeAsync"/>
    /// would handle them (a standby's catch-up, continuity, then delivery), without the client's
    /// loop in between, for subjects only pooled streams follow (<see cref="PooledOnly"/>). Refused
    /// (the line goes to <see cref="RttpConnection.Messages"/>, to the client's loop): a subject
    /// with a typed or channel follower, and any line of a connection no longer served (which no
    /// one reads any more).
    /// </summary>
    private sealed class Sink(FarmClient client) : IDataSink
    {
        public bool Accepts => Volatile.Read(ref client._pooledStreams) > 0;

        public ValueTask<bool> DeliverAsync(RttpConnection connection, SubjectData data, CancellationToken cancel)
        {
            lock (client._lock)
            {
                if (client._serving != connection || !client.PooledOnly(data.Subject))
                {
                    return ValueTask.FromResult(false);
                }

                if (client.StillBehindLocked(data.Kind, data.Subject, data.Epoch, data.Seq))
                {
                    return ValueTask.FromResult(true); // a standby's stream catching up with what the application saw
                }

                data.Continuity = client.TrackLocked(data.Kind, data.Subject, data.Epoch, data.Seq);
            }

            var delivery = client.DeliverDataAsync(data, null, null, cancel);
            return delivery.IsCompletedSuccessfully ? ValueTask.FromResult(true) : AwaitAsync(delivery);
        }

        private static async ValueTask<bool> AwaitAsync(ValueTask delivery)
        {
            await delivery;
            return true;
        }
    }

    /// <summary>
    /// True when every follower of <paramref name="subject"/> is a pooled stream: only then does the
    /// read loop deliver its lines itself. Typed streams and the channel API keep the two
    /// hand-overs (read loop → client's loop → buffer): measured, the read loop doing their work
    /// (strings, typed messages) took their rate from 0.41–0.45 M to 0.23–0.27 M updates/s with
    /// 16-byte values (docs/benchmarks.md). Under <c>_lock</c>.
    /// </summary>
    private bool PooledOnly(string subject)
    {
        if (_channelSubjects.Contains(subject) || !_streams.TryGetValue(subject, out var streams))
        {
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
        // At most what the buffer holds (plus one per subject beyond it when conflating) is out at
        // once in the steady state; a few more are kept for the application's messages not yet disposed.
        public SubjectDataPool Pool { get; } = new(capacity + 16);

        public DeliveryQueue<SubjectData> Queue { get; } = new(capacity, policy, Conflation.Instance, overflowed);

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
