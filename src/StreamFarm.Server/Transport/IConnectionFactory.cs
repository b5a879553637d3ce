using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Server.Transport;

/// <summary>
/// Opens outbound connections (today: routes to other servers of the farm). The default,
/// <see cref="SocketConnectionFactory"/>, opens TCP sockets; tests put an in-memory network here.
/// </summary>
public interface IConnectionFactory
{
    /// <summary>
    /// Connects to <paramref name="address"/> (<c>ip:port</c>), from <paramref name="bindAddress"/> when given.
    /// Refusal, an unreachable peer or a timeout throw <see cref="SocketException"/> or <see cref="IOException"/>.
    /// The caller completes both pipes when done (which closes the connection).
    /// </summary>
    ValueTask<IDuplexPipe> ConnectAsync(string address, IPAddress? bindAddress, CancellationToken ct);
}

/// <summary>
/// A connection that can end with a reset rather than an orderly close: what it still holds to send
/// (unacknowledged by the peer's kernel) is dropped then, never delivered later. A route given up for
/// silence ends so: with an orderly close, the kernel kept retransmitting what the route had written
/// into a partition, and when the partition healed the owner applied publications that this server
/// had refused meanwhile (their publishers told "not applied").
/// </summary>
public interface IResettableConnection
{
    /// <summary>Ends the connection now with a reset (RST), dropping what it had not sent; its pipes are completed after (writing to them fails).</summary>
    void Reset();
}

/// <summary>TCP connections (no Nagle delay), with a two-second connect timeout; over TLS when <see cref="Tls"/> is set.</summary>
public sealed class SocketConnectionFactory : IConnectionFactory
{
    public static SocketConnectionFactory Instance { get; } = new();

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>When set, each connection is wrapped in TLS with these options (made afresh per connection: the certificate may have been reloaded).</summary>
    public Func<string, System.Net.Security.SslClientAuthenticationOptions>? Tls { get; init; }

    public async ValueTask<IDuplexPipe> ConnectAsync(string address, IPAddress? bindAddress, CancellationToken ct)
    {
        if (!IPEndPoint.TryParse(address, out var endPoint))
        {
            throw new IOException($"route address '{address}' is not IP:PORT");
        }

        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (bindAddress is not null && bindAddress.AddressFamily == endPoint.AddressFamily)
            {
                // From this server's own address: peers (and firewalls) see the route come from the
                // server, not from whatever source address the kernel would pick.
                socket.Bind(new IPEndPoint(bindAddress, 0));
            }

            using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                connectTimeout.CancelAfter(ConnectTimeout);
                await socket.ConnectAsync(endPoint, connectTimeout.Token);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        // Completing the reader and the writer disposes the stream, which closes the socket.
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        if (Tls is not null)
        {
            var tls = new System.Net.Security.SslStream(stream, leaveInnerStreamOpen: false);
            try
            {
                using var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                handshakeTimeout.CancelAfter(ConnectTimeout);
                await tls.AuthenticateAsClientAsync(Tls(address), handshakeTimeout.Token);
            }
            catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                await tls.DisposeAsync();
                throw new IOException($"TLS with {address} failed: {e.Message}", e);
            }
            catch
            {
                await tls.DisposeAsync();
                throw;
            }

            stream = tls;
        }

        // 64 KiB segments: a StreamPipeWriter writes each segment with its own call, and a route's
        // batches are up to 64 KiB (with the default 4 KiB, sixteen system calls for one batch).
        return new StreamPipe(PipeReader.Create(stream), PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024)), socket);
    }

    private sealed record StreamPipe(PipeReader Input, PipeWriter Output, Socket Socket) : IDuplexPipe, IResettableConnection
    {
        public void Reset()
        {
            try
            {
                // close() with a zero linger sends RST and frees the socket: nothing is retransmitted.
                // Closed here, not when the pipes complete: disposing the stream shuts the socket down
                // first, which sends FIN after what is queued (an orderly close after all).
                Socket.LingerState = new LingerOption(enable: true, seconds: 0);
                Socket.Dispose();
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                // already closed
            }
        }
    }
}
