namespace StreamFarm.Membership;

/// <summary>
/// How membership reaches other members: unreliable datagrams (probes, gossip) and a reliable
/// one-way stream message (full-state exchange). Addresses are <c>ip:port</c> strings (a stream
/// message to a seed may name <c>host:port</c>, which the transport resolves). Implemented
/// over UDP+TCP (<see cref="UdpMembershipTransport"/>) and, in tests, over an in-memory network.
/// Sends never block.
/// </summary>
public interface IMembershipTransport
{
    /// <summary>The address other members reach this one at.</summary>
    string LocalAddress { get; }

    /// <summary>Receives datagrams and stream messages; set once before the transport starts delivering.</summary>
    void Attach(Action<string, byte[]> onPacket, Action<string, byte[]> onStream);

    void SendPacket(string to, byte[] packet);

    void SendStream(string to, byte[] message);
}
