using System.Security.Cryptography;

namespace StreamFarm.Membership;

/// <summary>
/// The farm's gossip keys. The primary key seals outgoing packets; every key opens incoming ones.
/// Rotation without downtime: add the new key everywhere, make it primary everywhere, then remove
/// the old one.
/// </summary>
public sealed class Keyring
{
    private readonly Lock _lock = new();
    private List<byte[]> _keys;

    public Keyring(IEnumerable<byte[]> keys)
    {
        _keys = [.. keys.Select(Check)];
        if (_keys.Count == 0)
        {
            throw new ArgumentException("a keyring needs at least one key");
        }
    }

    /// <summary>Parses base64 keys (16, 24 or 32 bytes: AES-128/192/256), the first being primary.</summary>
    public static Keyring FromBase64(IEnumerable<string> keys) => new(keys.Select(k =>
    {
        try
        {
            return Convert.FromBase64String(k.Trim());
        }
        catch (FormatException)
        {
            throw new ArgumentException("a gossip key must be base64 (generate one with: head -c 32 /dev/urandom | base64)");
        }
    }));

    public static string NewKeyBase64() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public byte[] Primary
    {
        get
        {
            lock (_lock)
            {
                return _keys[0];
            }
        }
    }

    public IReadOnlyList<byte[]> All
    {
        get
        {
            lock (_lock)
            {
                return _keys;
            }
        }
    }

    public void Add(byte[] key)
    {
        lock (_lock)
        {
            if (!_keys.Any(k => k.AsSpan().SequenceEqual(key)))
            {
                _keys = [.. _keys, Check(key)];
            }
        }
    }

    public void UsePrimary(byte[] key)
    {
        lock (_lock)
        {
            Add(key);
            _keys = [key, .. _keys.Where(k => !k.AsSpan().SequenceEqual(key))];
        }
    }

    public void Remove(byte[] key)
    {
        lock (_lock)
        {
            if (_keys[0].AsSpan().SequenceEqual(key))
            {
                throw new InvalidOperationException("the primary key cannot be removed; make another key primary first");
            }

            _keys = [.. _keys.Where(k => !k.AsSpan().SequenceEqual(key))];
        }
    }

    /// <summary>First four bytes of the key's SHA-256: tells receivers which key sealed a packet.</summary>
    public static uint KeyId(byte[] key) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(key));

    private static byte[] Check(byte[] key) =>
        key.Length is 16 or 24 or 32 ? key : throw new ArgumentException("a gossip key must be 16, 24 or 32 bytes");
}
