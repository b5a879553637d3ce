using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace StreamFarm.Server.Tls;

/// <summary>
/// The server's TLS certificate, read from PEM files and read again when they change (checked every
/// <see cref="TlsOptions.ReloadCheckInterval"/>; polling, because a watcher misses the renames that
/// certificate tools and Kubernetes secret updates use). Connections made before a reload keep their
/// session; new handshakes get the new certificate. A file that does not load (half written, wrong
/// key) is reported and the certificate in use stays.
/// </summary>
public sealed partial class CertificateStore : IDisposable
{
    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly ILogger _log;
    private readonly ITimer _timer;
    private (DateTime, long, DateTime, long) _seen;
    private volatile SslStreamCertificateContext _context;
    private long _reloads;
    private long _refusedSuites;

    public CertificateStore(TlsOptions options, TimeProvider time, ILogger log)
    {
        _certFile = options.CertFile!;
        _keyFile = options.KeyFile!;
        _log = log;
        _seen = Stamp();
        _context = Load(); // a certificate that does not load at start is a configuration error
        _timer = time.CreateTimer(_ => Check(), null, options.ReloadCheckInterval, options.ReloadCheckInterval);
    }

    /// <summary>The certificate new handshakes use.</summary>
    public X509Certificate2 Certificate => _context.TargetCertificate;

    /// <summary>Times the files changed and the new certificate was taken.</summary>
    public long Reloads => Interlocked.Read(ref _reloads);

