namespace StreamFarm.Server;

/// <summary>
/// Work that a timer of the tick thread starts but that must not run there: the tick thread's
/// callbacks must be short (<see cref="StreamFarm.Membership.TickThread"/>), and walking a large
/// subject table or waiting for a record's lock is not. On the system clock the work is queued to
/// the thread pool, one round at a time (a tick that finds the last round still running queues none);
/// on a test's fake clock it runs inline, in the step, so that a simulation stays deterministic.
/// </summary>
/// <param name="time">The server's clock.</param>
/// <param name="work">The work.</param>
/// <param name="failed">Told of an exception thrown by a round on the thread pool; null: the exception ends the process, as it would have from the tick thread.</param>
internal sealed class OffTickWork(TimeProvider time, Action work, Action<Exception>? failed = null)
{
    private int _queued;

    /// <summary>Runs a round (inline on a fake clock), or queues one unless one is queued or running.</summary>
    public void Start()
    {
        if (!ReferenceEquals(time, TimeProvider.System))
        {
            work();
        }
        else if (Interlocked.Exchange(ref _queued, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static self => self.Run(), this, preferLocal: false);
        }
    }

    private void Run()
    {
        try
        {
            work();
        }
        catch (Exception ex) when (failed is not null)
        {
            failed(ex);
        }
        finally
        {
            Volatile.Write(ref _queued, 0);
        }
    }
}
