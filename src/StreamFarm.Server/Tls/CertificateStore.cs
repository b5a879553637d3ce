using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
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

    /// <summary>TLS 1.2 and 1.3 only; on Linux, AEAD suites with forward secrecy only.</summary>
    public SslServerAuthenticationOptions ServerOptions()
    {
        var o = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD())
        {
            o.CipherSuitesPolicy = Suites;
        }

        return o;
    }

    /// <summary>
    /// For routes (mutual TLS): the listening side's options, which ask for the peer's certificate
    /// and accept one that <paramref name="ca"/> signed.
    /// </summary>
    public SslServerAuthenticationOptions RouteServerOptions(X509Certificate2Collection ca)
    {
        var o = ServerOptions();
        o.ClientCertificateRequired = true;
        o.RemoteCertificateValidationCallback = (_, cert, _, errors) => SignedBy(cert, ca, errors);
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
    }
}
