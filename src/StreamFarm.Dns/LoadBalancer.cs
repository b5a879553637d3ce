using System.Net;

namespace StreamFarm.Dns;

/// <summary>
/// Chooses which healthy servers the service name answers with, and in what order. Thread-safe:
/// called concurrently by the UDP and TCP loops.
/// </summary>
internal sealed class LoadBalancer
{
    private readonly DnsOptions _options;
    private readonly Random _random;
    private readonly Lock _randomLock = new();
    private readonly (string Group, IPNetwork Network)[] _groups;
    private long _next;

    public LoadBalancer(DnsOptions options, Random random)
    {
        _options = options;
        _random = random;
        _groups = [.. options.GroupNetworks.SelectMany(g => g.Value.Select(n => (g.Key, IPNetwork.Parse(n))))];
    }

    /// <summary>Writes the indexes (into <paramref name="healthy"/>) of the chosen servers; returns how many.</summary>
    public int Choose(IReadOnlyList<ZoneData.Server> healthy, ReadOnlySpan<byte> client, Span<int> chosen)
    {
        var n = Math.Min(Math.Min(_options.AnswerCount, healthy.Count), chosen.Length);
        if (n == 0)
        {
            return 0;
        }

        switch (_options.Method)
        {
            case BalanceMethod.Random:
                lock (_randomLock)
                {
                    return Sample(healthy.Count, n, chosen, _ => 1.0);
                }

            case BalanceMethod.Weighted:
                lock (_randomLock)
                {
                    return Sample(healthy.Count, n, chosen, i => Math.Max(1, healthy[i].Capacity - healthy[i].Users));
                }

            case BalanceMethod.FewestUsers:
                return Fewest(healthy, n, chosen);
            case BalanceMethod.Group:
                return InGroup(healthy, n, client, chosen);
            default:
                return Rotate(healthy.Count, n, chosen, static _ => true, null);
        }
    }

    /// <summary>Round robin: consecutive servers from a rotating start.</summary>
    private int Rotate(int count, int n, Span<int> chosen, Func<int, bool> eligible, IReadOnlyList<ZoneData.Server>? _)
    {
        var start = (int)((ulong)Interlocked.Increment(ref _next) % (ulong)count);
        var k = 0;
        for (var i = 0; i < count && k < n; i++)
        {
            var index = (start + i) % count;
            if (eligible(index))
            {
                chosen[k++] = index;
            }
        }

        return k;
    }

    /// <summary>n distinct indexes drawn with probability proportional to weight (caller holds the lock).</summary>
    private int Sample(int count, int n, Span<int> chosen, Func<int, double> weight)
    {
        Span<bool> taken = count <= 1024 ? stackalloc bool[count] : new bool[count];
        for (var k = 0; k < n; k++)
        {
            var total = 0.0;
            for (var i = 0; i < count; i++)
            {
                total += taken[i] ? 0 : weight(i);
            }

            var r = _random.NextDouble() * total;
            var pick = -1;
            for (var i = 0; i < count; i++)
            {
                if (taken[i])
                {
                    continue;
                }

                pick = i;
                r -= weight(i);
                if (r < 0)
                {
                    break;
                }
            }

            taken[pick] = true;
            chosen[k] = pick;
        }

        return n;
    }

    /// <summary>The n least loaded (users / capacity); ties broken by rotation so equal servers share.</summary>
    private int Fewest(IReadOnlyList<ZoneData.Server> healthy, int n, Span<int> chosen)
    {
        var count = healthy.Count;
        var offset = (int)((ulong)Interlocked.Increment(ref _next) % (ulong)count);
        Span<bool> taken = count <= 1024 ? stackalloc bool[count] : new bool[count];
        for (var k = 0; k < n; k++)
        {
            var best = -1;
            for (var j = 0; j < count; j++)
            {
                var i = (offset + j) % count;
                if (!taken[i] && (best < 0 || Load(healthy[i]) < Load(healthy[best])))
                {
                    best = i;
                }
            }

            taken[best] = true;
            chosen[k] = best;
        }

        return n;

        static double Load(ZoneData.Server s) => (double)s.Users / s.Capacity;
    }

    private int InGroup(IReadOnlyList<ZoneData.Server> healthy, int n, ReadOnlySpan<byte> client, Span<int> chosen)
    {
        var group = GroupOf(client);
        if (group is not null)
        {
            var k = Rotate(healthy.Count, n, chosen, i => healthy[i].Group == group, healthy);
            if (k > 0)
            {
                return k;
            }
        }

        return Rotate(healthy.Count, n, chosen, static _ => true, null); // spill over: the group has no healthy server
    }

    private string? GroupOf(ReadOnlySpan<byte> client)
    {
        if (_groups.Length == 0 || client.Length is not (4 or 16))
        {
            return null;
        }

        var address = new IPAddress(client);
        foreach (var (group, network) in _groups)
        {
            if (network.Contains(address))
            {
                return group;
            }
        }

        return null;
    }
}
