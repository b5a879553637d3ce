namespace StreamFarm.Membership;

/// <summary>
/// Messages to piggyback on probes and gossip, each sent a bounded number of times. A newer message
/// about a member replaces the queued one about the same member, so bursts of status changes
/// coalesce into one broadcast. Not thread-safe: used under the node's lock.
/// </summary>
internal sealed class BroadcastQueue
{
    private readonly Dictionary<string, Item> _items = [];
    private long _order;

    public int Count => _items.Count;

    public void Enqueue(string memberId, byte[] encoded) => _items[memberId] = new Item(encoded, 0, ++_order);

    /// <summary>
    /// Takes broadcasts that fit in <paramref name="budget"/> bytes, fewest transmissions first,
    /// counting a transmission for each and retiring those sent <paramref name="limit"/> times.
    /// </summary>
    public List<byte[]> Take(int budget, int limit)
    {
        var chosen = new List<byte[]>();
        if (_items.Count == 0)
        {
            return chosen;
        }

        foreach (var (key, item) in _items.OrderBy(kv => kv.Value.Transmits).ThenByDescending(kv => kv.Value.Order).ToList())
        {
            if (item.Encoded.Length > budget)
            {
                continue;
            }

            budget -= item.Encoded.Length;
            chosen.Add(item.Encoded);
            if (item.Transmits + 1 >= limit)
            {
                _items.Remove(key);
            }
            else
            {
                _items[key] = item with { Transmits = item.Transmits + 1 };
            }
        }

        return chosen;
    }

    private readonly record struct Item(byte[] Encoded, int Transmits, long Order);
}
