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
    private readonly Dictionary<string, DeliveryQueue<SubjectMessage>[]> _streams = new(StringComparer.Ordinal);
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
        var queue = new DeliveryQueue<SubjectMessage>(_options.MessageBuffer, _options.Overflow, Conflation.Instance, RaiseOverflowed);
        bool first;
        lock (_lock)
        {
            _streams[subject] = _streams.TryGetValue(subject, out var list) ? [.. list, queue] : [queue];
            first = _subjects.Add(subject);
            if (!first && _records.TryGetValue(subject, out var state) && state.Snapshot() is { } current)
            {
                queue.TryWrite(current.ToImage()); // under the lock: nothing newer can come before it
            }
        }

        try
        {
            if (first)
            {
                await SubscribeOnServerAsync([subject], cancel);
            }

            EnsureStarted();
            await foreach (var message in queue.Reader.ReadAllAsync(cancel))
            {
                yield return message;
            }
        }
        finally
        {
            bool last;
            lock (_lock)
            {
                var list = Array.FindAll(_streams[subject], q => q != queue);
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

                _endedConflated += queue.Conflated;
                _endedDropped += queue.Dropped;
                _endedWaits += queue.Waits;
            }

            queue.Complete();
            if (last)
            {
                await UnsubscribeOnServerAsync([subject]);
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
    /// As <see cref="DeliverAsync(FarmMessage, CancellationToken)"/>: a subject's streams get one
    /// typed message (shared: it is immutable), the last value is changed in place, and a
    /// <see cref="FarmMessage"/> is made only for <see cref="Messages"/>.
    /// </summary>
    private async ValueTask DeliverAsync(RttpMessage m, string server, Continuity continuity, CancellationToken cancel, FarmMessage? labelled = null)
    {
        if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status)
        {
            DeliveryQueue<SubjectMessage>[]? streams = null;
            bool toChannel;
            lock (_lock)
            {
                if (!_subjects.Contains(m.Subject))
                {
                    return; // unsubscribed while this was on its way
                }

                if (!_records.TryGetValue(m.Subject, out var state))
                {
                    _records[m.Subject] = state = new RecordState(m.Subject);
                }

                state.Apply(m, server);
                streams = _streams.GetValueOrDefault(m.Subject);

                toChannel = _channelSubjects.Contains(m.Subject);
            }

            if (streams is not null && SubjectMessage.From(m, server, continuity) is { } message)
            {
                foreach (var stream in streams)
                {
                    if (!stream.TryWrite(message))
                    {
                        await stream.WriteAsync(message, cancel); // OverflowPolicy.Wait: the application sets the pace
                    }
                }
            }

            if (!toChannel)
            {
                return;
            }
        }

        var fm = labelled ?? new FarmMessage(m, server, continuity);
        if (!_messages.TryWrite(fm))
        {
            await _messages.WriteAsync(fm, cancel);
        }
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
