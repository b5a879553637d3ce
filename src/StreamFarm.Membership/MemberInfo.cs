namespace StreamFarm.Membership;

/// <summary>
/// One member's record as the farm knows it. Immutable. <see cref="Incarnation"/> is raised only by
/// the member itself, on every change of its own record and to refute a suspicion, so a higher
/// incarnation always carries the newer status.
/// </summary>
public sealed record MemberInfo
{
    public required string Id { get; init; }

    /// <summary><c>ip:port</c> of the member's gossip endpoint (UDP and TCP).</summary>
    public required string Gossip { get; init; }

    public ulong Incarnation { get; init; }

    public Liveness Liveness { get; init; }

    /// <summary>joining, active, draining, leaving.</summary>
    public string State { get; init; } = "joining";

    public string Group { get; init; } = "default";

    public int Capacity { get; init; }

    public int Users { get; init; }

    public string Tcp { get; init; } = "";

    public string Ws { get; init; } = "";

    public string Http { get; init; } = "";

    /// <summary>RTTP address for clients outside the farm's network (<c>host:port</c>), or empty.</summary>
    public string External { get; init; } = "";

    /// <summary>RTTP over TLS (<c>host:port</c>, the host being the certificate's name), or empty.</summary>
    public string Tls { get; init; } = "";

    /// <summary>WebSocket RTTP over TLS (<c>wss://host:port/rttp</c>), or empty.</summary>
    public string Wss { get; init; } = "";

    /// <summary>Where other servers open routes to this one (<c>host:port</c>), or empty.</summary>
    public string Route { get; init; } = "";

    /// <summary>True for observers (a DNS responder): they see the farm but serve no clients.</summary>
    public bool Observer { get; init; }
}
