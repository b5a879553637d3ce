using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace StreamFarm.Server.Transport;

/// <summary>Kestrel's raw-TCP entry: each accepted connection becomes an RTTP session over its duplex pipe.</summary>
internal sealed class RttpConnectionHandler(RttpServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        server.RunSessionAsync(connection.Transport, connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, abort: () => TransportAbort.Reset(connection.Features, connection.Abort));
}

/// <summary>The route port: RTTP sessions from the other servers of the farm only.</summary>
internal sealed class RouteConnectionHandler(RttpServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        server.RunSessionAsync(connection.Transport, connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, routePort: true, abort: () => TransportAbort.Reset(connection.Features, connection.Abort));
}

/// <summary>Cuts a Kestrel connection at once: the socket closes with a reset, its buffers and descriptor are freed.</summary>
internal static class TransportAbort
{
    public static void Reset(IFeatureCollection features, Action abort)
    {
        // Without linger 0, Kestrel's abort is a shutdown and close: the kernel keeps the socket
        // (and the data a client never read) until its own timeouts give up on the peer.
        if (features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
                // closed already
            }
        }

        abort();
    }
}
