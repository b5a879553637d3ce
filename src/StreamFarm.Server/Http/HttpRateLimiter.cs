using System.Net;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server.Http;

/// <summary>
/// HTTP requests per client address (<c>limits.httpRequestsPerSecondPerAddress</c>): a token bucket
/// per address holding two seconds' worth, refilled continuously, so a page load's burst passes and
/// a flood gets 429. Hand-written rather than ASP.NET Core's partitioned rate limiter because that
/// one keeps a heartbeat timer firing ten times a second (and a replenishment timer per address) for
/// the life of the server, which was a large part of what an idle server did; these buckets are
/// refilled from the clock when a request comes, so an idle server does nothing. At most
/// <see cref="MaxTracked"/> addresses are kept: past it, the full buckets (addresses quiet for two
/// seconds or more) are forgotten, and if that is not enough, all of them.
/// </summary>
internal sealed class HttpRateLimiter(int perSecond, TimeProvider time)
{
    /// <summary>Addresses tracked at most.</summary>
    public const int MaxTracked = 100_000;

    private readonly Dictionary<IPAddress, Bucket> _buckets = [];
    private readonly Lock _lock = new();
    private long _refused;

    /// <summary>Requests refused with 429 so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Addresses tracked now.</summary>
    public int Tracked
    {
        get
        {
            lock (_lock)
            {
                return _buckets.Count;
            }
        }
    }

    private double Capacity => 2.0 * perSecond;

    /// <summary>Takes a token for a request from <paramref name="address"/>; false when its bucket is empty.</summary>
    public bool TryTake(IPAddress? address)
    {
        if (perSecond <= 0)
        {
            return true;
        }

        var key = address is null ? IPAddress.None : AddressLimiter.Normalize(address);
        var now = time.GetTimestamp();
        lock (_lock)
        {
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                if (_buckets.Count >= MaxTracked)
                {
                    Forget(now);
                }

                bucket = new Bucket { Tokens = Capacity, At = now };
                _buckets[key] = bucket;
            }

            bucket.Tokens = Math.Min(Capacity, bucket.Tokens + (time.GetElapsedTime(bucket.At, now).TotalSeconds * perSecond));
            bucket.At = now;
            if (bucket.Tokens < 1)
            {
                _refused++;
                return false;
            }

            bucket.Tokens -= 1;
            return true;
        }
    }

    private void Forget(long now)
    {
        var full = _buckets.Where(kv => kv.Value.Tokens + (time.GetElapsedTime(kv.Value.At, now).TotalSeconds * perSecond) >= Capacity).Select(kv => kv.Key).ToList();
        foreach (var k in full)
        {
            _buckets.Remove(k);
        }

        if (_buckets.Count >= MaxTracked)
        {
            _buckets.Clear(); // a flood from more addresses than we track: each starts with a fresh bucket
        }
    }

    private sealed class Bucket
    {
        public double Tokens { get; set; }

        public long At { get; set; }
    }
}
