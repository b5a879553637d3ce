namespace StreamFarm.Membership;

/// <summary>Counters of one member's gossip traffic, for metrics and benchmarks.</summary>
public sealed class MembershipStats
{
    private long _packetsSent;
    private long _bytesSent;
    private long _packetsReceived;
    private long _bytesReceived;
    private long _streamsSent;
    private long _malformed;

    public long PacketsSent => Interlocked.Read(ref _packetsSent);

    public long BytesSent => Interlocked.Read(ref _bytesSent);

    public long PacketsReceived => Interlocked.Read(ref _packetsReceived);

    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    public long StreamsSent => Interlocked.Read(ref _streamsSent);

    /// <summary>Authentic packets whose content did not decode.</summary>
    public long Malformed => Interlocked.Read(ref _malformed);

    internal void Sent(int bytes)
    {
        Interlocked.Increment(ref _packetsSent);
        Interlocked.Add(ref _bytesSent, bytes);
    }

    internal void StreamSent(int bytes)
    {
        Interlocked.Increment(ref _streamsSent);
        Interlocked.Add(ref _bytesSent, bytes);
    }

    internal void Received(int bytes)
    {
        Interlocked.Increment(ref _packetsReceived);
        Interlocked.Add(ref _bytesReceived, bytes);
    }

    internal void CountMalformed() => Interlocked.Increment(ref _malformed);
}
