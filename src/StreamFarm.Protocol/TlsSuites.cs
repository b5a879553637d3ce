using System.Net.Security;

namespace StreamFarm.Protocol;

/// <summary>
/// The TLS cipher suites a StreamFarm connection may use, on either side: TLS 1.3's AEAD suites,
/// and TLS 1.2's ECDHE (forward secrecy) with AES-GCM or ChaCha20-Poly1305. No CBC, no RSA or
/// static key exchange. Servers close a connection that negotiated anything else before any
/// application byte (docs/operations.md, TLS); the .NET client refuses such a server the same way.
/// </summary>
public static class TlsSuites
{
    /// <summary>True when <paramref name="suite"/> is one of the allowed suites (false for none).</summary>
    public static bool IsModern(TlsCipherSuite? suite) => suite is
        TlsCipherSuite.TLS_AES_128_GCM_SHA256 or
        TlsCipherSuite.TLS_AES_256_GCM_SHA384 or
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256 or
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 or
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 or
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 or
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256;
}
