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
    private readonly Dictionary<string, List<DeliveryQueue<FarmMessage>>> _streams = new(StringComparer.Ordinal);
    private readonly HashSet<string> _channelSubjects = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SubjectRecord> _records = new(StringComparer.Ordinal);
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
        var queue = new DeliveryQueue<FarmMessage>(_options.MessageBuffer, _options.Overflow, Conflation.Instance, RaiseOverflowed);
        bool first;
        lock (_lock)
        {
            if (!_streams.TryGetValue(subject, out var list))
            {
                _streams[subject] = list = [];
            }

            list.Add(queue);
            first = _subjects.Add(subject);
            if (!first && _records.TryGetValue(subject, out var current))
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
            await foreach (var fm in queue.Reader.ReadAllAsync(cancel))
            {
                if (SubjectMessage.From(fm) is { } message)
                {
                    yield return message;
                }
            }
        }
        finally
        {
            bool last;
            lock (_lock)
            {
                var list = _streams[subject];
                list.Remove(queue);
                if (list.Count == 0)
                {
                    _streams.Remove(subject);
                }

                last = list.Count == 0 && !_channelSubjects.Contains(subject);
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
            return _records.TryGetValue(subject, out record);
        }
    }

    /// <summary>Hands a message to whoever follows it: its subject's streams and, for subjects of the channel API and messages about no subject, <see cref="Messages"/>.</summary>
    private async ValueTask DeliverAsync(FarmMessage message, CancellationToken cancel)
    {
        var m = message.Message;
        if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status)
        {
            DeliveryQueue<FarmMessage>[]? streams = null;
            bool toChannel;
            lock (_lock)
            {
                if (!_subjects.Contains(m.Subject))
                {
                    return; // unsubscribed while this was on its way
                }

                if (SubjectRecord.Apply(_records.GetValueOrDefault(m.Subject), message) is { } record)
                {
                    _records[m.Subject] = record;
                }

                if (_streams.TryGetValue(m.Subject, out var list))
                {
                    streams = [.. list];
                }

                toChannel = _channelSubjects.Contains(m.Subject);
            }

            if (streams is not null)
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

        if (!_messages.TryWrite(message))
        {
            await _messages.WriteAsync(message, cancel);
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
