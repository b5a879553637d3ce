namespace StreamFarm.Protocol;

/// <summary>One server of the farm as the FARM/SERVER lines carry it (see docs/protocol.md).</summary>
public sealed record FarmMember
{
    /// <summary>The server's id, unique in the farm (<c>s1</c>).</summary>
    public required string Id { get; init; }

    /// <summary>The server's group (a zone, a region), which selectors can prefer; <c>default</c> when none was given.</summary>
    public string Group { get; init; } = "default";

    /// <summary>joining, active, draining, leaving.</summary>
    public string State { get; init; } = "active";

    /// <summary>alive, suspect, dead.</summary>
    public string Liveness { get; init; } = "alive";

    /// <summary>Client sessions the server has now.</summary>
    public int Users { get; init; }

    /// <summary>Client sessions the server takes at most; with <see cref="Users"/>, what load-aware selection weighs.</summary>
    public int Capacity { get; init; }

    /// <summary>RTTP over TCP, <c>host:port</c>.</summary>
    public string Tcp { get; init; } = "";

    /// <summary>RTTP over WebSocket URL.</summary>
    public string Ws { get; init; } = "";

    /// <summary>Base URL of the HTTP side.</summary>
    public string Http { get; init; } = "";

    /// <summary>
    /// RTTP over TCP as clients outside the farm's network reach it (<c>host:port</c>, behind NAT or
    /// a load balancer); empty when the internal address is the only one.
    /// </summary>
    public string External { get; init; } = "";

    /// <summary>RTTP over TLS (<c>host:port</c>, the host being the name on the server's certificate); empty without TLS.</summary>
    public string Tls { get; init; } = "";

    /// <summary>WebSocket RTTP over TLS (<c>wss://host:port/rttp</c>); empty without TLS.</summary>
    public string Wss { get; init; } = "";

    /// <summary>Where the other servers of the farm open routes to this one (<c>host:port</c>); empty without routes.</summary>
    public string Route { get; init; } = "";
}

/// <summary>An immutable, versioned farm table. Readers take no locks.</summary>
/// <param name="Version">The table's version; every change makes a higher one (the <c>FARM</c>, <c>SERVER</c> and <c>FARMDEL</c> lines carry it).</param>
/// <param name="Members">Every server the table lists, whatever its state and liveness.</param>
public sealed record FarmSnapshot(long Version, IReadOnlyList<FarmMember> Members)
{
    /// <summary>The table before anything is known: version 0, no servers.</summary>
    public static FarmSnapshot Empty { get; } = new(0, []);

    /// <summary>The row of server <paramref name="id"/>, or null when the table does not list it.</summary>
    public FarmMember? Find(string id)
    {
        foreach (var m in Members)
        {
            if (m.Id == id)
            {
                return m;
            }
        }

        return null;
    }
}
