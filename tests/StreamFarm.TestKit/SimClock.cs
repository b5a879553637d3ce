using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.TestKit;

/// <summary>
/// One simulated process's view of the farm's shared <see cref="FakeTimeProvider"/>: the same clock
/// (timestamps and wall time keep running for everyone), but its timers can be held. While the
/// process is <see cref="Pause">paused</see>, a timer that comes due is remembered and fires once
/// at <see cref="Resume"/>, late, as timers of a SIGSTOPped process do (a periodic timer that came
/// due several times fires once). After <see cref="Stop"/> (the process is gone) no timer fires
/// again. Everything the server code awaits on time (<c>Task.Delay(.., time)</c>, timeouts) goes
/// through <see cref="CreateTimer"/>, so it is held as well.
/// </summary>
public sealed class SimClock : TimeProvider
{
    private readonly SimTime _time;
    private readonly Lock _lock = new();
    private readonly List<SimTimer> _deferred = [];
    private bool _paused;
    private bool _stopped;

    public SimClock(SimTime time, string owner)
    {
        _time = time;
        Owner = owner;
    }

    /// <summary>The process (server id or client name) this clock belongs to.</summary>
    public string Owner { get; }

    public bool IsPaused
    {
        get
        {
            lock (_lock)
            {
                return _paused;
            }
        }
    }

    public override DateTimeOffset GetUtcNow() => _time.GetUtcNow();

    public override long GetTimestamp() => _time.GetTimestamp();

    public override long TimestampFrequency => _time.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new SimTimer(this, callback, state, dueTime, period);

    public void Pause()
    {
        lock (_lock)
        {
            _paused = true;
        }
    }

    /// <summary>Lets timers fire again; those that came due meanwhile fire now, on the caller's thread.</summary>
    public void Resume()
    {
        List<SimTimer> due;
        lock (_lock)
        {
            _paused = false;
            due = [.. _deferred];
            _deferred.Clear();
        }

        foreach (var t in due)
        {
            t.FireDeferred();
        }
    }

    /// <summary>The process is gone: no timer of it fires again.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _stopped = true;
            _deferred.Clear();
        }
    }

    private sealed class SimTimer : ITimer
    {
        private readonly SimClock _clock;
        private readonly TimerCallback _callback;
        private readonly object? _state;
        private readonly ITimer _inner;
        private bool _disposed;
        private bool _pending;

        public SimTimer(SimClock clock, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _clock = clock;
            _callback = callback;
            _state = state;

            // A zero due time fires inside CreateTimer (FakeTimeProvider runs due timers at once):
            // OnFire must not need _inner.
            _inner = clock._time.CreateTimer(static s => ((SimTimer)s!).OnFire(), this, dueTime, period);
        }

        public bool Change(TimeSpan dueTime, TimeSpan period) => _inner.Change(dueTime, period);

        public void Dispose()
        {
            lock (_clock._lock)
            {
                _disposed = true;
            }

            _inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }

        public void FireDeferred()
        {
            lock (_clock._lock)
            {
                _pending = false;
                if (_disposed || _clock._stopped)
                {
                    return;
                }
            }

            _callback(_state);
        }

        private void OnFire()
        {
            lock (_clock._lock)
            {
                if (_disposed || _clock._stopped)
                {
                    return;
                }

                if (_clock._paused)
                {
                    if (!_pending)
                    {
                        _pending = true;
                        _clock._deferred.Add(this);
                    }

                    return;
                }
            }

            _callback(_state);
        }
    }
}
