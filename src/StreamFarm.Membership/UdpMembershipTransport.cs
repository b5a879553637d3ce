using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace StreamFarm.Membership;

/// <summary>
/// Membership over real sockets: datagrams over UDP and stream messages over short TCP connections
/// (<c>[length u32][message]</c>), both on the gossip port (7401). Receive loops and stream senders
/// are owned tasks, awaited on dispose; the stream queue is bounded. A stream message may also be
/// sent to <c>host:port</c> (a seed given by name): the name is resolved at each send and the message
/// goes to each of its addresses but this member's own.
/// </summary>
public sealed class UdpMembershipTransport : IMembershipTransport, IAsyncDisposable
{
    private const int MaxStreamBytes = 16 * 1024 * 1024;
    private const int StreamSenders = 4;
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(2);
    private readonly Socket _udp;
    private readonly TcpListener _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<(string To, byte[] Data)> _streams = Channel.CreateBounded<(string, byte[])>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly List<Task> _loops = [];
    private Action<string, byte[]>? _onPacket;
    private Func<string, byte[], byte[]?>? _onStream;

    public UdpMembershipTransport(IPEndPoint bind)
    {
        // Port 0 picks a free UDP port, but that number may be taken for TCP (the two port spaces
        // are separate): then pick again, a few times, rather than fail a start that asked for any port.
        for (var attempt = 1; ; attempt++)
        {
            var udp = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Bind(bind);
                var bound = (IPEndPoint)udp.LocalEndPoint!;
                var tcp = new TcpListener(bound);
                tcp.Start();
                _udp = udp;
                _tcp = tcp;
                _source = bound.Address.Equals(IPAddress.Any) || bound.Address.Equals(IPAddress.IPv6Any) ? null : bound.Address;
                LocalAddress = bound.ToString(); // [v6]:port or v4:port, which IPEndPoint.TryParse reads back
                return;
            }
            catch (SocketException e) when (bind.Port == 0 && attempt < 20 && e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                udp.Dispose();
            }
            catch
            {
                udp.Dispose();
                throw;
            }
        }
    }

    public string LocalAddress { get; }

    // The address state exchanges leave from: the gossip address when it is a specific one, as
    // for the datagrams. Left to the kernel, a TCP connection to another address of this host
    // (or of a multi-homed one) could leave from another address than the member's own, which
    // firewalls, and partitions made with them, would treat differently from its datagrams.
    private readonly IPAddress? _source;

    public void Attach(Action<string, byte[]> onPacket, Func<string, byte[], byte[]?> onStream)
    {
        _onPacket = onPacket;
        _onStream = onStream;
        // Datagrams are read by a thread of their own, blocked in recvfrom. An asynchronous receive
        // would register the socket with the runtime's epoll thread, and then every datagram *sent*
        // (a UDP socket turns writable again as each one leaves) wakes that thread and a thread-pool
        // worker for nothing, and every datagram received takes two thread hops before it is read:
        // at rest, most of what a member did. Disposing the socket ends the blocked receive.
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                ReceiveLoop();
                received.TrySetResult();
            }
            catch (Exception ex)
            {
                received.TrySetException(ex);
            }
        })
        { IsBackground = true, Name = "Gossip UDP" }.Start();
        _loops.Add(received.Task);
        _loops.Add(Task.Run(AcceptLoopAsync));
        for (var i = 0; i < StreamSenders; i++)
        {
            _loops.Add(Task.Run(StreamSendLoopAsync));
        }
    }

    public void SendPacket(string to, byte[] packet)
    {
        if (!IPEndPoint.TryParse(to, out var endpoint))
        {
            return;
        }

        try
        {
            _udp.SendTo(packet, SocketFlags.None, endpoint);
        }
        catch (SocketException)
        {
            // unreachable now: the failure detector will notice
        }
    }

    public void SendStream(string to, byte[] message) => _streams.Writer.TryWrite((to, message));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _streams.Writer.TryComplete();
        _udp.Dispose();
        _tcp.Stop();
        try
        {
            await Task.WhenAll(_loops);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // stopping
        }

        _stop.Dispose();
    }

    private void ReceiveLoop()
    {
        var buffer = new byte[65536];
        EndPoint any = new IPEndPoint(_udp.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            int n;
            var from = any;
            try
            {
                n = _udp.ReceiveFrom(buffer, SocketFlags.None, ref from);
            }
            catch (SocketException) when (!_stop.IsCancellationRequested)
            {
                continue; // ICMP port unreachable from an earlier send, and the like
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return; // disposed: stopping
            }

            _onPacket!(((IPEndPoint)from).ToString(), buffer.AsSpan(0, n).ToArray());
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _tcp.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = ReadStreamAsync(client); // bounded by its own timeout below; one message per connection
        }
    }

    private async Task ReadStreamAsync(Socket client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            if (await ReadFrameAsync(client, timeout.Token) is { } data)
            {
                var from = (IPEndPoint)client.RemoteEndPoint!;
                if (_onStream!(from.ToString(), data) is { } reply)
                {
                    await client.SendAsync(Frame(reply), SocketFlags.None, timeout.Token);
                    client.Shutdown(SocketShutdown.Send);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // dropped: the periodic exchange repeats
        }
    }

    /// <summary>One stream message (<see cref="Frame"/>); null at the end of the stream or for a length we will not trust.</summary>
    private static async Task<byte[]?> ReadFrameAsync(Socket s, CancellationToken cancel)
    {
        var header = new byte[4];
        if (!await ReadExactlyAsync(s, header, 0, cancel))
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length is 0 or > MaxStreamBytes)
        {
            return null;
        }

        var data = new byte[length];
        return await ReadExactlyAsync(s, data, 0, cancel) ? data : null;
    }

    private static async Task<bool> ReadExactlyAsync(Socket s, byte[] buffer, int offset, CancellationToken cancel)
    {
        while (offset < buffer.Length)
        {
            var n = await s.ReceiveAsync(buffer.AsMemory(offset), SocketFlags.None, cancel);
            if (n == 0)
            {
                return false;
            }

            offset += n;
        }

        return true;
    }

    private async Task StreamSendLoopAsync()
    {
        await foreach (var (to, data) in _streams.Reader.ReadAllAsync())
        {
            if (IPEndPoint.TryParse(to, out var endpoint))
            {
                if (!await SendStreamToAsync(endpoint, data))
                {
                    return;
                }

                continue;
            }

            // A seed given by name (a Kubernetes headless Service, a pod's stable name): resolved
            // at each send, as the addresses behind the name change when members restart.
            foreach (var target in await ResolveAsync(to))
            {
                if (!await SendStreamToAsync(target, data))
                {
                    return;
                }
            }
        }
    }

    /// <summary>Sends one stream message; false once the transport is stopping.</summary>
    private async Task<bool> SendStreamToAsync(IPEndPoint endpoint, byte[] data)
    {
        using var s = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(3));
        try
        {
            if (_source is not null && _source.AddressFamily == endpoint.AddressFamily)
            {
                s.Bind(new IPEndPoint(_source, 0));
            }

            await s.ConnectAsync(endpoint, timeout.Token);
            // Length and message in one write (one segment when it fits), the FIN right after.
            await s.SendAsync(Frame(data), SocketFlags.None, timeout.Token);
            s.Shutdown(SocketShutdown.Send);

            // The receiver's reply, if it sends one on this connection (a build that does not
            // just closes it: end of stream at once).
            if (await ReadFrameAsync(s, timeout.Token) is { } reply)
            {
                _onStream!(endpoint.ToString(), reply);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            return !_stop.IsCancellationRequested;
        }

        return true;
    }

    /// <summary>A stream message as it goes on the wire: its length (4 bytes, big-endian), then the message.</summary>
    private static byte[] Frame(byte[] data)
    {
        var framed = new byte[4 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(framed, (uint)data.Length);
        data.CopyTo(framed, 4);
        return framed;
    }

    /// <summary>The addresses of <c>host:port</c>, as <see cref="Targets"/> filters them; none when the name does not resolve (in time).</summary>
    private async Task<IReadOnlyList<IPEndPoint>> ResolveAsync(string hostPort)
    {
        if (!TrySplitHostPort(hostPort, out var host, out var port))
        {
            return [];
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(ResolveTimeout);
        try
        {
            return Targets(await Dns.GetHostAddressesAsync(host, timeout.Token), port, (IPEndPoint)_udp.LocalEndPoint!);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            return []; // not resolvable now: the join is tried again
        }
    }

    /// <summary>
    /// Where a message to a name goes: each resolved address of this member's address family on
    /// <paramref name="port"/>, once, except this member itself (a name that covers every member, such
    /// as a headless Service's, covers this one too; a state exchange with itself would make it
    /// think it had joined).
    /// </summary>
    internal static IReadOnlyList<IPEndPoint> Targets(IEnumerable<IPAddress> resolved, int port, IPEndPoint self)
    {
        var targets = new List<IPEndPoint>();
        foreach (var address in resolved)
        {
            var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
            var target = new IPEndPoint(a, port);
            if (a.AddressFamily == self.AddressFamily && !target.Equals(self) && !targets.Contains(target))
            {
                targets.Add(target);
            }
        }

        return targets;
    }

    /// <summary>Splits <c>host:port</c> (a DNS name, no brackets) at its last colon.</summary>
    internal static bool TrySplitHostPort(string hostPort, out string host, out int port)
    {
        var colon = hostPort.LastIndexOf(':');
        host = colon > 0 ? hostPort[..colon] : "";
        port = 0;
        return colon > 0 && !host.Contains(':', StringComparison.Ordinal)
            && int.TryParse(hostPort.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
            && port is > 0 and <= 65535 && Uri.CheckHostName(host) == UriHostNameType.Dns;
    }
}
