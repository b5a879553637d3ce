namespace StreamFarm.Membership;

/// <summary>
/// A running suspicion of one member (Lifeguard): it expires after a timeout that starts long and
/// shrinks as independent members confirm the suspicion, so a truly dead member is declared quickly
/// while a single slow accuser cannot kill a healthy one.
/// </summary>
internal sealed class Suspicion : IDisposable
{
    private readonly HashSet<string> _confirmedBy = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly int _k;
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private readonly ITimer _timer;

    public Suspicion(TimeProvider time, int k, TimeSpan min, TimeSpan max, Action expire)
    {
        _time = time;
        _k = k;
        _min = min;
        _max = k < 1 ? min : max;
        _start = time.GetTimestamp();
        _timer = time.CreateTimer(_ => expire(), null, _max, Timeout.InfiniteTimeSpan);
    }

    public int Confirmations => _confirmedBy.Count;

    /// <summary>Counts an independent confirmation; true if it was new (then worth re-gossiping).</summary>
    public bool Confirm(string from)
    {
        if (_k < 1 || _confirmedBy.Count >= _k || !_confirmedBy.Add(from))
        {
            return false;
        }

        var total = MembershipMath.RemainingSuspicion(_confirmedBy.Count, _k, _min, _max);
        var remaining = total - _time.GetElapsedTime(_start);
        _timer.Change(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        return true;
    }

    public void Dispose() => _timer.Dispose();
}
