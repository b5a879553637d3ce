using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using StreamFarm.Server.Tests.Kit;
using StreamFarm.Server.Tls;

namespace StreamFarm.Server.Tests;

// Run alone, after the parallel classes: the suite tests start dozens of openssl clients and
// handshakes, a load that made the idle-timeout tests of other classes (BadInputTests) miss their
// timing when run beside them.
[CollectionDefinition(nameof(TlsTests), DisableParallelization = true)]
public sealed class TlsTestsCollection
{
}

/// <summary>
/// RTTP over TLS and HTTPS on a real node with a certificate from <see cref="DevCertificates"/>:
/// clients that trust only the development CA connect, the farm table advertises the TLS addresses,
/// old protocol versions are refused, and a certificate replaced on disk is taken for new handshakes
/// while connections made before keep working.
/// </summary>
[Collection(nameof(TlsTests))]
public sealed class TlsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sf-tls-" + Guid.NewGuid().ToString("N"));

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

    private Task<StreamFarmNode> StartAsync(string ip, TimeSpan? reload = null, Action<ServerOptions>? more = null)
    {
        var (cert, key) = DevCertificates.Issue(_dir, "node", ["node.farm.test"], [IPAddress.Parse(ip)], TimeSpan.FromDays(1));
        return TestNode.StartAsync(o =>
        {
            o.Listen = ip;
            o.Tls.CertFile = cert;
            o.Tls.KeyFile = key;
            o.Tls.Port = 0;
            o.Tls.HttpsPort = 0;
            o.Tls.ReloadCheckInterval = reload ?? TimeSpan.FromMilliseconds(200);
            more?.Invoke(o);
        });
    }

    private X509Certificate2 Ca() => X509CertificateLoader.LoadCertificateFromFile(Path.Combine(_dir, "ca.pem"));

    // Trusts the development CA alone (not the machine's roots), as a client given --ca does.
    private bool TrustCa(X509Certificate2? cert)
    {
        if (cert is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert);
    }

    private async Task<(SslStream Tls, StreamReader Reader)> ConnectAsync(IPEndPoint endpoint, string host)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(endpoint);
        var tls = new SslStream(tcp.GetStream(), false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = host,
            RemoteCertificateValidationCallback = (_, cert, _, errors) =>
                (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && TrustCa(cert as X509Certificate2),
        });
        return (tls, new StreamReader(tls, new UTF8Encoding(false)));
    }

    private static async Task<string> ExpectAsync(StreamReader reader, string prefix)
    {
        using var patience = new CancellationTokenSource(LineClient.Patience);
        while (true)
        {
            var line = await reader.ReadLineAsync(patience.Token) ?? throw new IOException($"the server closed before '{prefix}'");
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }
        }
    }

    [Fact]
    public async Task RttpOverTls_WelcomesAClientThatTrustsOnlyTheCa_AndTheTableAdvertisesTheTlsAddresses()
    {
        await using var node = await StartAsync("127.0.0.61");
        var (tls, reader) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.61");
        await using (tls)
        {
            Assert.True(tls.SslProtocol is System.Security.Authentication.SslProtocols.Tls12 or System.Security.Authentication.SslProtocols.Tls13);
            await tls.WriteAsync("HELLO 1 client=tls\n"u8.ToArray());
            await ExpectAsync(reader, "WELCOME 1 ");
            var server = await ExpectAsync(reader, "SERVER ");
            Assert.Contains($" tls=127.0.0.61:{node.TlsEndPoint!.Port}", server, StringComparison.Ordinal);
            Assert.Contains($" wss=wss://127.0.0.61:{node.HttpsEndPoint!.Port}/rttp", server, StringComparison.Ordinal);
            await tls.WriteAsync("PING t1\n"u8.ToArray());
            await ExpectAsync(reader, "PONG t1");
        }
    }

    [Fact]
    public async Task TlsOnly_LeavesThePlainPortsClosed_AndTheTableAdvertisesTheTlsAddressesAlone()
    {
        await using var node = await StartAsync("127.0.0.66", more: o =>
        {
            o.Tls.Only = true;
            o.TcpPort = 17466; // would be opened without tls.only: nothing may listen there
            o.HttpPort = 17467;
        });

        Assert.False(node.HasPlainPorts);
        Assert.Throws<InvalidOperationException>(() => node.TcpEndPoint);
        foreach (var port in new[] { 17466, 17467 })
        {
            using var plain = new TcpClient();
            var refused = await Assert.ThrowsAsync<SocketException>(() => plain.ConnectAsync("127.0.0.66", port));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        var (tls, reader) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.66");
        await using (tls)
        {
            await tls.WriteAsync("HELLO 1 client=tls-only\n"u8.ToArray());
            await ExpectAsync(reader, "WELCOME 1 ");
            var server = await ExpectAsync(reader, "SERVER ");
            Assert.Contains($" tls=127.0.0.66:{node.TlsEndPoint!.Port}", server, StringComparison.Ordinal);
            Assert.DoesNotContain("17466", server, StringComparison.Ordinal);
        }

        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, errors) => (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && TrustCa(cert) };
        using var http = new HttpClient(handler);
        var farm = await http.GetStringAsync($"https://127.0.0.66:{node.HttpsEndPoint!.Port}/farm");
        Assert.Contains("\"tcp\":\"\"", farm, StringComparison.Ordinal);
        Assert.Contains($"\"tls\":\"127.0.0.66:{node.TlsEndPoint!.Port}\"", farm, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TlsOnly_WithoutACertificate_StopsTheStartWithAClearError()
    {
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => TestNode.StartAsync(o => o.Tls.Only = true));
        Assert.Contains("--tls-cert", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Https_ServesHealthAndFarm_ToAClientThatTrustsOnlyTheCa()
    {
        await using var node = await StartAsync("127.0.0.62");
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, errors) => (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && TrustCa(cert) };
        using var http = new HttpClient(handler);
        var baseUrl = $"https://127.0.0.62:{node.HttpsEndPoint!.Port}";
        Assert.Equal("ok", (await http.GetStringAsync(baseUrl + "/healthz")).Trim());
        Assert.Contains("\"wss\":\"wss://127.0.0.62:", await http.GetStringAsync(baseUrl + "/farm"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Curl_WithTheCa_Succeeds_AndWithoutIt_FailsVerification()
    {
        var curl = Tool("curl");

        await using var node = await StartAsync("127.0.0.63");
        var url = $"https://127.0.0.63:{node.HttpsEndPoint!.Port}/healthz";
        var (ok, output) = await RunAsync(curl, ["-sS", "--cacert", Path.Combine(_dir, "ca.pem"), url]);
        Assert.True(ok, output);
        Assert.Equal("ok", output.Trim());
        var (untrusted, error) = await RunAsync(curl, ["-sS", url]);
        Assert.False(untrusted, error);
        Assert.Contains("certificate", error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task OpensslClient_Tls12AndTls13Accepted_Tls11Refused()
    {
        var openssl = Tool("openssl");

        await using var node = await StartAsync("127.0.0.64");
        var target = $"127.0.0.64:{node.TlsEndPoint!.Port}";
        var ca = Path.Combine(_dir, "ca.pem");
        foreach (var version in new[] { "-tls1_2", "-tls1_3" })
        {
            var (ok, output) = await RunAsync(openssl, ["s_client", "-connect", target, "-CAfile", ca, version, "-verify_return_error", "-brief"], stdin: "HELLO 1 client=openssl\n", waitForStdinClose: true);
            Assert.True(ok, $"{version}: {output}");
            Assert.Contains("Verification: OK", output, StringComparison.Ordinal);
        }

        // The client is allowed to offer TLS 1.1 (security level 0): the refusal is the server's alert.
        var (old, refused) = await RunAsync(openssl, ["s_client", "-connect", target, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-brief"], stdin: "");
        Assert.False(old, refused);
        Assert.Contains("alert protocol version", refused, StringComparison.Ordinal);

        // TLS 1.2 without forward secrecy (RSA key exchange, CBC) is refused too.
        var (weak, weakRefused) = await RunAsync(openssl, ["s_client", "-connect", target, "-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0", "-brief"], stdin: "");
        Assert.False(weak, weakRefused);
        Assert.Contains("handshake failure", weakRefused, StringComparison.Ordinal);
    }

    // The allow-list: TLS 1.3's suites and ECDHE with AES-GCM or ChaCha20-Poly1305, nothing else of
    // all the suites .NET knows (no CBC, no RSA/DH/PSK key exchange; ARIA and Camellia left out). The client-facing options carry no CipherSuitesPolicy (so .NET shares its OpenSSL
    // context); the route options keep it on Linux.
    [Fact]
    public void SuiteAllowList_IsAeadWithForwardSecrecyOnly_AndOnlyRoutesSetAPolicy()
    {
        foreach (var suite in Enum.GetValues<System.Net.Security.TlsCipherSuite>())
        {
            var name = suite.ToString();
            var tls13 = name is "TLS_AES_128_GCM_SHA256" or "TLS_AES_256_GCM_SHA384" or "TLS_CHACHA20_POLY1305_SHA256";
            var modern12 = name.StartsWith("TLS_ECDHE_", StringComparison.Ordinal) && !name.Contains("PSK", StringComparison.Ordinal)
                && ((name.Contains("_WITH_AES_", StringComparison.Ordinal) && name.Contains("_GCM_", StringComparison.Ordinal)) || name.Contains("_WITH_CHACHA20_POLY1305_", StringComparison.Ordinal))
                && (name.Contains("_ECDSA_", StringComparison.Ordinal) || name.Contains("_RSA_", StringComparison.Ordinal));
            Assert.True(StreamFarm.Protocol.TlsSuites.IsModern(suite) == (tls13 || modern12), name);
        }

        Assert.False(StreamFarm.Protocol.TlsSuites.IsModern(null));
        var (cert, key) = DevCertificates.Issue(_dir, "node", ["node.farm.test"], [IPAddress.Loopback], TimeSpan.FromDays(1));
        using var store = new CertificateStore(new TlsOptions { CertFile = cert, KeyFile = key }, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        Assert.Null(store.ServerOptions().CipherSuitesPolicy);
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13, store.ServerOptions().EnabledSslProtocols);
        if (OperatingSystem.IsLinux())
        {
            var ca = CertificateStore.LoadAuthority(Path.Combine(_dir, "ca.pem"));
            Assert.NotNull(store.RouteServerOptions(ca).CipherSuitesPolicy);
            Assert.NotNull(store.RouteClientOptions(ca, "127.0.0.1:7422").CipherSuitesPolicy);
        }
    }

    // The suite restriction is a check right after the handshake (CertificateStore.ServerOptions),
    // not a CipherSuitesPolicy: a client that offers only CBC or non forward-secret suites may complete
    // a handshake the OpenSSL defaults allow, and must then be closed before any RTTP or HTTP byte.
    // With an ECDSA certificate (streamfarm cert) and an RSA one (the product takes either).
    [Theory]
    [InlineData("ecdsa", "127.0.82.1")]
    [InlineData("rsa", "127.0.82.2")]
    public async Task OpensslClient_OnlyModernSuitesReachRttpAndHttps_WithAnEcdsaOrRsaCertificate(string kind, string ip)
    {
        var openssl = Tool("openssl");
        string cert, key, ca;
        if (kind == "rsa")
        {
            Directory.CreateDirectory(_dir);
            cert = Path.Combine(_dir, "rsa.pem");
            key = Path.Combine(_dir, "rsa-key.pem");
            var (made, why) = await RunAsync(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=node", "-addext", $"subjectAltName=IP:{ip}"]);
            Assert.True(made, why);
            ca = cert;
        }
        else
        {
            (cert, key) = DevCertificates.Issue(_dir, "node", ["node.farm.test"], [IPAddress.Parse(ip)], TimeSpan.FromDays(1));
            ca = Path.Combine(_dir, "ca.pem");
        }

        await using var node = await TestNode.StartAsync(o =>
        {
            o.Listen = ip;
            o.Tls.CertFile = cert;
            o.Tls.KeyFile = key;
            o.Tls.Port = 0;
            o.Tls.HttpsPort = 0;
        });
        var rttp = $"{ip}:{node.TlsEndPoint!.Port}";
        var https = $"{ip}:{node.HttpsEndPoint!.Port}";
        const string hello = "HELLO 1 client=openssl\nPING s1\n";
        const string get = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        var au = kind == "rsa" ? "RSA" : "ECDSA";

        // Accepted: TLS 1.3 (each of its suites), TLS 1.2 as offered by default, and TLS 1.2 with
        // ECDHE and AES-GCM. (TLS 1.2 with ChaCha20-Poly1305 alone is allowed by the check but not in
        // .NET's default OpenSSL list, so such a client is refused in the handshake: see
        // docs/operations.md, 5.5.)
        string[][] modern =
        [
            ["-tls1_3"],
            ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
            ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
            ["-tls1_2"],
            ["-tls1_2", "-cipher", $"ECDHE-{au}-AES128-GCM-SHA256"],
            ["-tls1_2", "-cipher", $"ECDHE-{au}-AES256-GCM-SHA384"],
        ];
        foreach (var args in modern)
        {
            var output = await SessionAsync(openssl, ["s_client", "-connect", rttp, "-CAfile", ca, "-verify_return_error", .. args], hello, "PONG s1");
            Assert.True(output.Contains("WELCOME 1 ", StringComparison.Ordinal) && output.Contains("PONG s1", StringComparison.Ordinal), $"{string.Join(' ', args)}: {output}");
            var web = await SessionAsync(openssl, ["s_client", "-connect", https, "-CAfile", ca, "-verify_return_error", .. args], get, "\nok");
            Assert.True(web.Contains("HTTP/1.1 200", StringComparison.Ordinal), $"{string.Join(' ', args)}: {web}");
        }

        // Refused, in the handshake or right after it, with no RTTP or HTTP byte either way: CBC with
        // ECDHE (SHA-1, SHA-256, SHA-384 MACs), and key exchange without forward secrecy (RSA), AEAD
        // or not. The client allows everything (security level 0): the refusal is the server's.
        string[] weak =
        [
            $"ECDHE-{au}-AES128-SHA", $"ECDHE-{au}-AES256-SHA", $"ECDHE-{au}-AES128-SHA256", $"ECDHE-{au}-AES256-SHA384",
            "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES128-SHA256",
        ];
        var completed = 0;
        foreach (var suite in weak)
        {
            var output = await SessionAsync(openssl, ["s_client", "-connect", rttp, "-CAfile", ca, "-tls1_2", "-cipher", suite + ":@SECLEVEL=0"], hello, "PONG s1");
            Assert.DoesNotContain("WELCOME", output, StringComparison.Ordinal);
            Assert.DoesNotContain("PONG", output, StringComparison.Ordinal);
            completed += output.Contains("Cipher is " + suite, StringComparison.Ordinal) ? 1 : 0;
            var web = await SessionAsync(openssl, ["s_client", "-connect", https, "-CAfile", ca, "-tls1_2", "-cipher", suite + ":@SECLEVEL=0"], get, "\nok");
            Assert.DoesNotContain("HTTP/1.1", web, StringComparison.Ordinal);
        }

        // Where a handshake completed (.NET's default list has ECDHE with AES-CBC and SHA-256/384;
        // a distribution's CipherString may allow more), the check closed it, and counted it.
        Assert.True(node.Certificates!.RefusedSuites >= 2 * completed, $"{node.Certificates.RefusedSuites} refused for {completed} completed weak handshakes");
        using (var http = new HttpClient { BaseAddress = new Uri($"http://{ip}:{node.HttpEndPoint.Port}") })
        {
            Assert.Contains($"streamfarm_tls_suite_refused_total {node.Certificates.RefusedSuites}\n", await http.GetStringAsync("/metrics"), StringComparison.Ordinal);
        }

        // TLS 1.0 and 1.1 are refused in the handshake.
        foreach (var version in new[] { "-tls1", "-tls1_1" })
        {
            var refused = await SessionAsync(openssl, ["s_client", "-connect", rttp, version, "-cipher", "DEFAULT@SECLEVEL=0"], hello, "PONG s1");
            Assert.Contains("alert protocol version", refused, StringComparison.Ordinal);
            Assert.DoesNotContain("WELCOME", refused, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ACertificateReplacedOnDisk_IsUsedForNewHandshakes_AndEarlierConnectionsKeepWorking()
    {
        await using var node = await StartAsync("127.0.0.65");
        var (before, beforeReader) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.65");
        await using (before)
        {
            await before.WriteAsync("HELLO 1 client=before\n"u8.ToArray());
            await ExpectAsync(beforeReader, "WELCOME 1 ");
            var first = before.RemoteCertificate!.GetSerialNumberString();

            DevCertificates.Issue(_dir, "node", ["node.farm.test"], [IPAddress.Parse("127.0.0.65")], TimeSpan.FromDays(2));
            var clock = Stopwatch.StartNew();
            string now;
            do
            {
                Assert.True(clock.Elapsed < LineClient.Patience, "the new certificate was not taken");
                await Task.Delay(100);
                var (probe, _) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.65");
                await using (probe)
                {
                    now = probe.RemoteCertificate!.GetSerialNumberString();
                }
            }
            while (now == first);

            Assert.Equal(1, node.Certificates!.Reloads);

            // The connection made with the old certificate goes on.
            await before.WriteAsync("PING still\n"u8.ToArray());
            await ExpectAsync(beforeReader, "PONG still");
        }
    }

    [Fact]
    public async Task CertificateRotatedThreeTimesUnderLoad_NoConnectionDropped_EveryUpdateDelivered()
    {
        // 20 subscribers and a publisher over TLS; the certificate is replaced three times while the
        // publisher publishes. Every connection made before a rotation keeps working (its session
        // was negotiated with the old certificate), each subscriber gets every update in sequence,
        // and new handshakes take each new certificate.
        await using var node = await StartAsync("127.0.0.67");
        var subscribers = new List<(SslStream Tls, StreamReader Reader)>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var (tls, reader) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.67");
                subscribers.Add((tls, reader));
                await tls.WriteAsync(Encoding.ASCII.GetBytes($"HELLO 1 client=rot{i}\nSUB /rot/x\n"));
                await ExpectAsync(reader, "WELCOME 1 ");
            }

            var (pub, pubReader) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.67");
            await using (pub)
            {
                await pub.WriteAsync("HELLO 1 client=rot-pub\n"u8.ToArray());
                await ExpectAsync(pubReader, "WELCOME 1 ");
                using var stop = new CancellationTokenSource();
                var published = 0;
                var publishing = Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        await pub.WriteAsync(Encoding.ASCII.GetBytes($"PUB /rot/x n={++published}\n"));
                        await Task.Delay(2);
                    }
                });

                async Task<string> SerialAsync()
                {
                    var (probe, _) = await ConnectAsync(node.TlsEndPoint!, "127.0.0.67");
                    await using (probe)
                    {
                        return probe.RemoteCertificate!.GetSerialNumberString();
                    }
                }

                var seen = new HashSet<string> { await SerialAsync() };
                for (var rotation = 1; rotation <= 3; rotation++)
                {
                    await Task.Delay(300);
                    DevCertificates.Issue(_dir, "node", ["node.farm.test"], [IPAddress.Parse("127.0.0.67")], TimeSpan.FromDays(1 + rotation));
                    var clock = Stopwatch.StartNew();
                    do
                    {
                        Assert.True(clock.Elapsed < LineClient.Patience, $"rotation {rotation}: the new certificate was not taken");
                        await Task.Delay(100);
                    }
                    while (!seen.Add(await SerialAsync()));
                }

                await stop.CancelAsync();
                await publishing;
                var last = published;
                Assert.Equal(3, node.Certificates!.Reloads);

                // Every subscriber: still connected, updates in sequence up to the last publication.
                foreach (var (tls, reader) in subscribers)
                {
                    ulong? seq = null;
                    while (true)
                    {
                        var line = await ExpectAsync(reader, "");
                        if (!line.StartsWith("IMAGE /rot/x ", StringComparison.Ordinal) && !line.StartsWith("UPDATE /rot/x ", StringComparison.Ordinal))
                        {
                            continue;
                        }

                        var parts = line.Split(' ');
                        var s = ulong.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture);
                        Assert.True(seq is null || s == seq + 1 || line.Contains("@merged=", StringComparison.Ordinal), $"a gap: seq {seq} then '{line}'");
                        seq = s;
                        if (line.EndsWith($" n={last}", StringComparison.Ordinal))
                        {
                            break;
                        }
                    }

                    await tls.WriteAsync("PING alive\n"u8.ToArray());
                    await ExpectAsync(reader, "PONG alive");
                }
            }
        }
        finally
        {
            foreach (var (tls, _) in subscribers)
            {
                await tls.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AKeyThatDoesNotMatchTheCertificate_StopsTheStartWithAClearError()
    {
        var (cert, _) = DevCertificates.Issue(_dir, "a", ["a"], [], TimeSpan.FromDays(1));
        var (_, otherKey) = DevCertificates.Issue(_dir, "b", ["b"], [], TimeSpan.FromDays(1));
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => TestNode.StartAsync(o =>
        {
            o.Listen = "127.0.0.66";
            o.Tls.CertFile = cert;
            o.Tls.KeyFile = otherKey;
            o.Tls.Port = 0;
            o.Tls.HttpsPort = 0;
        }));
        Assert.Contains(cert, e.Message, StringComparison.Ordinal);
    }

    // scripts/setup.sh installs curl and openssl.
    [Fact]
    public async Task RoutesWithMutualTls_CarryPublications_AndAServerWithACertificateFromAnotherCa_GetsNoRoute()
    {
        var key = Convert.ToBase64String(Enumerable.Range(40, 32).Select(i => (byte)i).ToArray());
        var farmDir = Path.Combine(_dir, "farm");
        var strangerDir = Path.Combine(_dir, "stranger");
        var nodes = new List<StreamFarmNode>();
        try
        {
            foreach (var (id, ip, dir) in new[] { ("s2", "127.0.21.2", farmDir), ("s3", "127.0.21.3", farmDir), ("s4", "127.0.21.4", strangerDir) })
            {
                var (cert, certKey) = DevCertificates.Issue(dir, id, [], [IPAddress.Parse(ip)], TimeSpan.FromDays(1));
                nodes.Add(await TestNode.StartAsync(o =>
                {
                    o.Id = id;
                    o.Listen = ip;
                    o.Farm.GossipKeys = [key];
                    o.Farm.GossipPort = 0;
                    o.Farm.Preset = "local";
                    o.Farm.Name = "tls-routes";
                    o.Farm.Seeds = nodes.Count == 0 ? [] : [nodes[0].GossipAddress!];
                    o.Tls.CertFile = cert;
                    o.Tls.KeyFile = certKey;
                    o.Tls.CaFile = Path.Combine(farmDir, "ca.pem"); // s4 too: it trusts the farm's CA, but its own certificate is another CA's
                    o.Tls.Port = 0;
                    o.Tls.HttpsPort = 0;
                }));
            }

            var (s2, s3, s4) = (nodes[0], nodes[1], nodes[2]);
            await Eventually.TrueAsync(() => nodes.All(n => n.Server.Farm.Current.Members.Count(m => m.Liveness == "alive" && m.State == "active") == 3 && n.Server.Routes!.Ownership.Owners.Count == 3), "the membership (gossip, not TLS) sees all three, and each owns a share");
            await Eventually.TrueAsync(() => s2.Server.Routes!.IsUpTo("s3") && s3.Server.Routes!.IsUpTo("s2"), "the routes between the two servers of the farm's CA are up");

            // A publication at s2 of a subject s3 owns reaches a subscriber at s2 through the TLS routes.
            var subject = Enumerable.Range(0, 1000).Select(i => $"/tls/r{i}").First(x => s2.Server.Routes!.Ownership.OwnerOf(x) == "s3");
            await using var pub = await s2.ConnectAsync();
            await pub.SendAsync($"PUB {subject} @ack=p1 v=1");
            await pub.ExpectAsync("ACK p1"); // acknowledged by s3, the owner, over the route
            await using var sub = await s2.ConnectAsync();
            await sub.SendAsync($"SUB {subject}");
            Assert.Contains(" v=1", await sub.ExpectAsync($"IMAGE {subject} "), StringComparison.Ordinal);

            // A subject s4 owns cannot be reached from s2: the publication waits for s4's route for
            // a while (a restart would take less), then its publisher is told, never left waiting.
            var stranded = Enumerable.Range(0, 1000).Select(i => $"/tls/x{i}").First(x => s2.Server.Routes!.Ownership.OwnerOf(x) == "s4");
            await pub.SendAsync($"PUB {stranded} @ack=p2 v=2");
            await pub.SendAsync($"PUB {stranded} v=3");
            var nack = await pub.ExpectAsync("NACK p2 ");
            Assert.StartsWith("NACK p2 UNAVAILABLE ", nack, StringComparison.Ordinal);
            Assert.Contains($"@subject={stranded}", await pub.ExpectAsync("ERR UNAVAILABLE "), StringComparison.Ordinal);

            // Neither side accepts s4's certificate: no route to or from it, however long it tries.
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.False(s2.Server.Routes!.IsUpTo("s4"));
            Assert.False(s3.Server.Routes!.IsUpTo("s4"));
            Assert.False(s4.Server.Routes!.IsUpTo("s2"));
            Assert.False(s4.Server.Routes!.IsUpTo("s3"));
        }
        finally
        {
            foreach (var n in nodes)
            {
                await n.DisposeAsync();
            }
        }
    }

    private static string Tool(string name) =>
        new[] { "/usr/bin/", "/bin/", "/usr/local/bin/" }.Select(d => d + name).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{name} is not installed (scripts/setup.sh installs it)");

    // An openssl s_client session: writes the input once connected, and keeps stdin open (s_client
    // quits at its end) until the output holds `until`, the server closes, or 5 s pass.
    private static async Task<string> SessionAsync(string file, string[] args, string input, string until)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start)!;
        var output = new StringBuilder();
        var stdout = Task.Run(async () =>
        {
            var buffer = new char[4096];
            int n;
            while ((n = await p.StandardOutput.ReadAsync(buffer)) > 0)
            {
                lock (output)
                {
                    output.Append(buffer, 0, n);
                }
            }
        });
        var stderr = p.StandardError.ReadToEndAsync();
        await p.StandardInput.WriteAsync(input);
        await p.StandardInput.FlushAsync();
        var deadline = Stopwatch.StartNew();
        while (!p.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            lock (output)
            {
                if (output.ToString().Contains(until, StringComparison.Ordinal))
                {
                    break;
                }
            }

            await Task.Delay(20);
        }

        p.StandardInput.Close();
        using var patience = new CancellationTokenSource(LineClient.Patience);
        await p.WaitForExitAsync(patience.Token);
        await stdout;
        return output + await stderr;
    }

    private static async Task<(bool Ok, string Output)> RunAsync(string file, string[] args, string? stdin = null, bool waitForStdinClose = false)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start)!;
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
            await p.StandardInput.FlushAsync();
            if (waitForStdinClose)
            {
                await Task.Delay(500);
            }
        }

        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var patience = new CancellationTokenSource(LineClient.Patience);
        await p.WaitForExitAsync(patience.Token);
        return (p.ExitCode == 0, await stdout + await stderr);
    }
}
