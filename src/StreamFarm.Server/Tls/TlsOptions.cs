namespace StreamFarm.Server.Tls;

/// <summary>
/// TLS for clients (<c>tls</c> in the config file): RTTP over TLS on its own port and HTTPS/WSS on
/// another, from a PEM certificate and key that are read again when the files change. On when both
/// files are given.
/// </summary>
public sealed class TlsOptions
{
    /// <summary>PEM file with the server's certificate (and, after it, any intermediate certificates).</summary>
    public string? CertFile { get; set; }

    /// <summary>PEM file with the certificate's private key (PKCS#8, RSA or EC; not encrypted).</summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// PEM file of the farm's certificate authority. When set (with a certificate), routes between
    /// servers use mutual TLS: each side presents its certificate and accepts only certificates this
    /// CA signed. Every server of the farm must then have it.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>RTTP over TLS. 0 picks a free port (tests).</summary>
    public int Port { get; set; } = 7443;

    /// <summary>HTTPS: the HTTP port's pages and WebSocket RTTP (<c>wss://host:port/rttp</c>). 0 picks a free port.</summary>
    public int HttpsPort { get; set; } = 7481;

    /// <summary>How often the certificate and key files are checked for a change.</summary>
    public TimeSpan ReloadCheckInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// TLS only: the plain ports (RTTP over TCP, and HTTP with WebSocket RTTP) are not opened; the
    /// farm table advertises the TLS addresses alone, and clients must use them. Routes between
    /// servers are not affected (mutual TLS for them is <see cref="CaFile"/>).
    /// </summary>
    public bool Only { get; set; }

    public bool Enabled => !string.IsNullOrEmpty(CertFile) || !string.IsNullOrEmpty(KeyFile);

    /// <summary>Checks the options; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (!Enabled)
        {
            if (Only)
            {
                throw new ArgumentException("tls.only (--tls-only) turns the plain ports off, so it needs TLS on: a certificate and a key (--tls-cert and --tls-key)");
            }

            if (!string.IsNullOrEmpty(CaFile))
            {
                throw new ArgumentException("tls.caFile (TLS routes) needs the server's own certificate too (--tls-cert and --tls-key)");
            }

            return;
        }

        if (string.IsNullOrEmpty(CertFile) || string.IsNullOrEmpty(KeyFile))
        {
            throw new ArgumentException("TLS needs both a certificate and a key (--tls-cert and --tls-key)");
        }

        if (!string.IsNullOrEmpty(CaFile) && !File.Exists(CaFile))
        {
            throw new ArgumentException($"tls.caFile '{CaFile}' does not exist");
        }

        if (Port is < 0 or > 65535 || HttpsPort is < 0 or > 65535)
        {
            throw new ArgumentException("TLS ports must be between 0 and 65535");
        }

        if (ReloadCheckInterval < TimeSpan.FromMilliseconds(100))
        {
            throw new ArgumentException("tls.reloadCheckInterval must be at least 100 ms");
        }
    }
}
