using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace StreamFarm.Server.Tls;

/// <summary>
/// A development certificate authority and server certificates signed by it, as PEM files
/// (<c>streamfarm cert</c>): ECDSA P-256, SHA-256. For demos and tests; production certificates come
/// from the operator's own CA or ACME.
/// </summary>
public static class DevCertificates
{
    /// <summary>
    /// Makes <c>ca.pem</c>/<c>ca-key.pem</c> in <paramref name="directory"/> unless they exist (then the
    /// CA is reused), and a server certificate <c>NAME.pem</c> (the certificate, then the CA's) with
    /// <c>NAME-key.pem</c>, valid for the given DNS names and IP addresses. Returns the two paths.
    /// </summary>
    public static (string Cert, string Key) Issue(string directory, string name, IReadOnlyList<string> dnsNames, IReadOnlyList<IPAddress> addresses, TimeSpan validity, DateTimeOffset? notBefore = null)
    {
        Directory.CreateDirectory(directory);
        var from = notBefore ?? DateTimeOffset.UtcNow.AddMinutes(-5);
        using var ca = LoadOrCreateAuthority(directory, from);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames)
        {
            san.AddDnsName(dns);
        }

        foreach (var ip in addresses)
        {
            san.AddIpAddress(ip);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var until = from + validity;
        if (until > ca.NotAfter)
        {
            until = ca.NotAfter;
        }

        using var cert = request.Create(ca, from, until, serial);
        var certPath = Path.Combine(directory, name + ".pem");
        var keyPath = Path.Combine(directory, name + "-key.pem");
        WriteAtomically(certPath, cert.ExportCertificatePem() + "\n" + ca.ExportCertificatePem() + "\n");
        WriteAtomically(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        return (certPath, keyPath);
    }

    private static X509Certificate2 LoadOrCreateAuthority(string directory, DateTimeOffset from)
    {
        var certPath = Path.Combine(directory, "ca.pem");
        var keyPath = Path.Combine(directory, "ca-key.pem");
        if (File.Exists(certPath) && File.Exists(keyPath))
        {
            return X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=StreamFarm development CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var ca = request.CreateSelfSigned(from, from.AddYears(10));
        WriteAtomically(certPath, ca.ExportCertificatePem() + "\n");
        WriteAtomically(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        return ca;
    }

    // Written to a temporary file and renamed, so a server that reloads never reads half a file.
    private static void WriteAtomically(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, path.EndsWith("-key.pem", StringComparison.Ordinal) ? UnixFileMode.UserRead | UnixFileMode.UserWrite : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        File.Move(temp, path, overwrite: true);
    }
}
