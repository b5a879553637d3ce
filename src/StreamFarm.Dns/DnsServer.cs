using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Dns;

/// <summary>
/// Serves a <see cref="DnsResponder"/> over UDP (<see cref="DnsOptions.UdpLoops"/> receive loops,
/// each with its own buffers, reading and answering in batches: no allocation per query) and TCP (length-prefixed messages, several per connection;
/// connections bounded per client and in all, closed when idle: <see cref="DnsTcpTable"/>). UDP
/// answers are rate limited per client network.
/// </summary>
public sealed class DnsServer : IAsyncDisposable
{
    private const int UdpReceiveBufferBytes = 4 * 1024 * 1024;
    private readonly DnsResponder _responder;
    private readonly DnsOptions _options;
    private readonly TimeProvider _time;
    private readonly DnsTcpTable _tcpTable;
    private readonly RateLimiter _limiter;
    private readonly Socket _udp;
    private readonly TcpListener _tcp;
    private readonly List<Thread> _threads = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _accept = Task.CompletedTask;
    private long _queries;
    private long _responses;

    public DnsServer(DnsResponder responder, DnsOptions options, IPEndPoint bind, TimeProvider time)
    {
        options.Validate();
        _responder = responder;
        _options = options;
        _time = time;
        _tcpTable = new DnsTcpTable(options.TcpMaxConnections, options.TcpConnectionsPerClient);
        _limiter = new RateLimiter(options.RateLimit, options.Slip, time);
        (_udp, _tcp) = Bind(bind);
        EndPoint = (IPEndPoint)_udp.LocalEndPoint!;
    }

    public IPEndPoint EndPoint { get; }

    public long Queries => Interlocked.Read(ref _queries);

    public long Responses => Interlocked.Read(ref _responses);

    public long RateLimited => _limiter.Limited;

    /// <summary>Open DNS TCP connections.</summary>
    public int TcpConnections => _tcpTable.Count;

    /// <summary>TCP connections closed at once: their client had <see cref="DnsOptions.TcpConnectionsPerClient"/> open, or every slot was busy.</summary>
    public long TcpRefused => _tcpTable.RefusedPerClient + _tcpTable.RefusedFull;

    /// <summary>Idle TCP connections closed to make room for a new client.</summary>
    public long TcpEvicted => _tcpTable.Evicted;

    public void Start()
    {
        var batched = UdpBatch.IsSupported;
        if (batched)
        {
            _udp.ReceiveTimeout = 500; // SO_RCVTIMEO: a blocked batch receive returns twice a second to see a stop
        }

        for (var i = 0; i < _options.UdpLoops; i++)
        {
            var t = new Thread(batched ? BatchLoop : UdpLoop) { IsBackground = true, Name = $"dns-udp-{i}" };
            _threads.Add(t);
            t.Start();
        }

        _accept = AcceptLoopAsync();
    }

