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
}
