namespace StreamFarm.Membership;

/// <summary>
/// How membership reaches other members: unreliable datagrams (probes, gossip) and a reliable
/// stream message (full-state exchange), to which the receiver may answer on the same connection. Addresses are <c>ip:port</c> strings (a stream
/// message to a seed may name <c>host:port</c>, which the transport resolves). Implemented
/// over UDP+TCP (<see cref="UdpMembershipTransport"/>) and, in tests, over an in-memory network.
/// Sends never block.
/// </summary>
public interface IMembershipTransport
{
    /// <summary>The address other members reach this one at.</summary>
    string LocalAddress { get; }

    /// <summary>
    /// Receives datagrams and stream messages; set once before the transport starts delivering.
    /// <paramref name="onStream"/> may return a reply: the transport sends it back to the sender on
    /// the same connection (its own stream message there, delivered to the sender's
    /// <paramref name="onStream"/>); null for none. A sender that is gone by then loses it.
    /// </summary>
    void Attach(Action<string, byte[]> onPacket, Func<string, byte[], byte[]?> onStream);

    void SendPacket(string to, byte[] packet);

    void SendStream(string to, byte[] message);
}
