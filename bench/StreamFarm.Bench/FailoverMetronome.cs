using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// Calls an action at a steady interval on a thread of its own. Timers of the thread pool fire every
/// 4 ms or so at best here; a dedicated thread sleeping 1 ms at a time keeps a 1 ms rhythm (a little
/// slower: a 1 ms sleep takes about 1.1 ms). Late ticks are caught up, but never more than ten at once.
/// </summary>
internal sealed class FailoverMetronome : IDisposable
{
    private readonly Thread _thread;
    private readonly long _interval;
    private readonly Action _tick;
    private readonly Stopwatch _clock = new();
    private volatile bool _stop;
    private long _ticks;

    public FailoverMetronome(TimeSpan interval, Action tick, string name)
    {
        _interval = (long)(interval.TotalSeconds * Stopwatch.Frequency);
        _tick = tick;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>Ticks so far per second of running.</summary>
    public double Rate => Interlocked.Read(ref _ticks) / Math.Max(0.001, _clock.Elapsed.TotalSeconds);

    public void Start()
    {
        _clock.Start();
        _thread.Start();
    }

    public void Dispose()
    {
        _stop = true;
        if (_thread.IsAlive)
        {
            _thread.Join();
        }
    }

    private void Run()
    {
        var next = Stopwatch.GetTimestamp();
        while (!_stop)
        {
            var now = Stopwatch.GetTimestamp();
            if (now < next)
            {
                Thread.Sleep(1);
                continue;
            }

            _tick();
            Interlocked.Increment(ref _ticks);
            next += _interval;
            if (now - next > 10 * _interval)
            {
                next = now;
            }
        }
    }
}
