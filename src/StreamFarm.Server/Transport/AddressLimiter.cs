using System.Net;

namespace StreamFarm.Server.Transport;

/// <summary>
/// Open connections per client address, at most <see cref="Limit"/> each (0: no limit), so that one
/// client cannot take the server's connections (or its file descriptors) from everyone else. The
/// server keeps one for RTTP sessions (TCP, TLS and WebSocket) and one for HTTP connections.
/// Connection set-up is not a hot path: a lock around a dictionary is enough.
/// </summary>
internal sealed class AddressLimiter(int limit)
{
    private readonly Dictionary<IPAddress, int> _open = [];
    private readonly Lock _lock = new();
    private long _refused;

    public int Limit => limit;

    /// <summary>Connections refused for their address so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Counts a connection from <paramref name="address"/>; false (and nothing counted) when that address has <see cref="Limit"/> open already.</summary>
    public bool TryAcquire(IPAddress? address)
    {
        if (limit <= 0 || address is null)
        {
            return true;
        }

        lock (_lock)
        {
            var open = _open.GetValueOrDefault(address);
            if (open >= limit)
            {
                _refused++;
                return false;
            }

            _open[address] = open + 1;
            return true;
        }
    }

    /// <summary>A connection counted by <see cref="TryAcquire"/> ended.</summary>
    public void Release(IPAddress? address)
    {
        if (limit <= 0 || address is null)
        {
            return;
        }

        lock (_lock)
        {
            if (_open.TryGetValue(address, out var open))
            {
                if (open <= 1)
                {
                    _open.Remove(address);
                }
                else
                {
                    _open[address] = open - 1;
                }
            }
        }
    }

    /// <summary>Connections open from <paramref name="address"/>.</summary>
    public int OpenFrom(IPAddress address)
    {
        lock (_lock)
        {
            return _open.GetValueOrDefault(Normalize(address));
        }
    }

    /// <summary>The address of a session's remote end as the server names it (<c>ip:port</c>, <c>ws:ip:port</c>), or null.</summary>
    public static IPAddress? AddressOf(string remote)
    {
        var text = remote.StartsWith("ws:", StringComparison.Ordinal) ? remote.AsSpan(3) : remote.AsSpan();
        return IPEndPoint.TryParse(text, out var endpoint) ? Normalize(endpoint.Address) : null;
    }

    /// <summary>IPv4 clients of a dual-stack socket show as <c>::ffff:a.b.c.d</c>: counted as <c>a.b.c.d</c>.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
