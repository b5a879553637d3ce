using System.Diagnostics;

namespace StreamFarm.Membership;

/// <summary>
/// The system clock, with timers whose callbacks run on one thread of their own instead of the
/// thread pool. A <see cref="System.Threading.Timer"/> callback costs three thread wake-ups (the
/// runtime's timer thread wakes a pool worker, which wakes a second one in case more work follows);
/// here it costs one. For the periodic work of a server at rest (membership's probe and its timeouts,
/// housekeeping, the status publications) that is most of what an idle server does.
/// <para>
/// Callbacks must be short and must not block: they run one after another, so a slow one delays
/// every other timer of the process. Everything scheduled here only takes a lock, updates state and
/// queues work (datagrams are sent without blocking; streams, deliveries and awaited continuations go
/// through queues and the thread pool). Exceptions thrown by a callback end the process, as they do
/// from a <see cref="System.Threading.Timer"/>.
/// </para>
/// </summary>
public sealed class TickThread : TimeProvider
{
    private static readonly Lazy<TickThread> LazyShared = new(() => new TickThread("StreamFarm Ticks"));

    // Due timers, earliest first; each timer has at most one entry (the generation tells entries of
    // successive schedules apart).
    private readonly PriorityQueue<(Tick Timer, long Generation), long> _due = new();
    private readonly object _lock = new(); // a monitor, not a Lock: the thread waits on it (Monitor.Wait)
    private long _wakeAt = long.MaxValue;
    private long _slowCallbacks;

    // A callback longer than this holds up every other timer of the process (100 ms, in timestamp units).
    private static readonly long SlowAfter = Stopwatch.Frequency / 10;

    private TickThread(string name)
    {
        new Thread(Run) { IsBackground = true, Name = name }.Start();
    }

    /// <summary>
    /// Callbacks that ran longer than 100 ms. Each held up every other timer of the process,
    /// including the membership's probes and the housekeeping that tells whether the process was
    /// paused: anything that can take long (walking a large subject table, waiting for a lock that
    /// bulk work holds) belongs on the thread pool, not here.
    /// </summary>
    public long SlowCallbacks => Interlocked.Read(ref _slowCallbacks);

    /// <summary>One thread for the whole process, started on first use.</summary>
    public static TickThread Shared => LazyShared.Value;

    /// <summary><see cref="Shared"/> when <paramref name="time"/> is the system clock; otherwise <paramref name="time"/> itself (a test's fake clock keeps its own timers).</summary>
    public static TimeProvider For(TimeProvider time) => ReferenceEquals(time, System) ? Shared : time;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new Tick(this, callback, state);
        Change(timer, dueTime, period);
        return timer;
    }

    private bool Change(Tick timer, TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(dueTime, TimeSpan.Zero);
        }

        lock (_lock)
        {
            if (timer.Disposed)
            {
                return false;
            }

            Unschedule(timer);
            if (dueTime == Timeout.InfiniteTimeSpan)
            {
                return true;
            }

            timer.Period = period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? 0 : Math.Max(1, (long)(period.TotalSeconds * TimestampFrequency));
            Enqueue(timer, GetTimestamp() + (long)(dueTime.TotalSeconds * TimestampFrequency));
            return true;
        }
    }

    private void Dispose(Tick timer)
    {
        lock (_lock)
        {
            timer.Disposed = true;
            Unschedule(timer);
        }
    }

    // Under _lock.
    private void Enqueue(Tick timer, long at)
    {
        timer.Generation++;
        timer.Queued = true;
        _due.Enqueue((timer, timer.Generation), at);
        if (at < _wakeAt)
        {
            _wakeAt = at;
            Monitor.PulseAll(_lock); // the thread sleeps until a later time: wake it to sleep less
        }
    }

    // Under _lock. Removing the entry (a linear search of a few dozen) rather than leaving it to be
    // skipped: a cancelled timer must not wake the thread at its old time.
    private void Unschedule(Tick timer)
    {
        if (timer.Queued)
        {
            _due.Remove((timer, timer.Generation), out _, out _);
            timer.Queued = false;
        }
    }

    private void Run()
    {
        while (true)
        {
            Tick? fire = null;
            lock (_lock)
            {
                while (fire is null)
                {
                    var now = GetTimestamp();
                    if (_due.TryPeek(out var head, out var at) && at <= now)
                    {
                        _due.Dequeue();
                        fire = head.Timer;
                        fire.Queued = false;
                        if (fire.Period > 0)
                        {
                            Enqueue(fire, now + fire.Period);
                        }

                        break;
                    }

                    _wakeAt = _due.Count > 0 ? at : long.MaxValue;
                    var wait = _due.Count > 0 ? (int)Math.Min(int.MaxValue, Math.Ceiling((at - now) * 1000.0 / TimestampFrequency)) : Timeout.Infinite;
                    Monitor.Wait(_lock, wait);
                }

                _wakeAt = long.MinValue; // running a callback: a timer scheduled meanwhile is seen when it returns
            }

            var started = GetTimestamp();
            fire.Invoke();
            if (GetTimestamp() - started > SlowAfter)
            {
                Interlocked.Increment(ref _slowCallbacks);
            }
        }
    }

    /// <summary>A timer of this thread; its fields are guarded by the thread's lock.</summary>
    private sealed class Tick(TickThread owner, TimerCallback callback, object? state) : ITimer
    {
        public long Generation { get; set; }

        public bool Queued { get; set; }

        public long Period { get; set; } // in timestamp units; 0: once

        public bool Disposed { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period) => owner.Change(this, dueTime, period);

        public void Invoke() => callback(state);

        public void Dispose() => owner.Dispose(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
