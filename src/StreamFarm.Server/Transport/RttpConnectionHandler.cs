using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace StreamFarm.Server.Transport;

/// <summary>
/// Kestrel's raw-TCP entry: each accepted connection becomes an RTTP session over its duplex pipe.
/// On a plain port (<paramref name="plainSocket"/>: no TLS or other middleware between Kestrel's
/// socket and this handler) the session's writer sends on the socket itself (<see cref="SocketSendWriter"/>).
/// </summary>
internal sealed class RttpConnectionHandler(RttpServer server, bool plainSocket = false) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection)
    {
        TransportAbort.SizeSendBuffer(connection.Features, server.Options.Limits.SocketSendBufferBytes);
        return server.RunSessionAsync(DirectSend.Transport(connection, plainSocket), connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, abort: () => TransportAbort.Reset(connection.Features, connection.Abort));
    }
}

/// <summary>The route port: RTTP sessions from the other servers of the farm only (plain when routes are not over TLS).</summary>
internal sealed class RouteConnectionHandler(RttpServer server, bool plainSocket = false) : ConnectionHandler
{
    public override Task OnConnectedAsync(ConnectionContext connection) =>
        server.RunSessionAsync(DirectSend.Transport(connection, plainSocket), connection.RemoteEndPoint?.ToString() ?? "unknown", connection.ConnectionClosed, routePort: true, abort: () => TransportAbort.Reset(connection.Features, connection.Abort));
}

/// <summary>The session's duplex pipe: Kestrel's, or Kestrel's input with <see cref="SocketSendWriter"/> as output on a plain socket.</summary>
internal static class DirectSend
{
    public static System.IO.Pipelines.IDuplexPipe Transport(ConnectionContext connection, bool plainSocket)
    {
        // Both checks: the listener says it is plain, and no TLS handshake is in the features (a
        // direct send under TLS would put clear text on the wire).
        if (plainSocket && connection.Features.Get<ITlsHandshakeFeature>() is null && connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            return new Pipe(connection.Transport.Input, new SocketSendWriter(socket, connection.Transport.Output));
        }

        return connection.Transport;
    }

    private sealed record Pipe(System.IO.Pipelines.PipeReader Input, System.IO.Pipelines.PipeWriter Output) : System.IO.Pipelines.IDuplexPipe;
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