    /// <summary>UDP and TCP on the same port. For port 0 the kernel picks a free UDP port that TCP may have in use: pick again.</summary>
    private static (Socket Udp, TcpListener Tcp) Bind(IPEndPoint bind)
    {
        for (var attempt = 1; ; attempt++)
        {
            // One socket for all receive loops: room for a burst of queries while they are descheduled
            // (each small datagram takes about 1 KB of buffer; Linux caps this at net.core.rmem_max).
            var udp = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = UdpReceiveBufferBytes };
            TcpListener? tcp = null;
            try
            {
                udp.Bind(bind);
                tcp = new TcpListener((IPEndPoint)udp.LocalEndPoint!);
                tcp.Start(512);
                return (udp, tcp);
            }
            catch (SocketException e) when (bind.Port == 0 && e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 50)
            {
                tcp?.Dispose();
                udp.Dispose();
            }
            catch
            {
                tcp?.Dispose();
                udp.Dispose();
                throw;
            }
        }
    }

    private void UdpLoop()
    {
        var query = new byte[65536];
        var response = new byte[65536];
        var address = new SocketAddress(_udp.AddressFamily);
        while (!_stop.IsCancellationRequested)
        {
            int n;
            try
            {
                n = _udp.ReceiveFrom(query, SocketFlags.None, address);
            }
            catch (SocketException) when (!_stop.IsCancellationRequested)
            {
                continue; // ICMP errors from earlier sends and the like
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _queries);
            var length = AnswerUdp(query.AsSpan(0, n), response, ClientBytes(address));
            if (length == 0)
            {
                continue;
            }

            try
            {
                _udp.SendTo(response.AsSpan(0, length), SocketFlags.None, address);
                Interlocked.Increment(ref _responses);
            }
            catch (SocketException)
            {
                // the client is gone
            }
            catch (ObjectDisposedException)
            {
                return;
            }
        }
    }

    /// <summary>The UDP loop on 64-bit Linux: datagrams read and answered in batches (<see cref="UdpBatch"/>).</summary>
    private void BatchLoop()
    {
        using var batch = new UdpBatch();
        var handle = _udp.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added); // the descriptor stays open while this loop uses it
            var fd = (int)handle.DangerousGetHandle();
            while (!_stop.IsCancellationRequested)
            {
                var n = batch.Receive(fd);
                if (n < 0)
                {
                    return;
                }

                if (n == 0)
                {
                    continue; // the receive timeout: look at the stop again
                }

                var answers = 0;
                for (var i = 0; i < n; i++)
                {
                    var query = batch.Query(i);
                    if (query.IsEmpty)
                    {
                        continue;
                    }

                    var length = AnswerUdp(query, batch.Response(answers), SenderBytes(batch.Sender(i)));
                    if (length > 0)
                    {
                        batch.Answer(answers++, i, length);
                    }
                }

                Interlocked.Add(ref _queries, n);
                if (answers > 0)
                {
                    Interlocked.Add(ref _responses, batch.Send(fd, answers));
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // stopped before the loop began
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>The answer to a UDP query, rate limited per client: its length, or 0 when nothing is sent (dropped, or a slip with no question to echo).</summary>
    private int AnswerUdp(ReadOnlySpan<byte> query, Span<byte> response, ReadOnlySpan<byte> client)
    {
        var length = _responder.Respond(query, response, client, tcp: false);
        if (length == 0)
        {
            return 0;
        }

        return _limiter.Check(client) switch
        {
            RateDecision.Drop => 0,
            RateDecision.Slip => DnsResponder.Truncated(query, response), // 0 when there is no question to echo (FORMERR, NOTIMP, BADVERS): nothing rather than an empty datagram
            _ => length,
        };
    }

    /// <summary>The address bytes of a raw sockaddr (AF_INET: 4 bytes at offset 4; AF_INET6: 16 at offset 8).</summary>
    private static ReadOnlySpan<byte> SenderBytes(ReadOnlySpan<byte> sockaddr) =>
        sockaddr.Length < 2 ? default : BinaryPrimitives.ReadUInt16LittleEndian(sockaddr) switch
        {
            2 when sockaddr.Length >= 8 => sockaddr.Slice(4, 4),
            10 when sockaddr.Length >= 24 => sockaddr.Slice(8, 16),
            _ => default,
        };

    private static ReadOnlySpan<byte> ClientBytes(SocketAddress a) => a.Family switch
    {
        AddressFamily.InterNetwork => a.Buffer.Span.Slice(4, 4),
        AddressFamily.InterNetworkV6 => a.Buffer.Span.Slice(8, 16),
        _ => default,
    };

    private async Task AcceptLoopAsync()
    {
        var connections = new List<Task>();
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _tcp.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                break;
            }

            DnsTcpConnection connection;
            try
            {
                connection = new DnsTcpConnection(socket, ClientKey.Of(((IPEndPoint)socket.RemoteEndPoint!).Address), _options.TcpIdleTimeout, _time, _stop.Token);
            }
            catch (SocketException)
            {
                socket.Dispose(); // reset before we looked at it
                continue;
            }

            if (!_tcpTable.TryAdd(connection, out var evicted))
            {
                connection.Dispose(); // its client holds its share, or every slot is busy: refuse rather than queue
                continue;
            }

            evicted?.Close();
            connections.RemoveAll(t => t.IsCompleted);
            connections.Add(ServeTcpAsync(connection));
        }

        await Task.WhenAll(connections);
    }

    private async Task ServeTcpAsync(DnsTcpConnection connection)
    {
        await Task.Yield(); // the accept loop goes on at once
        var client = connection.Socket;
        var cancel = connection.Closing;
        var query = new byte[65535];
        var response = new byte[65536 + 2];
        var header = new byte[2];
        var remote = ((IPEndPoint)client.RemoteEndPoint!).Address.GetAddressBytes();
        try
        {
            while (true)
            {
                if (!await ReadExactlyAsync(client, header, cancel))
                {
                    return;
                }

                connection.Busy();
                var length = BinaryPrimitives.ReadUInt16BigEndian(header);
                if (length < DnsWire.HeaderBytes || !await ReadExactlyAsync(client, query.AsMemory(0, length), cancel))
                {
                    return;
                }

                connection.Received();
                Interlocked.Increment(ref _queries);
                var n = _responder.Respond(query.AsSpan(0, length), response.AsSpan(2), remote, tcp: true);
                if (n == 0)
                {
                    return;
                }

                BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)n);
                await client.SendAsync(response.AsMemory(0, n + 2), SocketFlags.None, cancel);
                Interlocked.Increment(ref _responses);
                connection.Answered();
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // idle past the deadline, evicted, reset or stopping
        }
        finally
        {
            _tcpTable.Remove(connection);
            connection.Dispose();
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket s, Memory<byte> buffer, CancellationToken cancel)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await s.ReceiveAsync(buffer[read..], SocketFlags.None, cancel);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _udp.Dispose();
        _tcp.Stop();
        await _accept;
        foreach (var t in _threads)
        {
            t.Join(TimeSpan.FromSeconds(2));
        }

        _stop.Dispose();
    }
}
