using System.Diagnostics;

namespace StreamFarm.TestKit;

/// <summary>
/// Waits (in real time) until the thread pool has nothing to do: no queued work item, no worker
/// busy beyond a baseline, and the count of completed items unchanged over two looks. Between two
/// steps of fake time the farm's continuations (pipe readers, session loops, route workers) run on
/// the pool; settling lets them finish before time moves on, so that fake seconds are not spent
/// while real work is still in flight. It is a heuristic on process-wide counters: one simulation
/// at a time per process.
/// </summary>
public sealed class Quiescence
{
    private Quiescence(int baseline) => Baseline = baseline;

    /// <summary>
    /// Pool threads busy whatever the farm does: the test host's threads blocked in synchronous
    /// waits, and the caller's own if it is a pool thread.
    /// </summary>
    public int Baseline { get; }

    /// <summary>
    /// The baseline now (the least busy count seen while nothing was queued or completing, over at
    /// least a millisecond; at most 40 ms are spent waiting for that), taken on the thread that will settle
    /// and before the work starts. Which of the test host's threads are busy changes from test to
    /// test: xUnit runs a synchronous test on a pool thread after an asynchronous test and on a
    /// dedicated thread otherwise, and its own runner thread waits or not accordingly. One
    /// baseline per process once made every step of a later simulation wait out its settle limit
    /// (CI, 2026-12-07: "busy 3 (baseline 2)" at every step; the third was the test's own thread).
    /// </summary>
    public static Quiescence Measure()
    {
        // A farm is built often (a sweep builds 1,500): a millisecond or two each, not 40.
        var start = Stopwatch.GetTimestamp();
        var least = int.MaxValue;
        var calm = 0;
        long lastCompleted = -1;
        while (true)
        {
            var busy = Busy();
            var completed = ThreadPool.CompletedWorkItemCount;
            if (ThreadPool.PendingWorkItemCount == 0 && completed == lastCompleted)
            {
                least = Math.Min(least, busy);
                calm++;
            }
            else
            {
                calm = 0;
            }

            lastCompleted = completed;
            var elapsed = Stopwatch.GetElapsedTime(start);
            if ((calm >= 8 && elapsed > TimeSpan.FromMilliseconds(1)) || elapsed > TimeSpan.FromMilliseconds(40))
            {
                return new Quiescence(least == int.MaxValue ? busy : least);
            }

            Thread.Sleep(0);
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
    public string Describe()
    {
        ThreadPool.GetMinThreads(out var min, out _);
        return $"busy {Busy()} (baseline {Baseline}), pending {ThreadPool.PendingWorkItemCount}, threads {ThreadPool.ThreadCount} (minimum {min}), completed {ThreadPool.CompletedWorkItemCount}";
    }

    /// <summary>
    /// Where a thread is stuck when the pool will not settle: if <c>STREAMFARM_SIM_STACKS</c> names a
    /// directory and <c>dotnet-stack</c> is installed, the managed stacks of every thread of this
    /// process, written to a file there (its path returned); otherwise null.
    /// </summary>
    public static string? DumpStacks()
    {
        var dir = Environment.GetEnvironmentVariable("STREAMFARM_SIM_STACKS");
        if (string.IsNullOrEmpty(dir))
        {
            return null;
        }

        var tool = new[] { Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-stack") }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "dotnet-stack")))
            .FirstOrDefault(File.Exists);
        if (tool is null)
        {
            return null;
        }

        try
        {
            Directory.CreateDirectory(dir);
            var file = Path.Combine(dir, $"stacks-{Environment.ProcessId}-{DateTime.UtcNow:HHmmss}.txt");
            using var p = Process.Start(new ProcessStartInfo(tool, ["report", "-p", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = p.StandardOutput.ReadToEndAsync();
            var errors = p.StandardError.ReadToEndAsync();
            p.WaitForExit(60_000);
            File.WriteAllText(file, output.Result + errors.Result);
            return file;
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return $"(dotnet-stack failed: {e.Message})";
        }
    }

    /// <summary>True if the pool went quiet within <paramref name="limit"/> (false: something kept it busy; time moves on anyway).</summary>
    public bool Settle(TimeSpan limit)
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
