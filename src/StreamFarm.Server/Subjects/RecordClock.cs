namespace StreamFarm.Server.Subjects;

/// <summary>
/// The clocks a server's records share (docs/architecture.md, "Correctness under faults"):
/// <list type="bullet">
/// <item><b>Stamps</b>: a hybrid logical clock. Every publication gets a stamp from the server its
/// client published to; every field of a record remembers the stamp that wrote it, and a write with
/// an older stamp never replaces a newer one (last writer wins, per field). A stamp is
/// <c>ms &lt;&lt; 22 | counter &lt;&lt; 10 | server bits</c>: wall-clock milliseconds, a counter for
/// stamps within one millisecond (and for a clock that went back), and ten bits of the server id so
/// that two servers never tie. Stamps seen from other servers push the clock forward (<see cref="Observe"/>),
/// so one publisher's publications get increasing stamps even when it moves to another server.</item>
/// <item><b>Epochs</b>: strictly increasing per server and, across servers, never lower than an epoch
/// they take a copy from (<see cref="NextEpoch(ulong)"/>): a history that replaces another always has a
/// higher epoch (a Lamport clock over owner changes).</item>
/// <item><b>The ownership term</b>: a server whose process was paused long enough for the farm to
/// give its subjects to others (or that learns the farm declared it dead) starts a new term; a record
/// it owns moves to a new epoch before it sequences anything in the new term, so nothing is ever
/// again published in a history the farm may have replaced.</item>
/// </list>
/// </summary>
internal sealed class RecordClock
{
    private const int ServerBitsWidth = 10;
    private const int CounterShift = ServerBitsWidth;
    private const int MillisShift = 22;
    private const ulong LogicalMask = ~((1UL << ServerBitsWidth) - 1);

    private readonly TimeProvider _time;
    private readonly ulong _serverBits;
    private long _lastStamp;   // logical part (ms and counter) of the newest stamp made or seen
    private long _lastEpoch;
    private long _term = 1;
    private long _beat;        // timestamp of the last sign of life (housekeeping tick)
    private long _renounced;
    private long _pauses;
    private long _stalls;
    private long _pausedTicks;
    private long _pausedGcTicks;
    private long _gcAtBeat; // the process's total GC pause at the last beat

    public RecordClock(TimeProvider time, int serverBits = 0, TimeSpan? pauseLimit = null)
    {
        _time = time;
        _serverBits = (ulong)(serverBits & ((1 << ServerBitsWidth) - 1));
        PauseLimit = pauseLimit ?? TimeSpan.FromSeconds(2);
        _beat = time.GetTimestamp();
    }

    /// <summary>A clock for records outside a server's table (tests, tools).</summary>
    public static RecordClock Detached { get; } = new(TimeProvider.System, pauseLimit: TimeSpan.MaxValue);

    /// <summary>
    /// How long this process may go without a sign of life before its ownership is in doubt: shorter
    /// than the fastest verdict the farm can reach about a silent member. Longer silences start a new term.
    /// </summary>
    public TimeSpan PauseLimit { get; set; }

    /// <summary>Times this server started a new term (a pause, or the farm declared it dead).</summary>
    public long Renounced => Interlocked.Read(ref _renounced);

    /// <summary>Pauses of this process longer than <see cref="PauseLimit"/> seen so far.</summary>
    public long Pauses => Interlocked.Read(ref _pauses);

    /// <summary>
    /// A shorter silence after which what clients sent meanwhile is not trusted: a client gives up
    /// on a server that has not answered for about 2-3 s (three unanswered pings a second apart) and
    /// may publish newer values elsewhere, so a server silent longer than this closes its clients
    /// (<c>BYE PAUSED</c>) rather than apply their waiting lines late. Not a new ownership term.
    /// </summary>
    public static readonly TimeSpan StaleInputLimit = TimeSpan.FromSeconds(1.5);

    /// <summary>Silences longer than <see cref="StaleInputLimit"/> seen so far (every pause is one).</summary>
    public long Stalls => Interlocked.Read(ref _stalls);

    /// <summary>Counts a silence longer than <see cref="StaleInputLimit"/> now, if there was one (as the housekeeping tick would).</summary>
    public void CheckStall()
    {
        if (_time.GetElapsedTime(Volatile.Read(ref _beat)) > StaleInputLimit)
        {
            Beat();
        }
    }

    /// <summary>How long the last such pause lasted.</summary>
    public TimeSpan LastPause => TimeSpan.FromTicks(Interlocked.Read(ref _pausedTicks));

    /// <summary>How much of <see cref="LastPause"/> the garbage collector held every thread (the rest: the process was stopped, starved of CPU, or the tick was held up).</summary>
    public TimeSpan LastPauseInGc => TimeSpan.FromTicks(Interlocked.Read(ref _pausedGcTicks));

