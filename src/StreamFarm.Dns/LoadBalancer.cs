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
    private readonly string[] _groupNames;
    private readonly (int Group, IPNetwork Network)[] _groups;

    /// <summary>
    /// Rotations: one per address family (index 0 IPv4, 1 IPv6), and one per group and family at
    /// <c>group * 2 + family</c>, so that A and AAAA queries asked in pairs, or the clients of one
    /// group, do not shift each other's turns.
    /// </summary>
    private readonly long[] _next = new long[2];
    private readonly long[] _groupNext;

    public LoadBalancer(DnsOptions options, Random random)
    {
        _options = options;
        _random = random;
        _groupNames = [.. options.GroupNetworks.Keys];
        _groups = [.. options.GroupNetworks.SelectMany((g, i) => g.Value.Select(n => (i, IPNetwork.Parse(n))))];
        _groupNext = new long[_groupNames.Length * 2];
    }

    /// <summary>
    /// Writes the indexes (into <paramref name="healthy"/>, servers of one address family) of the
    /// chosen servers; returns how many.
    /// </summary>
    public int Choose(IReadOnlyList<ZoneData.Server> healthy, ReadOnlySpan<byte> client, Span<int> chosen)
    {
        var n = Math.Min(Math.Min(_options.AnswerCount, healthy.Count), chosen.Length);
        if (n == 0)
        {
            return 0;
        }

        var family = healthy[0].Ip.Length == 4 ? 0 : 1;

        switch (_options.Method)
        {
            case BalanceMethod.Random:
                lock (_randomLock)
                {
                    return Sample(healthy.Count, n, chosen, _ => 1.0);
                }

            case BalanceMethod.Weighted:
                return Weighted(healthy, n, chosen);

            case BalanceMethod.FewestUsers:
                return Fewest(healthy, n, chosen, ref _next[family]);
            case BalanceMethod.Group:
                return InGroup(healthy, n, client, chosen, family);
            default:
                return Rotate(healthy, null, n, chosen, ref _next[family]);
        }
    }

    // Its own method: a lambda capturing `healthy` in Choose would allocate a closure on every call
    // of Choose, whatever the method.
    private int Weighted(IReadOnlyList<ZoneData.Server> healthy, int n, Span<int> chosen)
    {
        lock (_randomLock)
        {
            return Sample(healthy.Count, n, chosen, i => Math.Max(1, healthy[i].Capacity - healthy[i].Users));
        }
    }

    /// <summary>
    /// Round robin over the eligible servers (all, or those of <paramref name="group"/>): consecutive
    /// eligible servers from a start that rotates through them, so each leads equally often.
    /// </summary>
    private static int Rotate(IReadOnlyList<ZoneData.Server> healthy, string? group, int n, Span<int> chosen, ref long next)
    {
        var eligible = 0;
        for (var i = 0; i < healthy.Count; i++)
        {
            eligible += group is null || healthy[i].Group == group ? 1 : 0;
        }

        if (eligible == 0)
        {
            return 0;
        }

        // The eligible servers ranked start, start + 1, ..., then those ranked 0 .. start - 1.
        var start = (int)((ulong)Interlocked.Increment(ref next) % (ulong)eligible);
        var k = 0;
        for (var pass = 0; pass < 2; pass++)
        {
            var rank = 0;
            for (var i = 0; i < healthy.Count && k < n; i++)
            {
                if (group is null || healthy[i].Group == group)
                {
                    if ((rank >= start) == (pass == 0))
                    {
                        chosen[k++] = i;
                    }

                    rank++;
                }
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

    /// <summary>The n least loaded (users / capacity); ties taken in turn so equal servers share evenly.</summary>
    private static int Fewest(IReadOnlyList<ZoneData.Server> healthy, int n, Span<int> chosen, ref long next)
    {
        var count = healthy.Count;
        var turn = (ulong)Interlocked.Increment(ref next);
        Span<bool> taken = count <= 1024 ? stackalloc bool[count] : new bool[count];
        for (var k = 0; k < n; k++)
        {
            // The least load among the servers not yet taken, and how many share it.
            var least = double.PositiveInfinity;
            var ties = 0;
            for (var i = 0; i < count; i++)
            {
                if (taken[i])
                {
                    continue;
                }

                var load = Load(healthy[i]);
                if (load < least)
                {
                    least = load;
                    ties = 1;
                }
                else if (load == least)
                {
                    ties++;
                }
            }

            var skip = (int)((turn + (ulong)k) % (ulong)ties);
            for (var i = 0; i < count; i++)
            {
                if (!taken[i] && Load(healthy[i]) == least && skip-- == 0)
                {
                    taken[i] = true;
                    chosen[k] = i;
                    break;
                }
            }
        }

        return n;

        static double Load(ZoneData.Server s) => (double)s.Users / s.Capacity;
    }

    private int InGroup(IReadOnlyList<ZoneData.Server> healthy, int n, ReadOnlySpan<byte> client, Span<int> chosen, int family)
    {
        var group = GroupOf(client);
        if (group < 0)
        {
            return Rotate(healthy, null, n, chosen, ref _next[family]);
        }

        ref var next = ref _groupNext[(group * 2) + family];
        var k = Rotate(healthy, _groupNames[group], n, chosen, ref next);
        return k > 0 ? k : Rotate(healthy, null, n, chosen, ref next); // spill over: the group has no healthy server
    }

    /// <summary>The index of the client's group, or -1.</summary>
    private int GroupOf(ReadOnlySpan<byte> client)
    {
        if (_groups.Length == 0 || client.Length is not (4 or 16))
        {
            return -1;
        }

        var address = new IPAddress(client);
        foreach (var (group, network) in _groups)
        {
            if (network.Contains(address))
            {
                return group;
            }
        }

        return -1;
    }
}