    /// <summary>
    /// For the client-facing listeners (RTTP over TLS, HTTPS/WSS): TLS 1.2 and 1.3 only, and no
    /// <see cref="CipherSuitesPolicy"/>, so that .NET keeps one OpenSSL SSL_CTX for all handshakes;
    /// the suite restriction is <see cref="Protocol.TlsSuites.IsModern"/>, checked by <see cref="RequireModernSuite"/>
    /// before any application byte.
    /// </summary>
    /// <remarks>
    /// Why no policy here. On Linux, .NET (System.Net.Security, Interop.OpenSsl.AllocateSslHandle)
    /// takes the SSL_CTX from its process-wide cache (GetOrCreateSslContextHandle, keyed by
    /// SslContextCacheKey: client or server, protocols, certificate thumbprints) only when
    /// <c>AllowTlsResume</c> is on, the <c>System.Net.Security.DisableTlsResume</c> switch is off,
    /// <c>EncryptionPolicy</c> is <c>RequireEncryption</c> and <c>CipherSuitesPolicy</c> is null;
    /// otherwise every handshake runs AllocateSslContext (SSL_CTX_new, cipher lists, certificate and
    /// key) and frees it after. That cost 17–23 % of the server's CPU per handshake (docs/benchmarks.md,
    /// TLS).
    ///
    /// Why the restriction still holds. Without a policy OpenSSL negotiates from .NET's default list
    /// (ECDHE only: AES-GCM, and AES-CBC with SHA-256/384) or, where openssl.cnf sets a CipherString,
    /// from that, which may hold CBC-SHA1 and, with an RSA certificate, non forward-secret suites. The
    /// negotiated suite is then checked against the same allow-list the policy had, right after the
    /// handshake and before the connection reaches RTTP or HTTP; any other suite closes the
    /// connection with no application byte read or written. A peer cannot push the server to a weaker
    /// suite than both sides support (the Finished messages cover the whole ClientHello/ServerHello,
    /// and TLS 1.3's downgrade sentinel covers the version), and the server prefers its own order
    /// (.NET sets SSL_OP_CIPHER_SERVER_PREFERENCE, AEAD first), so the check only turns away clients
    /// that offer nothing modern, which the policy refused in the handshake instead. Resumed sessions
    /// are checked the same way (a resumption keeps the suite of its session).
    /// </remarks>
    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificateContext = _context,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ClientCertificateRequired = false,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
    };


    /// <summary>Handshakes closed by <see cref="RequireModernSuite"/> (a suite outside <see cref="Protocol.TlsSuites.IsModern"/>).</summary>
    public long RefusedSuites => Interlocked.Read(ref _refusedSuites);

    /// <summary>
    /// Connection middleware for a listener behind <c>UseHttps</c>: the connection goes on to
    /// <paramref name="next"/> (RTTP, HTTP) only when its negotiated suite <see cref="Protocol.TlsSuites.IsModern"/>;
    /// otherwise it is closed before any application byte is read or written.
    /// </summary>
    public ConnectionDelegate RequireModernSuite(ConnectionDelegate next) => context =>
    {
        var suite = context.Features.Get<ITlsHandshakeFeature>()?.NegotiatedCipherSuite;
        if (Protocol.TlsSuites.IsModern(suite))
        {
            return next(context);
        }

        Interlocked.Increment(ref _refusedSuites);
        Log.WeakSuite(_log, context.RemoteEndPoint, suite);
        context.Abort(new ConnectionAbortedException("TLS suite not allowed"));
        return Task.CompletedTask;
    };

    /// <summary>
    /// For routes (mutual TLS): the listening side's options, which ask for the peer's certificate
    /// and accept one that <paramref name="ca"/> signed.
    /// </summary>
    public SslServerAuthenticationOptions RouteServerOptions(X509Certificate2Collection ca)
    {
        var o = ServerOptions();
        o.ClientCertificateRequired = true;
        o.RemoteCertificateValidationCallback = (_, cert, _, errors) => SignedBy(cert, ca, errors);

        // Routes keep the policy: few, long-lived connections, so the SSL_CTX per handshake costs
        // nothing that matters, and the policy keeps their handshakes out of the shared SSL_CTX of the
        // client-facing listeners (no session made there can be resumed on the mutual-TLS port) and
        // makes the refusal of a weak suite the handshake's own. The listener checks IsModern too.
        if (OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD())
        {
            o.CipherSuitesPolicy = Suites;
        }

        return o;
    }

    /// <summary>For routes (mutual TLS): the connecting side's options, with this server's certificate and the farm's CA as the only trust.</summary>
    public SslClientAuthenticationOptions RouteClientOptions(X509Certificate2Collection ca, string address)
    {
        var o = new SslClientAuthenticationOptions
        {
            // The peer's identity is its route HELLO's HMAC over its id (RouteAuth); the certificate
            // must be the farm's (signed by its CA), whatever name it carries.
            TargetHost = address.LastIndexOf(':') is var colon and > 0 ? address[..colon] : address,
            ClientCertificateContext = _context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, cert, _, errors) => SignedBy(cert, ca, errors & ~SslPolicyErrors.RemoteCertificateNameMismatch),
        };
        if (OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD())
        {
            o.CipherSuitesPolicy = Suites;
        }

        return o;
    }

    /// <summary>Reads a CA file (PEM, one or more certificates).</summary>
    public static X509Certificate2Collection LoadAuthority(string file)
    {
        var ca = new X509Certificate2Collection();
        try
        {
            ca.ImportFromPemFile(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new InvalidDataException($"TLS CA {file}: {e.Message}", e);
        }

        if (ca.Count == 0)
        {
            throw new InvalidDataException($"TLS CA {file}: no certificate in it");
        }

        return ca;
    }

    // A certificate is accepted when it chains to one of the farm's CA certificates (and nothing else
    // is wrong with it); the machine's own roots are not trusted for routes.
    private static bool SignedBy(X509Certificate? certificate, X509Certificate2Collection ca, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate as X509Certificate2 ?? new X509Certificate2(certificate));
    }

    public void Dispose() => _timer.Dispose();

    // The allow-list of IsModern, as a policy (routes only; a policy is not supported on Windows).
    private static readonly CipherSuitesPolicy? Suites = OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD() ? new(
    [
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]) : null;

    private SslStreamCertificateContext Load()
    {
        X509Certificate2 leaf;
        X509Certificate2Collection chain;
        try
        {
            leaf = X509Certificate2.CreateFromPemFile(_certFile, _keyFile);
            chain = [];
            chain.ImportFromPemFile(_certFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new InvalidDataException($"TLS certificate {_certFile} with key {_keyFile}: {e.Message}", e);
        }

        if (!leaf.HasPrivateKey)
        {
            throw new InvalidDataException($"TLS certificate {_certFile}: the key in {_keyFile} does not match it");
        }

        if (leaf.NotAfter.ToUniversalTime() < DateTime.UtcNow)
        {
            Log.Expired(_log, _certFile, leaf.NotAfter.ToUniversalTime());
        }

        // The leaf is the first certificate of the file; the rest is its chain, sent to clients.
        var intermediates = new X509Certificate2Collection();
        foreach (var c in chain.Skip(1))
        {
            intermediates.Add(c);
        }

        return SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
    }

    private (DateTime, long, DateTime, long) Stamp()
    {
        var c = new FileInfo(_certFile);
        var k = new FileInfo(_keyFile);
        return (c.Exists ? c.LastWriteTimeUtc : default, c.Exists ? c.Length : -1, k.Exists ? k.LastWriteTimeUtc : default, k.Exists ? k.Length : -1);
    }

    private void Check()
    {
        var now = Stamp();
        if (now == _seen)
        {
            return;
        }

        try
        {
            var context = Load();
            _seen = now;
            _context = context;
            Interlocked.Increment(ref _reloads);
            var leaf = context.TargetCertificate;
            var subject = leaf.Subject;
            var notAfter = leaf.NotAfter.ToUniversalTime();
            Log.Reloaded(_log, _certFile, subject, notAfter);
        }
        catch (InvalidDataException e)
        {
            // Perhaps half written (the key file updated before the certificate): tried again at the
            // next check; the certificate in use stays.
            Log.ReloadFailed(_log, e.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "TLS certificate {File} reloaded: {Subject}, valid until {NotAfter:u}")]
        public static partial void Reloaded(ILogger logger, string file, string subject, DateTime notAfter);

        [LoggerMessage(EventId = 6002, Level = LogLevel.Warning, Message = "TLS certificate not reloaded, the one in use stays: {Reason}")]
        public static partial void ReloadFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 6003, Level = LogLevel.Warning, Message = "TLS certificate {File} expired at {NotAfter:u}")]
        public static partial void Expired(ILogger logger, string file, DateTime notAfter);

        // Debug: a client that offers no modern suite (a scanner, an old library) is not the server's fault.
        [LoggerMessage(EventId = 6004, Level = LogLevel.Debug, Message = "TLS connection from {Remote} closed after the handshake: suite {Suite} is not allowed")]
        public static partial void WeakSuite(ILogger logger, System.Net.EndPoint? remote, TlsCipherSuite? suite);
    }
}
