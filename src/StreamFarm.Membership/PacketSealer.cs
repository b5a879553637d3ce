using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace StreamFarm.Membership;

/// <summary>Why a packet was dropped. Values are stable; append only.</summary>
public enum DropReason
{
    BadLength = 0,
    UnknownKey = 1,
    AuthFailed = 2,
    Replayed = 3,
    Stale = 4,
    Malformed = 5,
}

/// <summary>
/// Seals and opens gossip packets with AES-GCM (System.Security.Cryptography). The farm name is
/// authenticated data, so another farm's packets fail like a wrong key. Inside the seal, each packet
/// carries the sender's boot id, a counter and a timestamp: a replayed packet is dropped by a
/// sliding window per sender, an old one by its age. Memory is bounded: a fixed number of senders
/// are tracked.
/// </summary>
public sealed class PacketSealer
{
    public const int Overhead = HeaderBytes + TagBytes + InnerHeaderBytes;
    private const byte Version = 1;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private const int HeaderBytes = 1 + 4 + NonceBytes;
    private const int InnerHeaderBytes = 8 + 8 + 8;
    private const int MaxSenders = 4096;
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(60);
    private readonly Keyring _keyring;
    private readonly byte[] _farm;
    private readonly TimeProvider _time;
    private readonly ulong _bootId;
    private readonly Dictionary<ulong, ReplayWindow> _senders = [];
    private readonly Lock _lock = new();
    private readonly long[] _drops = new long[6];
    private long _counter;

    public PacketSealer(Keyring keyring, string farmName, TimeProvider time, ulong? bootId = null)
    {
        _keyring = keyring;
        _farm = Encoding.UTF8.GetBytes("streamfarm-gossip-v1:" + farmName);
        _time = time;
        _bootId = bootId ?? BinaryPrimitives.ReadUInt64BigEndian(RandomNumberGenerator.GetBytes(8));
    }

    public long Dropped(DropReason reason) => Interlocked.Read(ref _drops[(int)reason]);

    public long DroppedTotal => _drops.Sum();

    public byte[] Seal(ReadOnlySpan<byte> payload)
    {
        var key = _keyring.Primary;
        var packet = new byte[Overhead + payload.Length];
        packet[0] = Version;
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(1), Keyring.KeyId(key));
        RandomNumberGenerator.Fill(packet.AsSpan(5, NonceBytes));
        var plain = new byte[InnerHeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt64BigEndian(plain, _bootId);
        BinaryPrimitives.WriteUInt64BigEndian(plain.AsSpan(8), (ulong)Interlocked.Increment(ref _counter));
        BinaryPrimitives.WriteInt64BigEndian(plain.AsSpan(16), _time.GetUtcNow().ToUnixTimeMilliseconds());
        payload.CopyTo(plain.AsSpan(InnerHeaderBytes));
        using var aes = new AesGcm(key, TagBytes);
        var cipher = packet.AsSpan(HeaderBytes, plain.Length);
        var tag = packet.AsSpan(HeaderBytes + plain.Length, TagBytes);
        aes.Encrypt(packet.AsSpan(5, NonceBytes), plain, cipher, tag, Aad(packet));
        return packet;
    }

    /// <summary>Opens a packet; null (and a counted drop) when it is not authentic, fresh and new.</summary>
    public byte[]? Open(ReadOnlySpan<byte> packet, int maxBytes)
    {
        if (packet.Length < Overhead || packet.Length > maxBytes || packet[0] != Version)
        {
            return Drop(DropReason.BadLength);
        }

        var keyId = BinaryPrimitives.ReadUInt32BigEndian(packet[1..]);
        var key = _keyring.All.FirstOrDefault(k => Keyring.KeyId(k) == keyId);
        if (key is null)
        {
            return Drop(DropReason.UnknownKey);
        }

        var plainLength = packet.Length - Overhead + InnerHeaderBytes;
        var plain = new byte[plainLength];
        try
        {
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(packet.Slice(5, NonceBytes), packet.Slice(HeaderBytes, plainLength), packet.Slice(HeaderBytes + plainLength, TagBytes), plain, Aad(packet));
        }
        catch (AuthenticationTagMismatchException)
        {
            return Drop(DropReason.AuthFailed);
        }

        var boot = BinaryPrimitives.ReadUInt64BigEndian(plain);
        var counter = BinaryPrimitives.ReadUInt64BigEndian(plain.AsSpan(8));
        var sent = DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64BigEndian(plain.AsSpan(16)));
        var now = _time.GetUtcNow();
        if ((now - sent).Duration() > MaxAge)
        {
            return Drop(DropReason.Stale);
        }

        if (!Admit(boot, counter, now))
        {
            return Drop(DropReason.Replayed);
        }

        return plain[InnerHeaderBytes..];
    }

    internal byte[]? Drop(DropReason reason)
    {
        Interlocked.Increment(ref _drops[(int)reason]);
        return null;
    }

    private byte[] Aad(ReadOnlySpan<byte> packet)
    {
        var aad = new byte[_farm.Length + 5];
        _farm.CopyTo(aad, 0);
        packet[..5].CopyTo(aad.AsSpan(_farm.Length));
        return aad;
    }

    private bool Admit(ulong boot, ulong counter, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (!_senders.TryGetValue(boot, out var window))
            {
                if (_senders.Count >= MaxSenders)
                {
                    // Forget the sender heard from least recently; its old packets are stale by age soon.
                    var oldest = _senders.MinBy(kv => kv.Value.LastSeen).Key;
                    _senders.Remove(oldest);
                }

                window = new ReplayWindow();
                _senders[boot] = window;
            }

            window.LastSeen = now;
            return window.Admit(counter);
        }
    }

    /// <summary>Highest counter seen and a 64-bit bitmap of the ones just below it (as in IPsec).</summary>
    private sealed class ReplayWindow
    {
        private ulong _highest;
        private ulong _bitmap;

        public DateTimeOffset LastSeen { get; set; }

        public bool Admit(ulong counter)
        {
            if (counter > _highest)
            {
                var shift = counter - _highest;
                _bitmap = shift >= 64 ? 1UL : (_bitmap << (int)shift) | 1UL;
                _highest = counter;
                return true;
            }

            var offset = _highest - counter;
            if (offset >= 64)
            {
                return false; // too old to tell: treat as a replay
            }

            var bit = 1UL << (int)offset;
            if ((_bitmap & bit) != 0)
            {
                return false;
            }

            _bitmap |= bit;
            return true;
        }
    }
}
