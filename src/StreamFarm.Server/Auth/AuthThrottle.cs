using System.Collections.Concurrent;
using System.Net;

namespace StreamFarm.Server.Auth;

/// <summary>
/// Failed logins per client address (<see cref="AuthOptions.MaxFailuresPerAddress"/> within
/// <see cref="AuthOptions.FailureWindow"/>): an address over the limit gets <c>ERR AUTH_FAILED</c>
/// at once, without a password check, until its window ends. It bounds what one client can spend
/// of the server's CPU on PBKDF2, and slows guessing to that many tries per window per address.
/// A success does not clear an address's failures (one valid login must not reset an attacker
/// sharing the address). At most <see cref="MaxTracked"/> addresses are kept; the housekeeping
/// tick forgets those whose window ended.
/// </summary>
internal sealed class AuthThrottle(TimeProvider time, int maxFailures, TimeSpan window)
{
    /// <summary>Addresses tracked at most; past it, the oldest windows are forgotten first.</summary>
    public const int MaxTracked = 100_000;

    private readonly ConcurrentDictionary<IPAddress, Entry> _entries = new();
    private long _throttled;
    private long _failures;

    /// <summary>Logins refused unchecked because their address failed too often.</summary>
    public long Throttled => Interlocked.Read(ref _throttled);

    /// <summary>Failed logins (wrong or missing credentials).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>How long <paramref name="address"/> stays refused, or null when it may try.</summary>
    public TimeSpan? BlockedFor(IPAddress? address)
    {
        if (maxFailures <= 0 || address is null || !_entries.TryGetValue(address, out var entry))
        {
            return null;
        }

        lock (entry)
        {
            var elapsed = time.GetElapsedTime(entry.Since);
            if (entry.Count < maxFailures || elapsed >= window)
            {
                return null;
            }

            Interlocked.Increment(ref _throttled);
            return window - elapsed;
        }
    }

    /// <summary>A login from <paramref name="address"/> failed.</summary>
    public void Failed(IPAddress? address)
    {
        Interlocked.Increment(ref _failures);
        if (maxFailures <= 0 || address is null)
        {
            return;
        }

        if (_entries.Count >= MaxTracked && !_entries.ContainsKey(address))
        {
            Forget(all: true);
        }

        var entry = _entries.GetOrAdd(address, _ => new Entry { Since = time.GetTimestamp() });
        lock (entry)
        {
            if (time.GetElapsedTime(entry.Since) >= window)
            {
                entry.Since = time.GetTimestamp();
                entry.Count = 0;
            }

            entry.Count++;
        }
    }

    /// <summary>Forgets the addresses whose window ended (or, when <paramref name="all"/>, the older half as well: the table is full).</summary>
    public void Forget(bool all = false)
    {
        foreach (var (address, entry) in _entries)
        {
            if (time.GetElapsedTime(entry.Since) >= (all ? window / 2 : window))
            {
                _entries.TryRemove(address, out _);
            }
        }
    }

    /// <summary>Addresses with failures in their window.</summary>
    public int Tracked => _entries.Count;

    private sealed class Entry
    {
        public long Since;
        public int Count;
    }
}
