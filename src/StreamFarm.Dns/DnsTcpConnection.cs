using System.Net.Sockets;

namespace StreamFarm.Dns;

/// <summary>
/// One DNS TCP connection: its socket, its client, whether it waits between messages (idle), and
/// the token that closes it: cancelled by its deadline timer, by eviction, or by the server
/// stopping.
/// </summary>
internal sealed class DnsTcpConnection : IDisposable
{
    private readonly CancellationTokenSource _close;
    private readonly ITimer _deadline;
    private readonly TimeSpan _idleTimeout;
    private readonly TimeProvider _time;

    public DnsTcpConnection(Socket socket, ClientKey client, TimeSpan idleTimeout, TimeProvider time, CancellationToken stop)
    {
        Socket = socket;
        Client = client;
        _idleTimeout = idleTimeout;
        _time = time;
        _close = CancellationTokenSource.CreateLinkedTokenSource(stop);
        IdleSince = time.GetTimestamp();
        _deadline = time.CreateTimer(static s => ((DnsTcpConnection)s!).Close(), this, idleTimeout, Timeout.InfiniteTimeSpan);
    }

    public Socket Socket { get; }

    public ClientKey Client { get; }

    public CancellationToken Closing => _close.Token;

    /// <summary>Waiting for the next message (nothing of it read yet). Read under the table's lock; a stale value only makes a choice less apt.</summary>
    public bool Idle { get; private set; } = true;

    public long IdleSince { get; private set; }

    /// <summary>Set and read under the table's lock.</summary>
    public bool InTable { get; set; }

    /// <summary>A message has begun: the connection is no longer idle.</summary>
    public void Busy() => Idle = false;

    /// <summary>A whole query arrived: a fresh deadline, within which its answer must be taken and the next query must come.</summary>
    public void Received() => _deadline.Change(_idleTimeout, Timeout.InfiniteTimeSpan);

    /// <summary>The answer went out: the connection waits for the next message.</summary>
    public void Answered()
    {
        IdleSince = _time.GetTimestamp();
        Idle = true;
    }

    public void Close()
    {
        try
        {
            _close.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // already closed and disposed
        }
    }

    public void Dispose()
    {
        _deadline.Dispose();
        _close.Dispose();
        Socket.Dispose();
    }
}
