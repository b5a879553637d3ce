using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// Polls every member's view of the farm on its own loop, every <c>interval</c> (a slow answer delays
/// only that member's next poll), keeps each member's latest view, waits for conditions over them,
/// and logs every verdict a member shows: each time an observer first shows a member dead (or
/// suspect) after showing it otherwise. Times are from the poller's clock, started with the scenario;
/// an observation is timed when its answer arrives.
/// </summary>
internal sealed class MembershipPoller : IAsyncDisposable
{
    private readonly TimeSpan _interval;
    private readonly TimeSpan _timeout;
    private readonly long _epoch = Stopwatch.GetTimestamp();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly Lock _lock = new();
    private readonly HashSet<string> _ignored = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, string>> _last = new(StringComparer.Ordinal);
    private readonly List<Condition> _conditions = [];
    private volatile bool _paused;

    public MembershipPoller(TimeSpan interval, TimeSpan timeout)
    {
        _interval = interval;
        _timeout = timeout;
    }

    /// <summary>Time since the poller was created (the scenario's clock).</summary>
    public TimeSpan Now => Stopwatch.GetElapsedTime(_epoch);

    /// <summary>A <see cref="Stopwatch.GetTimestamp"/> on the poller's clock.</summary>
    public TimeSpan At(long timestamp) => Stopwatch.GetElapsedTime(_epoch, timestamp);

    /// <summary>Every change to dead or suspect shown by any member, in order.</summary>
    public List<Verdict> Verdicts { get; } = [];

    /// <summary>When each member first answered a poll.</summary>
    public Dictionary<string, TimeSpan> FirstAnswer { get; } = new(StringComparer.Ordinal);

    public long Answers { get; private set; }

    public long Failures { get; private set; }

    /// <summary>Polls that got no answer, by member, with the time (for the report).</summary>
    public List<(TimeSpan At, string Member)> FailureLog { get; } = [];

    /// <summary>Starts polling a member (from now until it is ignored or the poller is disposed).</summary>
    public void Add(MembershipMember member) => _loops.Add(Task.Run(() => LoopAsync(member)));

    /// <summary>Stops or resumes polling altogether (quiet while traffic and CPU are measured at rest).</summary>
    public void Pause(bool paused) => _paused = paused;

    /// <summary>Stops polling one member (it was killed).</summary>
    public void Ignore(string id)
    {
        lock (_lock)
        {
            _ignored.Add(id);
        }
    }

    /// <summary>
    /// Registers a condition before the action that should make it true: it holds when every observer's
    /// latest view satisfies <paramref name="predicate"/>; it is timed at the latest of the observers'
    /// first satisfying answers (each observer's answers must satisfy it from then on).
    /// </summary>
    public Condition Expect(IEnumerable<string> observers, Func<IReadOnlyDictionary<string, MemberSeen>, bool> predicate)
    {
        var c = new Condition([.. observers], predicate);
        lock (_lock)
        {
            _conditions.Add(c);
        }

        return c;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_loops);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        _stop.Dispose();
    }

    private async Task LoopAsync(MembershipMember member)
    {
        var cancel = _stop.Token;
        while (!cancel.IsCancellationRequested)
        {
            var started = Now;
            bool ignored;
            lock (_lock)
            {
                ignored = _ignored.Contains(member.Id);
            }

            if (ignored)
            {
                return;
            }

            if (!_paused)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                timeout.CancelAfter(_timeout);
                IReadOnlyDictionary<string, MemberSeen>? view;
                try
                {
                    view = await member.PollAsync(timeout.Token);
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    view = null;
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Record(member.Id, view, Now);
            }

            var wait = started + _interval - Now;
            try
            {
                await Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, cancel);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Record(string observer, IReadOnlyDictionary<string, MemberSeen>? view, TimeSpan at)
    {
        lock (_lock)
        {
            if (_ignored.Contains(observer))
            {
                return;
            }

            if (view is null)
            {
                if (!FirstAnswer.ContainsKey(observer))
                {
                    return; // still starting
                }

                Failures++;
                FailureLog.Add((at, observer));
                return;
            }

            Answers++;
            FirstAnswer.TryAdd(observer, at);
            if (!_last.TryGetValue(observer, out var last))
            {
                _last[observer] = last = new Dictionary<string, string>(StringComparer.Ordinal);
            }

            foreach (var (id, seen) in view)
            {
                var before = last.GetValueOrDefault(id);
                if (seen.Liveness is "dead" or "suspect" && before != seen.Liveness)
                {
                    Verdicts.Add(new Verdict(at, observer, id, seen.Liveness));
                }

                last[id] = seen.Liveness;
            }

            foreach (var c in _conditions.ToList())
            {
                if (c.Observe(observer, view, at))
                {
                    _conditions.Remove(c);
                }
            }
        }
    }

    /// <summary>A condition over every observer's latest view (see <see cref="Expect"/>).</summary>
    internal sealed class Condition(HashSet<string> observers, Func<IReadOnlyDictionary<string, MemberSeen>, bool> predicate)
    {
        private readonly Dictionary<string, TimeSpan> _since = new(StringComparer.Ordinal);
        private readonly TaskCompletionSource<TimeSpan> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Each observer's last answer that did not satisfy the condition.</summary>
        public Dictionary<string, IReadOnlyDictionary<string, MemberSeen>> LastUnsatisfied { get; } = new(StringComparer.Ordinal);

        /// <summary>When the condition held, each observer's first satisfying answer (set once it holds for all).</summary>
        public IReadOnlyDictionary<string, TimeSpan> Times { get; private set; } = new Dictionary<string, TimeSpan>();

        /// <summary>Waits until the condition holds; its time on the poller's clock, or null after <paramref name="timeout"/>.</summary>
        public async Task<TimeSpan?> WaitAsync(TimeSpan timeout, CancellationToken cancel)
        {
            try
            {
                return await _done.Task.WaitAsync(timeout, cancel);
            }
            catch (TimeoutException)
            {
                return null;
            }
        }

        /// <summary>True when this observation completed the condition.</summary>
        public bool Observe(string observer, IReadOnlyDictionary<string, MemberSeen> view, TimeSpan at)
        {
            if (!observers.Contains(observer))
            {
                return false;
            }

            if (predicate(view))
            {
                _since.TryAdd(observer, at);
            }
            else
            {
                _since.Remove(observer);
                LastUnsatisfied[observer] = view;
            }

            if (_since.Count < observers.Count)
            {
                return false;
            }

            Times = new Dictionary<string, TimeSpan>(_since, StringComparer.Ordinal);
            _done.TrySetResult(_since.Values.Max());
            return true;
        }
    }
}

/// <summary>One member shown dead or suspect by one observer, at a time on the scenario's clock.</summary>
internal readonly record struct Verdict(TimeSpan At, string Observer, string Member, string Liveness);
