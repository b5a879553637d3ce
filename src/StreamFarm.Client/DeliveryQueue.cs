using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;
using System.Threading.Tasks.Sources;

namespace StreamFarm.Client;

/// <summary>How a <see cref="DeliveryQueue{T}"/> sees its items: their subject, and how two of them merge.</summary>
internal interface IConflation<T>
{
    /// <summary>The subject an item is about (null: none), and whether it is data (image or update) that may be merged or dropped.</summary>
    (string? Subject, bool Data) Classify(T item);

    /// <summary><paramref name="newer"/> folded into <paramref name="older"/> (same subject, both data); null when they cannot merge.</summary>
    T? Merge(T older, T newer);

    /// <summary>An item the queue let go without handing it to the reader (merged away or dropped): a pooled one goes back to its pool.</summary>
    void Discard(T item)
    {
    }
}

/// <summary>
/// The bounded buffer between a reading loop and the application, with an explicit overflow policy
/// (<see cref="OverflowPolicy"/>). Writing never blocks except under <see cref="OverflowPolicy.Wait"/>;
/// the application reads it as a <see cref="ChannelReader{T}"/>. Items about one subject keep their
/// order: an update merges only into the last waiting message of its subject, and only when that is data.
/// </summary>
internal sealed class DeliveryQueue<T>
    where T : class
{
    private readonly Lock _lock = new();
    private readonly LinkedList<T> _items = new();

    // Nodes of items taken or dropped, reused for the next items: a queue in the steady state
    // allocates nothing per item (at most Capacity nodes are kept).
    private readonly Stack<LinkedListNode<T>> _freeNodes = new();
    private readonly Dictionary<string, LinkedListNode<T>> _lastData = new(StringComparer.Ordinal);
    private readonly IConflation<T> _conflation;
    private readonly Action<OverflowEventArgs>? _overflowed;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<bool>? _readable;

    // The reader's wait for an item: one reusable IValueTaskSource for the one reader a queue has
    // (so a wait allocates nothing); a second concurrent waiter gets the TaskCompletionSource.
    private readonly Waiter _waiter;
    private bool _waiterArmed;
    private TaskCompletionSource? _space;
    private Exception? _error;
    private bool _completed;
    private bool _overflowing;
    private bool _writerWaiting;
    private long _conflated;
    private long _dropped;
    private long _waits;

    public DeliveryQueue(int capacity, OverflowPolicy policy, IConflation<T> conflation, Action<OverflowEventArgs>? overflowed = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        Policy = policy;
        _conflation = conflation;
        _overflowed = overflowed;
        Reader = new QueueReader(this);
        _waiter = new Waiter(this);
    }

    public int Capacity { get; }

    public OverflowPolicy Policy { get; }

    public ChannelReader<T> Reader { get; }

    /// <summary>Messages merged into waiting ones.</summary>
    public long Conflated => Interlocked.Read(ref _conflated);

    /// <summary>Messages dropped.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Times the writer waited for the application (<see cref="OverflowPolicy.Wait"/>).</summary>
    public long Waits => Interlocked.Read(ref _waits);

    /// <summary>True while the writer waits for the application to make room.</summary>
    public bool IsWriterWaiting => Volatile.Read(ref _writerWaiting);

    /// <summary>Queues, conflates or drops as the policy says; false only when full under <see cref="OverflowPolicy.Wait"/> (or completed).</summary>
    public bool TryWrite(T item)
    {
        OverflowEventArgs? overflow = null;
        bool written;
        (TaskCompletionSource<bool>? Readable, bool Armed) wake = default;
        lock (_lock)
        {
            if (_completed)
            {
                return false;
            }

            written = WriteLocked(item, ref overflow);
            if (written)
            {
                wake = TakeReaderLocked();
            }
        }

        Wake(wake);
        return Done(overflow) && written;
    }

    /// <summary>
    /// Writes the items of <paramref name="items"/> from its head, in order, as <see cref="TryWrite"/>
    /// would one by one, under one take of the lock and with one wake-up of the reader; stops at
    /// the first that does not fit (full under <see cref="OverflowPolicy.Wait"/>), which stays at
    /// the head. The number written; -1 when the queue is completed (nothing is taken then).
    /// </summary>
    public int TryWriteMany(Queue<T> items)
    {
        OverflowEventArgs? overflow = null;
        var written = 0;
        (TaskCompletionSource<bool>? Readable, bool Armed) wake = default;
        lock (_lock)
        {
            if (_completed)
            {
                return -1;
            }

            while (items.TryPeek(out var item) && WriteLocked(item, ref overflow))
            {
                items.Dequeue();
                written++;
            }

            if (written > 0)
            {
                wake = TakeReaderLocked();
            }
        }

        Wake(wake);
        Done(overflow);
        return written;
    }

    /// <summary>Returns once there is room for one more item (at once if there is); false once completed. Under <see cref="OverflowPolicy.Wait"/>: the application sets the pace.</summary>
    public async ValueTask<bool> WaitForRoomAsync(CancellationToken cancel)
    {
        TaskCompletionSource space;
        OverflowEventArgs? overflow;
        lock (_lock)
        {
            if (_completed)
            {
                return false;
            }

            if (_items.Count < Capacity)
            {
                return true;
            }

            space = _space ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waits++;
            _writerWaiting = true;
            overflow = Overflowing();
        }

        Done(overflow);
        try
        {
            await space.Task.WaitAsync(cancel);
        }
        finally
        {
            Volatile.Write(ref _writerWaiting, false);
        }

        return true;
    }

    /// <summary>Queues, conflates or drops <paramref name="item"/>; false (and nothing done) when full under <see cref="OverflowPolicy.Wait"/>. Under the lock, not completed.</summary>
    private bool WriteLocked(T item, ref OverflowEventArgs? overflow)
    {
        var (subject, data) = _conflation.Classify(item);
        if (_items.Count >= Capacity)
        {
            switch (Policy)
            {
                case OverflowPolicy.Wait:
                    return false;
                case OverflowPolicy.Conflate when data && subject is not null && _lastData.TryGetValue(subject, out var waiting) && _conflation.Merge(waiting.Value, item) is { } merged:
                    var older = waiting.Value;
                    waiting.Value = merged;
                    if (!ReferenceEquals(older, merged))
                    {
                        _conflation.Discard(older);
                    }

                    if (!ReferenceEquals(item, merged))
                    {
                        _conflation.Discard(item);
                    }

                    _conflated++;
                    overflow ??= Overflowing();
                    return true;
                case OverflowPolicy.DropOldest:
                    for (var node = _items.First; node is not null; node = node.Next)
                    {
                        var (s, d) = _conflation.Classify(node.Value);
                        if (d)
                        {
                            _conflation.Discard(node.Value);
                            Remove(node, s);
                            _dropped++;
                            overflow ??= Overflowing();
                            break;
                        }
                    }

                    break;
                default:
                    overflow ??= Overflowing(); // a new subject, or a control message: kept beyond the size
                    break;
            }
        }

        LinkedListNode<T> added;
        if (_freeNodes.TryPop(out var reused))
        {
            reused.Value = item;
            _items.AddLast(reused);
            added = reused;
        }
        else
        {
            added = _items.AddLast(item);
        }

        if (subject is not null)
        {
            if (data)
            {
                _lastData[subject] = added;
            }
            else
            {
                _lastData.Remove(subject);
            }
        }

        return true;
    }

    /// <summary>The reader's waits, if it waits, taken to be completed outside the lock (<see cref="Wake"/>). Under the lock.</summary>
    private (TaskCompletionSource<bool>? Readable, bool Armed) TakeReaderLocked()
    {
        var wake = (_readable, _waiterArmed);
        _readable = null;
        _waiterArmed = false;
        return wake;
    }

    /// <summary>Wakes the reader (outside the lock: its continuation runs on the thread pool, never on the writer's loop).</summary>
    private void Wake((TaskCompletionSource<bool>? Readable, bool Armed) wake)
    {
        wake.Readable?.TrySetResult(true);
        if (wake.Armed)
        {
            _waiter.Complete(true, null);
        }
    }

    /// <summary>Writes, waiting for room under <see cref="OverflowPolicy.Wait"/>; false once completed.</summary>
    public async ValueTask<bool> WriteAsync(T item, CancellationToken cancel)
    {
        while (!TryWrite(item))
        {
            if (!await WaitForRoomAsync(cancel))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>No more items; readers see <paramref name="error"/> (if any) once the queue is empty.</summary>
    public void Complete(Exception? error = null)
    {
        TaskCompletionSource<bool>? wake;
        TaskCompletionSource? space;
        bool empty;
        bool armed;
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            _error = error;
            wake = _readable;
            _readable = null;
            armed = _waiterArmed;
            _waiterArmed = false;
            space = _space;
            _space = null;
            empty = _items.Count == 0;
        }

        wake?.TrySetResult(false);
        if (armed)
        {
            _waiter.Complete(false, error); // armed only while empty
        }

        space?.TrySetResult();
        if (empty)
        {
            Finish();
        }
    }

    private void Finish()
    {
        if (_error is null)
        {
            _completion.TrySetResult();
        }
        else
        {
            _completion.TrySetException(_error);
        }
    }

    private void Remove(LinkedListNode<T> node, string? subject)
    {
        if (subject is not null && _lastData.TryGetValue(subject, out var last) && last == node)
        {
            _lastData.Remove(subject);
        }

        _items.Remove(node);
        node.Value = null!; // not kept alive by the free list
        if (_freeNodes.Count < Capacity)
        {
            _freeNodes.Push(node);
        }
    }

    /// <summary>Marks an overflow episode; the event is raised once per episode (until the buffer drains to half). Under the lock.</summary>
    private OverflowEventArgs? Overflowing()
    {
        if (_overflowing)
        {
            return null;
        }

        _overflowing = true;
        return new OverflowEventArgs(Policy, Capacity, _conflated, _dropped, _waits);
    }

    private bool Done(OverflowEventArgs? overflow)
    {
        if (overflow is not null && _overflowed is { } raise)
        {
            // Never the application's code on the reading loop.
            ThreadPool.QueueUserWorkItem(static s => s.raise(s.overflow), (raise, overflow), preferLocal: false);
        }

        return true;
    }

    private bool TryRead([MaybeNullWhen(false)] out T item)
    {
        TaskCompletionSource? space = null;
        bool finished;
        lock (_lock)
        {
            if (_items.First is not { } first)
            {
                item = null;
                return false;
            }

            item = first.Value;
            Remove(first, _conflation.Classify(item).Subject);
            if (_items.Count < Capacity)
            {
                space = _space;
                _space = null;
            }

            if (_items.Count <= Capacity / 2)
            {
                _overflowing = false;
            }

            finished = _completed && _items.Count == 0;
        }

        space?.TrySetResult();
        if (finished)
        {
            Finish();
        }

        return true;
    }

    private ValueTask<bool> WaitToReadAsync(CancellationToken cancel)
    {
        Task<bool> wait;
        lock (_lock)
        {
            if (_items.Count > 0)
            {
                return ValueTask.FromResult(true);
            }

            if (_completed)
            {
                return _error is null ? ValueTask.FromResult(false) : ValueTask.FromException<bool>(_error);
            }

            if (cancel.IsCancellationRequested)
            {
                return ValueTask.FromCanceled<bool>(cancel);
            }

            if (!_waiterArmed && !_waiter.InUse)
            {
                _waiterArmed = true;
                return _waiter.Arm(cancel);
            }

            wait = (_readable ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }

        return AwaitAsync(wait, cancel);
    }

    private async ValueTask<bool> AwaitAsync(Task<bool> wait, CancellationToken cancel)
    {
        await wait.WaitAsync(cancel);
        return await WaitToReadAsync(cancel);
    }

    private int Count
    {
        get
        {
            lock (_lock)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Cancels the armed wait, if it still waits (a registration ends before the next wait is armed).</summary>
    private void CancelWait(CancellationToken cancel)
    {
        lock (_lock)
        {
            if (!_waiterArmed)
            {
                return;
            }

            _waiterArmed = false;
        }

        _waiter.Complete(false, new OperationCanceledException(cancel));
    }

    /// <summary>
    /// The reader's reusable wait: armed under the queue's lock when the queue is empty, completed
    /// (outside it) by the next write, by completion, or by cancellation; continuations run on the
    /// thread pool, never on the writer's loop.
    /// </summary>
    private sealed class Waiter(DeliveryQueue<T> queue) : IValueTaskSource<bool>
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
        private CancellationTokenRegistration _registration;
        private int _inUse; // armed, and its result not taken yet

        public bool InUse => Volatile.Read(ref _inUse) != 0;

        /// <summary>Under the queue's lock.</summary>
        public ValueTask<bool> Arm(CancellationToken cancel)
        {
            _core.Reset();
            Volatile.Write(ref _inUse, 1);
            _registration = cancel.CanBeCanceled
                ? cancel.UnsafeRegister(static (s, c) => ((DeliveryQueue<T>)s!).CancelWait(c), queue)
                : default;
            return new ValueTask<bool>(this, _core.Version);
        }

        public void Complete(bool result, Exception? error)
        {
            if (error is null)
            {
                _core.SetResult(result);
            }
            else
            {
                _core.SetException(error);
            }
        }

        public bool GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _registration.Dispose();
                _registration = default;
                Volatile.Write(ref _inUse, 0);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }

    private sealed class QueueReader(DeliveryQueue<T> queue) : ChannelReader<T>
    {
        public override Task Completion => queue._completion.Task;

        public override bool CanCount => true;

        public override int Count => queue.Count;

        public override bool TryRead([MaybeNullWhen(false)] out T item) => queue.TryRead(out item);

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => queue.WaitToReadAsync(cancellationToken);
    }
}
