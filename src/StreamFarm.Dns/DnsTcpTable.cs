using System.Buffers.Binary;
using System.Net;

namespace StreamFarm.Dns;

/// <summary>
/// The open DNS TCP connections, counted per client (an IPv4 address, or an IPv6 /64: one host
/// usually holds a whole /64). Decides whether a new connection is taken, and which idle
/// connection makes room for it when the table is full, so one client (or a few) cannot shut the
/// TCP path for everyone. Thread-safe; the decision is made under one lock, sockets are closed
/// outside it.
/// </summary>
internal sealed class DnsTcpTable(int max, int perClient)
{
    private readonly Dictionary<ClientKey, int> _perClient = [];
    private readonly List<DnsTcpConnection> _open = [];
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _open.Count;
            }
        }
    }

    /// <summary>Connections refused because their client had <c>perClient</c> open.</summary>
    public long RefusedPerClient { get; private set; }

    /// <summary>Connections refused because the table was full of busy connections.</summary>
    public long RefusedFull { get; private set; }

    /// <summary>Idle connections closed to make room for a new one.</summary>
    public long Evicted { get; private set; }

    /// <summary>
    /// Takes <paramref name="connection"/> into the table, or returns false (the caller closes it).
    /// When the table is full, an idle connection of the client with the most connections (the one
    /// idle longest among them) gives way: it is removed and returned in <paramref name="evicted"/>
    /// for the caller to close.
    /// </summary>
    public bool TryAdd(DnsTcpConnection connection, out DnsTcpConnection? evicted)
    {
        evicted = null;
        lock (_lock)
        {
            _perClient.TryGetValue(connection.Client, out var mine);
            if (mine >= perClient)
            {
                RefusedPerClient++;
                return false;
            }

            if (_open.Count >= max)
            {
                evicted = IdleOfTheBiggestClient();
                if (evicted is null)
                {
                    RefusedFull++;
                    return false;
                }

                RemoveLocked(evicted);
                Evicted++;
            }

            _open.Add(connection);
            _perClient[connection.Client] = mine + 1;
            connection.InTable = true;
            return true;
        }
    }

    /// <summary>Removes a closed connection; harmless when it was already evicted.</summary>
    public void Remove(DnsTcpConnection connection)
    {
        lock (_lock)
        {
            RemoveLocked(connection);
        }
    }

    private void RemoveLocked(DnsTcpConnection connection)
    {
        if (!connection.InTable)
        {
            return;
        }

        connection.InTable = false;
        _open.Remove(connection);
        var left = _perClient[connection.Client] - 1;
        if (left == 0)
        {
            _perClient.Remove(connection.Client);
        }
        else
        {
            _perClient[connection.Client] = left;
        }
    }

    private DnsTcpConnection? IdleOfTheBiggestClient()
    {
        DnsTcpConnection? best = null;
        var bestCount = 0;
        foreach (var c in _open)
        {
            if (!c.Idle)
            {
                continue;
            }

            var count = _perClient[c.Client];
            if (best is null || count > bestCount || (count == bestCount && c.IdleSince < best.IdleSince))
            {
                best = c;
                bestCount = count;
            }
        }

        return best;
    }
}

/// <summary>Who a connection is counted against: an IPv4 address, or the /64 of an IPv6 address.</summary>
internal readonly record struct ClientKey(bool V6, ulong Bits)
{
    public static ClientKey Of(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        Span<byte> bytes = stackalloc byte[16];
        _ = address.TryWriteBytes(bytes, out var n);
        return n == 4
            ? new ClientKey(false, BinaryPrimitives.ReadUInt32BigEndian(bytes))
            : new ClientKey(true, BinaryPrimitives.ReadUInt64BigEndian(bytes));
    }
}
