using StreamFarm.Protocol;

namespace StreamFarm.Server.Farm;

/// <summary>
/// The table of a farm of one: this server's own record, refreshed from its live status at most once
/// per <see cref="RefreshInterval"/>, so a burst of connects produces one delta, not thousands.
/// </summary>
public sealed class LocalFarm : IFarmView, IDisposable
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromMilliseconds(500);
    private readonly Func<FarmMember> _self;
    private readonly ITimer _timer;
    private readonly Lock _lock = new();
    private FarmSnapshot _current;

    public LocalFarm(Func<FarmMember> self, TimeProvider time)
    {
        _self = self;
        _current = new FarmSnapshot(1, [self()]);
        _timer = time.CreateTimer(_ => Refresh(), null, RefreshInterval, RefreshInterval);
    }

    public FarmSnapshot Current => Volatile.Read(ref _current);

    public event Action<FarmSnapshot, FarmSnapshot>? Changed;

    /// <summary>Re-reads this server's status now; raises <see cref="Changed"/> if it differs.</summary>
    public void Refresh()
    {
        FarmSnapshot previous, next;
        lock (_lock)
        {
            previous = _current;
            var me = _self();
            if (previous.Members.Count == 1 && previous.Members[0] == me)
            {
                return;
            }

            next = new FarmSnapshot(previous.Version + 1, [me]);
            Volatile.Write(ref _current, next);
        }

        Changed?.Invoke(previous, next);
    }

    public void Dispose() => _timer.Dispose();
}
