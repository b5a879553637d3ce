namespace StreamFarm.Bench;

/// <summary>
/// The publisher's flow control: it may be at most <see cref="Size"/> messages ahead of the slowest
/// subscriber, and once it has used up its window it waits until there is room for a whole batch
/// again. Subscribers report progress after each read; only the one that lets the publisher go on
/// wakes it. With the window far below the servers' slow-consumer limits (StreamFarm conflates over
/// 1 MiB queued per connection), the run measures sustainable throughput, not buffering.
/// </summary>
public sealed class FlowWindow
{
    private IReadOnlyList<LoadClient> _subscribers = [];
    private TaskCompletionSource? _waiter;
    private long _threshold = long.MaxValue;
    private string? _abort;

    public FlowWindow(int size, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(batch, size);
        Size = size;
        Batch = batch;
    }

    /// <summary>Most messages the publisher may be ahead of the slowest subscriber.</summary>
    public int Size { get; }

    /// <summary>Messages the publisher writes (and flushes) at a time.</summary>
    public int Batch { get; }

    /// <summary>How many waits the publisher went through (a sign the subscribers set the pace).</summary>
    public long Waits { get; private set; }

    /// <summary>
    /// The publisher's loop: writes <paramref name="batch"/> whenever the window has room, until
    /// <paramref name="stop"/>; <paramref name="published"/> reads and <paramref name="advance"/>
    /// counts the messages written.
    /// </summary>
    public async Task PublishAsync(LoadClient publisher, byte[] batch, Func<long> published, Action advance, TimeSpan stallTimeout, CancellationToken stop, CancellationToken cancel)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await WaitForRoomAsync(published(), stallTimeout, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }

            // Not cancelled by stop: a half-written batch would leave the count unknown.
            await publisher.WriteAsync(batch, cancel);
            advance();
        }
    }

    public void Attach(IReadOnlyList<LoadClient> subscribers)
    {
        _subscribers = subscribers;
        foreach (var s in subscribers)
        {
            s.Attach(this);
        }
    }

    /// <summary>The progress of the slowest subscriber (publications it has seen).</summary>
    public long Slowest()
    {
        var min = long.MaxValue;
        foreach (var s in _subscribers)
        {
            min = Math.Min(min, s.Progress);
        }

        return min == long.MaxValue ? 0 : min;
    }

    /// <summary>
    /// Waits until the publisher, having published <paramref name="published"/> messages, may write a
    /// batch. Throws <see cref="BenchException"/> when a subscriber failed or nothing moved for
    /// <paramref name="stallTimeout"/>.
    /// </summary>
    public async ValueTask WaitForRoomAsync(long published, TimeSpan stallTimeout, CancellationToken cancel)
    {
        while (true)
        {
            ThrowIfAborted();
            if (Size - (published - Slowest()) >= Batch)
            {
                return;
            }

            Waits++;
            var threshold = published - Size + Batch;
            Volatile.Write(ref _threshold, threshold);
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _waiter, waiter); // full fence: the check below sees every progress made before a subscriber missed the waiter
            if (Slowest() >= threshold || Volatile.Read(ref _abort) is not null)
            {
                Interlocked.CompareExchange(ref _waiter, null, waiter);
                continue;
            }

            try
            {
                await waiter.Task.WaitAsync(stallTimeout, cancel);
            }
            catch (TimeoutException)
            {
                Interlocked.CompareExchange(ref _waiter, null, waiter);
                throw new BenchException($"stalled: no subscriber progress for {stallTimeout.TotalSeconds:0.#} s (published {published}, slowest subscriber at {Slowest()})");
            }
            catch (OperationCanceledException)
            {
                Interlocked.CompareExchange(ref _waiter, null, waiter);
                throw;
            }
        }
    }

    /// <summary>A subscriber's progress after a read (called on its read loop, after an interlocked update).</summary>
    internal void OnProgress(long progress)
    {
        if (Volatile.Read(ref _waiter) is not null && progress >= Volatile.Read(ref _threshold))
        {
            Interlocked.Exchange(ref _waiter, null)?.TrySetResult();
        }
    }

    /// <summary>Stops the publisher: a connection failed.</summary>
    internal void Abort(string reason)
    {
        Interlocked.CompareExchange(ref _abort, reason, null);
        Interlocked.Exchange(ref _waiter, null)?.TrySetResult();
    }

    private void ThrowIfAborted()
    {
        var reason = Volatile.Read(ref _abort);
        if (reason is not null)
        {
            throw new BenchException(reason);
        }
    }
}
