using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace StreamFarm.Server.Transport;

/// <summary>
/// Kestrel's raw-TCP entry: each accepted connection becomes an RTTP session over its duplex pipe.
/// On the plain port (<paramref name="plainSocket"/>: no TLS or other middleware between Kestrel's
/// socket and this handler) the session's writer sends on the socket itself (<see cref="SocketSendWriter"/>).
/// </summary>
internal sealed class RttpConnectionHandler(RttpServer server, bool plainSocket = false) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection)
    {
        TransportAbort.SizeSendBuffer(connection.Features, server.Options.Limits.SocketSendBufferBytes);
        var transport = connection.Transport;
        if (plainSocket && connection.Features.Get<ITlsHandshakeFeature>() is null && connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            transport = new DirectPipe(transport.Input, new SocketSendWriter(socket, transport.Output));
        }

        return server.RunSessionAsync(transport, connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, abort: () => TransportAbort.Reset(connection.Features, connection.Abort));
    }

    private sealed record DirectPipe(System.IO.Pipelines.PipeReader Input, System.IO.Pipelines.PipeWriter Output) : System.IO.Pipelines.IDuplexPipe;
}

/// <summary>The route port: RTTP sessions from the other servers of the farm only.</summary>
internal sealed class RouteConnectionHandler(RttpServer server) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        server.RunSessionAsync(connection.Transport, connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, routePort: true, abort: () => TransportAbort.Reset(connection.Features, connection.Abort));
}

/// <summary>Socket settings of client connections: the send buffer, and the cut (a reset that frees the socket at once).</summary>
internal static class TransportAbort
{
    /// <summary>Sets the connection's kernel send buffer (limits.socketSendBufferBytes; 0: the operating system's choice).</summary>
    public static void SizeSendBuffer(IFeatureCollection features, int bytes)
    {
        if (bytes > 0 && features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            try
            {
                socket.SendBufferSize = bytes;
            }
            catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
            {
                // closed already
            }
        }
    }

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
