namespace StreamFarm.Server.Connections;

/// <summary>
/// Wakes the writers of the queues a read loop enqueued to once per buffer of input it applies,
/// instead of once per message. Without it every publication woke every subscriber's writer: at
/// 1:10,000 that is 10,000 thread-pool work items per message, each writer found one message, wrote
/// and flushed it alone, and the wake-ups were most of the server's work (docs/benchmarks.md,
/// "Why the slow mode"). nats-server does the same for the same reason (a read loop signals the
/// connections it wrote to when it is done with its buffer). A batch is bounded: after
/// <see cref="MaxDeferred"/> deliveries it wakes what it holds, so a large buffer to many
/// subscribers does not hold their first messages back for the whole buffer.
/// <para>
/// One batch per thread, active only inside <see cref="Begin"/> ... <see cref="End"/> of a read loop
/// applying its buffer (synchronous code: nothing awaits in between); everywhere else (timers,
/// hand-overs released by housekeeping) a queue wakes its writer at once.
/// </para>
/// </summary>
internal sealed class WakeBatch
{
    /// <summary>Deliveries a batch holds back before it wakes their writers anyway.</summary>
    public const int MaxDeferred = 16_384;

    [ThreadStatic]
    private static WakeBatch? t_current;

    [ThreadStatic]
    private static WakeBatch? t_cached;

    private readonly List<OutboundQueue> _queues = [];
    private int _deferred;

    /// <summary>The batch of this thread's read loop, while it applies a buffer; otherwise null.</summary>
    public static WakeBatch? Current => t_current;

    /// <summary>Starts deferring wake-ups on this thread (the read loop, before it applies a buffer).</summary>
    public static WakeBatch Begin()
    {
        var batch = t_cached ??= new WakeBatch();
        t_current = batch;
        return batch;
    }

    /// <summary>Wakes every writer held back and stops deferring (the read loop, after its buffer, before it awaits).</summary>
    public void End()
    {
        t_current = null;
        Flush();
    }

    /// <summary>A message was queued on <paramref name="queue"/>: its writer is woken when the batch ends (or fills).</summary>
    public void Add(OutboundQueue queue)
    {
        if (queue.MarkWakeDeferred())
        {
            _queues.Add(queue);
        }

        if (++_deferred >= MaxDeferred)
        {
            Flush();
        }
    }

    private void Flush()
    {
        _deferred = 0;
        var queues = _queues;
        for (var i = 0; i < queues.Count; i++)
        {
            queues[i].WakeDeferred();
        }

        queues.Clear();
        if (queues.Capacity > 4096)
        {
            queues.Capacity = 4096; // a fan-out to 10,000 once does not keep a 10,000-slot list on every thread
        }
    }
}
