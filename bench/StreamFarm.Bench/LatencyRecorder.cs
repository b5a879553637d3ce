using System.Diagnostics;

namespace StreamFarm.Bench;

/// <summary>
/// One subscriber's view of stamped messages (<see cref="LoadClient.EncodeStamped"/>): each carries
/// the publisher's counter and the <see cref="Stopwatch"/> timestamp taken just before it was written.
/// The recorder checks that the counters follow on one by one (a gap or a step back is a lost or
/// reordered message) and keeps receive time minus stamp for the messages stamped inside the
/// measured window, in an array sized up front. Written only by the subscriber's read loop; read
/// once the messages have drained.
/// </summary>
public sealed class LatencyRecorder
{
    private readonly long[] _samples;
    private int _count;
    private long _overflow;
    private long _last = -1;
    private long _messages;
    private long _gaps;
    private long _backwards;
    private string? _firstGap;
    private long _from = long.MaxValue;
    private long _to = long.MaxValue;

    /// <param name="capacity">most samples kept (the rest are counted in <see cref="Overflow"/>)</param>
    public LatencyRecorder(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _samples = new long[capacity];
    }

    /// <summary>Stamped messages received (inside the window or not).</summary>
    public long Messages => Volatile.Read(ref _messages);

    /// <summary>The last counter received, or -1.</summary>
    public long Last => Volatile.Read(ref _last);

    /// <summary>Samples that did not fit.</summary>
    public long Overflow => Volatile.Read(ref _overflow);

    /// <summary>Gaps and steps back in the counters, or null when they all followed on.</summary>
    public string? Anomaly
    {
        get
        {
            var gaps = Volatile.Read(ref _gaps);
            var back = Volatile.Read(ref _backwards);
            return gaps + back == 0 ? null : $"{gaps} gap(s) and {back} step(s) back in the publisher's counter n, first: {_firstGap}";
        }
    }

    /// <summary>From now on, keeps the latency of messages stamped at or after <paramref name="stamp"/> (a Stopwatch timestamp).</summary>
    public void StartWindow(long stamp) => Volatile.Write(ref _from, stamp);

    /// <summary>Keeps no message stamped after <paramref name="stamp"/>.</summary>
    public void EndWindow(long stamp) => Volatile.Write(ref _to, stamp);

    /// <summary>One stamped message: counter <paramref name="n"/>, stamped at <paramref name="stamp"/>, read at <paramref name="received"/>.</summary>
    public void OnMessage(long n, long stamp, long received)
    {
        var last = _last;
        if (last >= 0 && n != last + 1)
        {
            if (n <= last)
            {
                _backwards++;
            }
            else
            {
                _gaps++;
            }

            _firstGap ??= $"n={n} after n={last}";
        }

        Volatile.Write(ref _last, n);
        Volatile.Write(ref _messages, _messages + 1);
        if (stamp >= Volatile.Read(ref _from) && stamp <= Volatile.Read(ref _to))
        {
            if (_count < _samples.Length)
            {
                _samples[_count] = received - stamp;
                Volatile.Write(ref _count, _count + 1);
            }
            else
            {
                _overflow++;
            }
        }
    }

    /// <summary>Adds the kept latencies, in microseconds, to <paramref name="into"/>.</summary>
    public void CopyMicroseconds(List<double> into)
    {
        var count = Volatile.Read(ref _count);
        var perMicro = Stopwatch.Frequency / 1e6;
        for (var i = 0; i < count; i++)
        {
            into.Add(_samples[i] / perMicro);
        }
    }
}
