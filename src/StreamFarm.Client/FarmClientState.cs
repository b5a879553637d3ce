using StreamFarm.Client.Selection;

namespace StreamFarm.Client;

/// <summary>Where a <see cref="FarmClient"/> stands (<see cref="FarmClient.State"/>).</summary>
public enum FarmClientState
{
    /// <summary>Created; nothing started.</summary>
    Created,

    /// <summary>Connecting the first time (DNS, first server, choice).</summary>
    Connecting,

    /// <summary>Served by a server (<see cref="FarmClient.ServerId"/>).</summary>
    Connected,

    /// <summary>The server was lost or asked the client to move: retrying, rediscovering or moving.</summary>
    Reconnecting,

    /// <summary>Disposed, or the reconnect policy gave up.</summary>
    Stopped,
}

/// <summary>The state changed.</summary>
/// <param name="Previous">The state before.</param>
/// <param name="Current">The state now.</param>
public sealed record FarmClientStateChangedEventArgs(FarmClientState Previous, FarmClientState Current);

/// <summary>A connection event (<see cref="FarmClient.Connected"/>, <see cref="FarmClient.Lost"/>, <see cref="FarmClient.Moved"/>, <see cref="FarmClient.Recovered"/>).</summary>
/// <param name="ServerId">The server connected to (or lost).</param>
/// <param name="Endpoint">Its <c>host:port</c>.</param>
/// <param name="Reason">Why, in words (the loss, the move's reason).</param>
/// <param name="Choice">The selector's choice that led there, with the chosen server's record (null for a loss, or when the first server was kept).</param>
public sealed record FarmServerEventArgs(string ServerId, string Endpoint, string Reason, ServerChoice? Choice);
