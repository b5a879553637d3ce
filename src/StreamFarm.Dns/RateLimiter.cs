using System.Buffers.Binary;

namespace StreamFarm.Dns;

/// <summary>What to do with a UDP response under response rate limiting.</summary>
internal enum RateDecision
{
    Send,
    Slip,
    Drop,
}

/// <summary>
/// Response rate limiting (as in BIND and Knot): a token bucket per client network (/24 for IPv4,
/// /56 for IPv6) so the responder cannot be used to flood a spoofed victim. Over the limit, every
/// <c>slip</c>-th response goes out truncated (a real client retries over TCP, which is not limited)
/// and the rest are dropped. The table is bounded; idle entries are purged.
/// </summary>
internal sealed class RateLimiter(int perSecond, int slip, TimeProvider time)
{
    private const int MaxEntries = 65536;
    private readonly Dictionary<ulong, Bucket> _buckets = [];
    private readonly Lock _lock = new();

    public long Limited { get; private set; }

    public RateDecision Check(ReadOnlySpan<byte> client)
    {
        if (perSecond <= 0)
        {
            return RateDecision.Send;
        }

        var key = client.Length == 4
            ? BinaryPrimitives.ReadUInt32BigEndian(client) & 0xFFFFFF00UL
            : client.Length == 16 ? BinaryPrimitives.ReadUInt64BigEndian(client) & 0xFFFFFFFFFFFFFF00UL | (1UL << 63) : 0;
        var now = time.GetTimestamp();
        lock (_lock)
        {
            if (!_buckets.TryGetValue(key, out var b))
            {
                if (_buckets.Count >= MaxEntries)
                {
                    Purge(now);
                }

                b = new Bucket { Tokens = perSecond, Last = now };
                _buckets[key] = b;
            }

            var elapsed = time.GetElapsedTime(b.Last, now).TotalSeconds;
            b.Tokens = Math.Min(perSecond, b.Tokens + (elapsed * perSecond));
            b.Last = now;
            if (b.Tokens >= 1)
            {
                b.Tokens -= 1;
                return RateDecision.Send;
            }

            Limited++;
            b.Over++;
            return slip > 0 && b.Over % slip == 0 ? RateDecision.Slip : RateDecision.Drop;
        }
    }

    private void Purge(long now)
    {
        foreach (var (k, b) in _buckets.ToList())
        {
            if (time.GetElapsedTime(b.Last, now) > TimeSpan.FromSeconds(10))
            {
                _buckets.Remove(k);
            }
        }

        if (_buckets.Count >= MaxEntries)
        {
            _buckets.Clear(); // a flood of distinct networks: start over rather than grow
        }
    }

    private sealed class Bucket
    {
        public double Tokens { get; set; }

        public long Last { get; set; }

        public long Over { get; set; }
    }
}
