using System.Security.Cryptography;
using System.Text;
using StreamFarm.Membership;

namespace StreamFarm.Server.Routes;

/// <summary>
/// Authenticates route connections between servers with the farm key. A route's HELLO carries
/// <c>route=&lt;from&gt; ts=&lt;unix ms&gt; nonce=&lt;hex&gt; mac=&lt;base64&gt;</c>, where the MAC is
/// HMAC-SHA256, under a key derived from a farm key (HKDF, so the gossip cipher key is never used
/// for anything else), over <c>from|to|ts|nonce</c>. Binding the target's id stops a captured
/// HELLO from opening a route to another server; the clock window (two minutes) and the cache of
/// nonces seen in it stop it from being replayed to the same one. Every key of the keyring is
/// accepted, so keys rotate as the gossip keys do.
/// </summary>
/// <remarks>
/// Hand-written because no library does this particular handshake; the primitives (HKDF, HMAC,
/// fixed-time comparison) are the framework's.
/// </remarks>
internal sealed class RouteAuth(Keyring keys, TimeProvider time)
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(2);
    private const int MaxNonces = 100_000;
    private static readonly byte[] Info = "streamfarm route v1"u8.ToArray();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _seen = new(StringComparer.Ordinal);
    private readonly Queue<(string Nonce, long Ts)> _order = new();

    /// <summary>The credential fields of a route HELLO from <paramref name="from"/> to <paramref name="to"/>.</summary>
    public string Credentials(string from, string to)
    {
        var ts = time.GetUtcNow().ToUnixTimeMilliseconds();
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var mac = Convert.ToBase64String(Mac(keys.Primary, from, to, ts, nonce));
        return $"route={from} ts={ts} nonce={nonce} mac={mac}";
    }

    /// <summary>Null when the credentials are valid; otherwise why not (for the ERR text and the log).</summary>
    public string? Verify(string from, string to, string? tsText, string? nonce, string? macText)
    {
        if (tsText is null || nonce is null || macText is null || !long.TryParse(tsText, out var ts) || nonce.Length is < 16 or > 64)
        {
            return "a route HELLO needs route= ts= nonce= mac=";
        }

        byte[] mac;
        try
        {
            mac = Convert.FromBase64String(macText);
        }
        catch (FormatException)
        {
            return "mac is not base64";
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (Math.Abs(now - ts) > Window.TotalMilliseconds)
        {
            return "route HELLO outside the clock window (are the servers' clocks in sync?)";
        }

        var ok = false;
        foreach (var key in keys.All)
        {
            ok |= CryptographicOperations.FixedTimeEquals(mac, Mac(key, from, to, ts, nonce));
        }

        if (!ok)
        {
            return "wrong route credentials (not this farm's key)";
        }

        lock (_lock)
        {
            while (_order.TryPeek(out var old) && (now - old.Ts > 2 * Window.TotalMilliseconds || _order.Count >= MaxNonces))
            {
                _order.Dequeue();
                _seen.Remove(old.Nonce);
            }

            if (!_seen.TryAdd(nonce, ts))
            {
                return "route HELLO replayed";
            }

            _order.Enqueue((nonce, ts));
        }

        return null;
    }

    private static byte[] Mac(byte[] farmKey, string from, string to, long ts, string nonce)
    {
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, farmKey, 32, salt: [], info: Info);
        return HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{from}|{to}|{ts}|{nonce}"));
    }
}
