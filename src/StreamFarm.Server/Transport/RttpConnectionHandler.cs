using Microsoft.AspNetCore.Connections;

namespace StreamFarm.Server.Transport;

/// <summary>Kestrel's raw-TCP entry: each accepted connection becomes an RTTP session over its duplex pipe.</summary>
internal sealed class RttpConnectionHandler(RttpServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        server.RunSessionAsync(connection.Transport, connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed);
}

/// <summary>The route port: RTTP sessions from the other servers of the farm only.</summary>
internal sealed class RouteConnectionHandler(RttpServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        server.RunSessionAsync(connection.Transport, connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, routePort: true);
}