    /// <summary>A new stamp, greater than every stamp made or seen here.</summary>
    public ulong NextStamp()
    {
        var physical = (long)((ulong)_time.GetUtcNow().ToUnixTimeMilliseconds() << MillisShift);
        while (true)
        {
            var last = Volatile.Read(ref _lastStamp);
            var next = Math.Max(physical, last + (1L << CounterShift));
            if (Interlocked.CompareExchange(ref _lastStamp, next, last) == last)
            {
                return (ulong)next | _serverBits;
            }
        }
    }

    /// <summary>The clock's reading, without taking a stamp (sent with route acknowledgements, so peers' clocks keep up).</summary>
    public ulong Peek()
    {
        var physical = (long)((ulong)_time.GetUtcNow().ToUnixTimeMilliseconds() << MillisShift);
        return (ulong)Math.Max(physical, Volatile.Read(ref _lastStamp)) | _serverBits;
    }

    /// <summary>Now, on this clock's time provider (a timestamp).</summary>
    public long Timestamp() => _time.GetTimestamp();

    /// <summary>Time since a <see cref="Timestamp"/>.</summary>
    public TimeSpan Elapsed(long since) => _time.GetElapsedTime(since);

    // Records waiting for a hand-over: the housekeeping tick releases those whose wait ran out.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<SubjectRecord, byte> _holding = new();

    /// <summary>A record started waiting for a hand-over.</summary>
    public void Holding(SubjectRecord record) => _holding[record] = 0;

    /// <summary>Releases every record that waits for a hand-over or a copy: every peer has confirmed the owners (the routes' owners barrier), so none is on its way.</summary>
    public void ReleaseAllHolds()
    {
        foreach (var (record, _) in _holding) // in place: Keys would lock and copy the whole set
        {
            record.ReleaseNow();
            _holding.TryRemove(record, out _);
        }
    }

    /// <summary>Releases the records whose wait for a hand-over ran out (from the housekeeping tick).</summary>
    public void ReleaseDueHolds()
    {
        foreach (var (record, _) in _holding)
        {
            if (record.ReleaseIfDue())
            {
                _holding.TryRemove(record, out _);
            }
        }
    }

    /// <summary>A stamp from another server: later stamps made here are greater.</summary>
    public void Observe(ulong stamp)
    {
        var logical = (long)(stamp & LogicalMask);
        var last = Volatile.Read(ref _lastStamp);
        while (logical > last)
        {
            var seen = Interlocked.CompareExchange(ref _lastStamp, logical, last);
            if (seen == last)
            {
                return;
            }

            last = seen;
        }
    }

    /// <summary>The wall-clock milliseconds of a stamp.</summary>
    public static long Millis(ulong stamp) => (long)(stamp >> MillisShift);

    /// <summary>A new epoch: the creation time in ms × 1,024 plus ten bits of the server, strictly increasing.</summary>
    public ulong NextEpoch() => NextEpoch(0);

    /// <summary>A new epoch, higher than <paramref name="atLeast"/> - 1 (an epoch this server takes a copy from).</summary>
    public ulong NextEpoch(ulong atLeast)
    {
        var now = (_time.GetUtcNow().ToUnixTimeMilliseconds() * 1024) + (long)_serverBits;
        while (true)
        {
            var last = Interlocked.Read(ref _lastEpoch);
            var next = Math.Max(Math.Max(now, last + 1), (long)Math.Min(atLeast, long.MaxValue));
            if (Interlocked.CompareExchange(ref _lastEpoch, next, last) == last)
            {
                return (ulong)next;
            }
        }
    }

    /// <summary>
    /// The current ownership term. Checks first that this process was not silent longer than
    /// <see cref="PauseLimit"/> (a SIGSTOP, a frozen VM): if it was, a new term starts before anything
    /// is sequenced.
    /// </summary>
    public long Term
    {
        get
        {
            var beat = Volatile.Read(ref _beat);
            if (_time.GetElapsedTime(beat) > PauseLimit)
            {
                Beat();
            }

            return Volatile.Read(ref _term);
        }
    }

    /// <summary>A sign of life (the housekeeping tick); starts a new term if the previous one was too long ago.</summary>
    public void Beat()
    {
        var now = _time.GetTimestamp();
        var beat = Volatile.Read(ref _beat);
        var silent = _time.GetElapsedTime(beat, now);
        if (Interlocked.CompareExchange(ref _beat, now, beat) != beat)
        {
            return;
        }

        var gc = GC.GetTotalPauseDuration().Ticks;
        var gcDuring = gc - Interlocked.Exchange(ref _gcAtBeat, gc);
        if (silent > StaleInputLimit)
        {
            Interlocked.Exchange(ref _pausedGcTicks, gcDuring);
            Interlocked.Exchange(ref _pausedTicks, silent.Ticks);
            Interlocked.Increment(ref _stalls);
        }

        if (silent > PauseLimit)
        {
            Interlocked.Exchange(ref _pausedTicks, silent.Ticks);
            Interlocked.Increment(ref _pauses);
            Renounce();
        }
    }

    /// <summary>Starts a new term: every record this server owns moves to a new epoch before it sequences again.</summary>
    public void Renounce()
    {
        Interlocked.Increment(ref _term);
        Interlocked.Increment(ref _renounced);
    }
}
