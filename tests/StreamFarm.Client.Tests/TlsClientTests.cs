using System.Net;
using System.Security.Cryptography.X509Certificates;
using StreamFarm.Client.Tests.Kit;
using StreamFarm.Server.Tls;

namespace StreamFarm.Client.Tests;

/// <summary>
/// The two-step connect over TLS: three real servers with certificates from a development CA on
/// 127.0.44.2-4; the client trusts that CA only, finds the first server through DNS at the TLS
/// port, and moves to its chosen server's <c>tls</c> address from the farm table.
/// </summary>
public sealed class TlsClientTests : IDisposable
{
    private const string Subnet = "127.0.44";
    private const int TlsPort = 17443;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-client-tls-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task FarmClient_WithTls_ConnectsThroughDnsAndTheTablesTlsAddresses_AndReceivesImages()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet, o =>
        {
            var (cert, key) = DevCertificates.Issue(_dir, o.Id, [], [IPAddress.Parse(o.Listen)], TimeSpan.FromDays(1));
            o.Tls.CertFile = cert;
            o.Tls.KeyFile = key;
            o.Tls.Port = TlsPort;
            o.Tls.HttpsPort = 0;
        });
        await using var publisher = await FarmPublisher.StartAsync(farm, "/TLS/A");
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(Path.Combine(_dir, "ca.pem"));
        var options = ClientWatch.Options(farm, Selection.Selectors.Default(), seed: 3) with
        {
            Port = TlsPort,
            Connection = new RttpConnectionOptions { ClientName = "tls-test", UseTls = true, TrustedCertificates = ca },
        };
        await using var client = new FarmClient(options);
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        await foreach (var m in client.SubscribeAsync("/TLS/A", patience.Token))
        {
            Assert.IsType<SubjectImage>(m);
            break;
        }

        // The session is on a TLS address: the chosen server's tls= entry of the table.
        var chosen = farm[client.ServerId!];
        Assert.Equal(chosen.Server.TlsAddresses.Tls, client.Endpoint);
        Assert.EndsWith($":{TlsPort}", client.Endpoint, StringComparison.Ordinal);
    }

    /// <summary>
    /// A TLS server that chooses a suite outside the allowed ones (here openssl's s_server offering
    /// only TLS 1.2 ECDHE with AES-CBC, which .NET's default list on Linux accepts) is refused by the
    /// client before HELLO, with the suite in the error; the same server with AES-GCM gets past TLS
    /// (and then times out waiting for a WELCOME it never sends).
    /// </summary>
    [Theory]
    [InlineData("ECDHE-ECDSA-AES128-SHA256", true)]
    [InlineData("ECDHE-ECDSA-AES128-GCM-SHA256", false)]
    public async Task Connection_RefusesAServerThatChoseAWeakSuite(string suite, bool refused)
    {
        var openssl = new[] { "/usr/bin/openssl", "/bin/openssl" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("openssl is not installed (scripts/setup.sh installs it)");
        var ip = IPAddress.Parse($"{Subnet}.9");
        var (cert, key) = DevCertificates.Issue(_dir, "weak", [], [ip], TimeSpan.FromDays(1));
        var port = refused ? 17451 : 17452;
        var start = new System.Diagnostics.ProcessStartInfo(openssl) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in new[] { "s_server", "-accept", $"{ip}:{port}", "-cert", cert, "-key", key, "-tls1_2", "-cipher", suite, "-quiet" })
        {
            start.ArgumentList.Add(a);
        }

        using var server = System.Diagnostics.Process.Start(start)!;
        try
        {
            // Until s_server listens.
            await Eventually.TrueAsync(() =>
            {
                using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                try
                {
                    probe.Connect(ip, port);
                    return true;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    return false;
                }
            }, () => "openssl s_server listens");

            var ca = new X509Certificate2Collection();
            ca.ImportFromPemFile(Path.Combine(_dir, "ca.pem"));
            var options = new RttpConnectionOptions { ClientName = "suite-test", UseTls = true, TrustedCertificates = ca, ConnectTimeout = TimeSpan.FromSeconds(2) };
            var error = await Assert.ThrowsAsync<RttpConnectionException>(() => RttpConnection.ConnectAsync(ip.ToString(), port, options));
            if (refused)
            {
                Assert.Contains("not a modern suite", error.Message, StringComparison.Ordinal);
                Assert.Contains("CBC", error.Message, StringComparison.Ordinal);
            }
            else
            {
                Assert.DoesNotContain("suite", error.Message, StringComparison.Ordinal);
            }
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
    }
}
