using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// The certificates of a TLS run, the same for StreamFarm and nats-server (ECDSA P-256, made by
/// <c>streamfarm cert</c> in a temporary directory), and the client side of a TLS connection to
/// either: StreamFarm speaks TLS from the first byte on its TLS port; nats-server 2.9 sends INFO in
/// clear and then upgrades, as its clients do.
/// </summary>
public sealed class BenchTls
{
    private BenchTls(string certFile, string keyFile, X509Certificate2Collection ca)
    {
        CertFile = certFile;
        KeyFile = keyFile;
        Ca = ca;
    }

    public string CertFile { get; }

    public string KeyFile { get; }

    /// <summary>The development CA that signed the certificate: the only root the clients trust.</summary>
    public X509Certificate2Collection Ca { get; }

    /// <summary>Makes a CA and a certificate for <paramref name="hosts"/> with the product's own <c>cert</c> command.</summary>
    public static async Task<BenchTls> CreateAsync(ServerLauncher launcher, IEnumerable<IPAddress> hosts, CancellationToken cancel)
    {
        var dir = Directory.CreateTempSubdirectory("streamfarm-bench-tls-").FullName;
        List<string> args = [.. launcher.Arguments, "cert", "--dir", dir, "--name", "bench"];
        foreach (var host in hosts)
        {
            args.Add("--host");
            args.Add(host.ToString());
        }

        var run = await ChildProcess.RunToEndAsync(launcher.FileName, args, TimeSpan.FromSeconds(60), cancel);
        if (!run.Succeeded)
        {
            throw new BenchException($"{run.CommandLine} failed: {run.Errors}");
        }

        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(Path.Combine(dir, "ca.pem"));
        return new BenchTls(Path.Combine(dir, "bench.pem"), Path.Combine(dir, "bench-key.pem"), ca);
    }

    /// <summary>
    /// The TLS stream over a connected socket, authenticated against <see cref="Ca"/>; for NATS
    /// (<paramref name="natsInfoFirst"/>) the clear INFO line is read first.
    /// </summary>
    public async Task<SslStream> AuthenticateAsync(Socket socket, IPEndPoint endpoint, bool natsInfoFirst, CancellationToken cancel)
    {
        var network = new NetworkStream(socket, ownsSocket: true);
        if (natsInfoFirst)
        {
            await ReadLineAsync(network, "INFO", cancel); // in clear, before the upgrade
        }

        var tls = new SslStream(network, leaveInnerStreamOpen: false);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(Ca);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = endpoint.Address.ToString(), CertificateChainPolicy = policy }, cancel);
        return tls;
    }

    /// <summary>Reads lines (byte by byte: greetings are short) until one starts with <paramref name="prefix"/>.</summary>
    public static async Task ReadLineAsync(Stream stream, string prefix, CancellationToken cancel)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, cancel) == 0)
            {
                throw new IOException($"closed while waiting for {prefix} (got '{line}')");
            }

            if (one[0] == (byte)'\n')
            {
                if (line.ToString().StartsWith(prefix, StringComparison.Ordinal))
                {
                    return;
                }

                line.Clear();
            }
            else if (line.Length < 65536)
            {
                line.Append((char)one[0]);
            }
        }
    }
}
