using System.Diagnostics;

namespace StreamFarm.TestKit;

/// <summary>
/// Waits (in real time) until the thread pool has nothing to do: no queued work item, no worker
/// busy, and the count of completed items unchanged over two looks. Between two steps of fake time
/// the farm's continuations (pipe readers, session loops, route workers) run on the pool; settling
/// lets them finish before time moves on, so that fake seconds are not spent while real work is
/// still in flight. It is a heuristic on process-wide counters: one simulation at a time per
/// process.
/// </summary>
public static class Quiescence
{
    private static int _baseline = -1;

    /// <summary>
    /// Pool threads that stay busy whatever the farm does (a test host blocks some in synchronous
    /// waits, and so may the thread that runs the test): measured once, idle, as the least seen.
    /// </summary>
    public static int Baseline
    {
        get
        {
            if (_baseline < 0)
            {
                var least = int.MaxValue;
                for (var i = 0; i < 40; i++)
                {
                    least = Math.Min(least, Busy());
                    Thread.Sleep(1);
                }

                _baseline = least;
            }

            return _baseline;
        }
    }

    /// <summary>Pool threads processing work now (the pool's own count).</summary>
    public static int Busy()
    {
        ThreadPool.GetMaxThreads(out var max, out _);
        ThreadPool.GetAvailableThreads(out var available, out _);
        return max - available;
    }

    /// <summary>The pool's counters now, for a failure message.</summary>
    public static string Describe()
    {
        ThreadPool.GetMinThreads(out var min, out _);
        return $"busy {Busy()} (baseline {Baseline}), pending {ThreadPool.PendingWorkItemCount}, threads {ThreadPool.ThreadCount} (minimum {min}), completed {ThreadPool.CompletedWorkItemCount}";
    }

    /// <summary>True if the pool went quiet within <paramref name="limit"/> (false: something kept it busy; time moves on anyway).</summary>
    public static bool Settle(TimeSpan limit)
    {
        var self = Baseline;
        long start = 0;
        var calm = 0;
        long lastCompleted = -1;
        var spins = 0;
        while (true)
        {
            var busy = Busy() - self;
            var pending = ThreadPool.PendingWorkItemCount;
            var completed = ThreadPool.CompletedWorkItemCount;
            if (busy <= 0 && pending == 0 && completed == lastCompleted)
            {
                if (++calm >= 2)
                {
                    return true;
                }
            }
            else
            {
                calm = 0;
            }

            lastCompleted = completed;
            if (++spins > 16)
            {
                if (start == 0)
                {
                    start = Stopwatch.GetTimestamp();
                }
                else if (Stopwatch.GetElapsedTime(start) > limit)
                {
                    return false;
                }

                Thread.Yield();
            }
            else
            {
                Thread.SpinWait(30);
            }
        }
    }
}
