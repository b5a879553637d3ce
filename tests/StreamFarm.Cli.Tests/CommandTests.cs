using System.Text.Json;

namespace StreamFarm.Cli.Tests;

/// <summary>The real command, as users and scripts run it: options, config precedence, output, exit codes.</summary>
public sealed class CommandTests
{
    private static async Task<(CliProcess Node, string Tcp, string Http)> StartNodeAsync(string ip, IEnumerable<string>? extra = null, IDictionary<string, string>? env = null)
    {
        var node = CliProcess.Start(["node", "--id", "n1", "--listen", ip, "--tcp-port", "0", "--http-port", "0", .. extra ?? []], env);
        var tcp = (await node.WaitForOutputAsync("RTTP/TCP")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var http = (await node.WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        return (node, tcp, http);
    }

    [Fact]
    public async Task Node_ConfigThenEnvThenOptions_EachOverridesTheOneBefore()
    {
        var config = Path.GetTempFileName();
        await File.WriteAllTextAsync(config, """{ "id": "from-file", "group": "g-file", "capacity": 5, "limits": { "maxLineBytes": 4096 } }""");
        var env = new Dictionary<string, string> { ["STREAMFARM_GROUP"] = "g-env", ["STREAMFARM_CAPACITY"] = "6" };
        await using var node = CliProcess.Start(["node", "--config", config, "--listen", "127.0.0.41", "--tcp-port", "0", "--http-port", "0", "--capacity", "7"], env);
        var http = (await node.WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        using var client = new HttpClient();
        using var farm = JsonDocument.Parse(await client.GetStringAsync(http + "/farm"));
        var me = farm.RootElement[0];
        Assert.Equal("from-file", me.GetProperty("id").GetString());
        Assert.Equal("g-env", me.GetProperty("group").GetString());
        Assert.Equal(7, me.GetProperty("capacity").GetInt32());
        File.Delete(config);
    }

    [Fact]
    public async Task Node_StartedInABigDirectory_NeitherReadsNorWatchesIt()
    {
        // A node started in a directory holding an appsettings.json and many subdirectories (an
        // operator's / or a busy /tmp): the web host's defaults read that file (here: one more
        // listening endpoint) and watched the whole tree, one inotify watch per directory.
        var dir = Directory.CreateTempSubdirectory("streamfarm-cwd-").FullName;
        try
        {
            for (var i = 0; i < 200; i++)
            {
                Directory.CreateDirectory(Path.Combine(dir, $"d{i}"));
            }

            await File.WriteAllTextAsync(Path.Combine(dir, "appsettings.json"), """{ "Kestrel": { "Endpoints": { "Stray": { "Url": "http://127.0.0.49:17499" } } } }""");
            await using var node = CliProcess.Start(["node", "--id", "n1", "--listen", "127.0.0.49", "--tcp-port", "0", "--http-port", "0"], workingDirectory: dir);
            var http = (await node.WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
            using var client = new HttpClient();
            Assert.Equal("ok", (await client.GetStringAsync(http + "/healthz")).Trim());

            var watches = Directory.GetFiles($"/proc/{node.Pid}/fdinfo").Sum(f =>
            {
                try
                {
                    return File.ReadLines(f).Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal));
                }
                catch (IOException)
                {
                    return 0; // a descriptor closed meanwhile
                }
            });
            Assert.True(watches < 10, $"the node holds {watches} inotify watches (its working directory has 201 directories)");
            using var stray = new System.Net.Sockets.TcpClient();
            await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => stray.ConnectAsync("127.0.0.49", 17499));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task PubOnce_SubCountJson_PrintsImageAndUpdateThenExitsZero()
    {
        var (node, tcp, _) = await StartNodeAsync("127.0.0.42");
        await using (node)
        {
            Assert.Equal(0, (await CliProcess.RunAsync(["pub", "/FX/GBPUSD", "bid=1.27", "venue=LSE IOB", "--server", tcp])).Code);
            await using var sub = CliProcess.Start(["sub", "/FX/GBPUSD", "--server", tcp, "--json", "--count", "2"]);
            await sub.WaitForOutputAsync("\"image\"");
            var pub = await CliProcess.RunAsync(["pub", "/FX/GBPUSD", "bid=1.28", "--server", tcp]);
            Assert.Equal(0, pub.Code);
            Assert.Equal(0, await sub.WaitForExitAsync());
            var lines = sub.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(2, lines.Count);
            Assert.Equal("image", lines[0].GetProperty("type").GetString());
            Assert.Equal("LSE IOB", lines[0].GetProperty("fields").GetProperty("venue").GetString());
            Assert.Equal("n1", lines[0].GetProperty("server").GetString());
            Assert.Equal("update", lines[1].GetProperty("type").GetString());
            Assert.Equal(lines[0].GetProperty("seq").GetUInt64() + 1, lines[1].GetProperty("seq").GetUInt64());
            Assert.Equal(lines[0].GetProperty("epoch").GetUInt64(), lines[1].GetProperty("epoch").GetUInt64());
        }
    }

    [Fact]
    public async Task PubFromStdin_EachLineAnUpdate()
    {
        var (node, tcp, _) = await StartNodeAsync("127.0.0.43");
        await using (node)
        {
            var pub = await CliProcess.RunAsync(["pub", "/s/1", "--server", tcp], stdin: "n=1\nn=2 note=a\\sb\n\nn=3\n");
            Assert.Equal(0, pub.Code);
            var sub = await CliProcess.RunAsync(["sub", "/s/1", "--server", tcp, "--json", "--count", "1"]);
            using var image = JsonDocument.Parse(sub.Stdout);
            Assert.Equal(3UL, image.RootElement.GetProperty("seq").GetUInt64());
            Assert.Equal("3", image.RootElement.GetProperty("fields").GetProperty("n").GetString());
            Assert.Equal("a b", image.RootElement.GetProperty("fields").GetProperty("note").GetString());
        }
    }

    [Fact]
    public async Task FarmOnceJson_TableOfOne()
    {
        var (node, tcp, _) = await StartNodeAsync("127.0.0.44", ["--group", "eu"]);
        await using (node)
        {
            var farm = await CliProcess.RunAsync(["farm", "--server", tcp, "--json", "--once"]);
            Assert.Equal(0, farm.Code);
            using var doc = JsonDocument.Parse(farm.Stdout);
            Assert.Equal("eu", doc.RootElement[0].GetProperty("group").GetString());
            Assert.Equal(tcp, doc.RootElement[0].GetProperty("addresses").GetProperty("tcp").GetString());
        }
    }

    [Fact]
    public async Task Node_Sigterm_SubscriberToldWhy_NodeExitsZero()
    {
        var (node, tcp, _) = await StartNodeAsync("127.0.0.45");
        await using (node)
        {
            await using var sub = CliProcess.Start(["sub", "/x", "--server", tcp]);
            await sub.WaitForOutputAsync("STATUS /x NOT_FOUND");
            node.Signal(15);
            Assert.Equal(0, await node.WaitForExitAsync());
            Assert.Equal(1, await sub.WaitForExitAsync());
            Assert.Contains("BYE SHUTDOWN", sub.Stderr, StringComparison.Ordinal);
            Assert.Contains("stopped", node.Stdout, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(new[] { "sub" }, 2)]
    [InlineData(new[] { "pub", "/x", "notafield", "--server", "127.0.0.1:1" }, 2)]
    [InlineData(new[] { "pub", "bad-subject", "a=1", "--server", "127.0.0.1:1" }, 2)]
    [InlineData(new[] { "sub", "/x", "--server", "127.0.0.1:1" }, 1)]
    [InlineData(new[] { "sub", "/x" }, 2)]
    [InlineData(new[] { "node", "--listen", "not-an-ip" }, 2)]
    [InlineData(new[] { "node", "--config", "/nonexistent.json" }, 2)]
    [InlineData(new[] { "frobnicate" }, 2)]
    public async Task Errors_MeaningfulExitCodeAndMessage(string[] args, int code)
    {
        var r = await CliProcess.RunAsync(args);
        Assert.Equal(code, r.Code);
        Assert.StartsWith("streamfarm: ", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Stderr, StringComparison.Ordinal); // no stack traces
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Debug")]
    public async Task Node_PortInUse_PrintsOneLineAndTheTraceOnlyAtDebug(string? logLevel)
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse("127.0.0.46"), 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var r = await CliProcess.RunAsync(["node", "--id", "n1", "--listen", "127.0.0.46", "--tcp-port", port, "--http-port", "0", .. logLevel is null ? Array.Empty<string>() : ["--log-level", logLevel]]);

        Assert.Equal(1, r.Code);
        var error = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("streamfarm: cannot listen on 127.0.0.46", error, StringComparison.Ordinal);
        Assert.Contains("address already in use", error, StringComparison.Ordinal);
        if (logLevel is null)
        {
            Assert.Equal("", r.Stdout.Trim());
        }
        else
        {
            Assert.Contains("the server could not start", r.Stdout, StringComparison.Ordinal);
            Assert.Contains("   at ", r.Stdout, StringComparison.Ordinal);
            Assert.Single(r.Stdout.Split('\n'), l => l.Contains("AddressInUseException", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(l, @"^\d\d:\d\d:\d\d\.\d{3} dbug: "));
        }
    }

    [Fact]
    public async Task Cert_MakesACaAndAServerCertificate_AndNodeRefusesAKeyThatDoesNotMatch()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sf-cert-" + Guid.NewGuid().ToString("N"));
        try
        {
            var a = await CliProcess.RunAsync(["cert", "--dir", dir, "--name", "a", "--host", "127.0.0.47", "--host", "a.farm.test"]);
            Assert.Equal(0, a.Code);
            var b = await CliProcess.RunAsync(["cert", "--dir", dir, "--name", "b"]);
            Assert.Equal(0, b.Code);
            var ca = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(Path.Combine(dir, "ca.pem"));
            var cert = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(Path.Combine(dir, "a.pem"), Path.Combine(dir, "a-key.pem"));
            Assert.Equal(ca.Subject, cert.Issuer); // the CA made by the first call signed both
            Assert.Contains("127.0.0.47", cert.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.DnsFromAlternativeName, false) + string.Join(",", cert.Extensions.OfType<System.Security.Cryptography.X509Certificates.X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateIPAddresses())), StringComparison.Ordinal);

            var r = await CliProcess.RunAsync(["node", "--id", "n1", "--listen", "127.0.0.47", "--tcp-port", "0", "--http-port", "0", "--tls-port", "0", "--https-port", "0",
                "--tls-cert", Path.Combine(dir, "a.pem"), "--tls-key", Path.Combine(dir, "b-key.pem")]);
            Assert.Equal(2, r.Code);
            var error = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("streamfarm: TLS certificate ", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task PubAndSub_OverTls_WithTheCa_Work_AndWithoutIt_FailWithATlsError()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sf-tls-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(0, (await CliProcess.RunAsync(["cert", "--dir", dir, "--name", "n1", "--host", "127.0.0.48"])).Code);
            var (node, _, _) = await StartNodeAsync("127.0.0.48", ["--tls-cert", Path.Combine(dir, "n1.pem"), "--tls-key", Path.Combine(dir, "n1-key.pem"), "--tls-port", "0", "--https-port", "0"]);
            await using (node)
            {
                var tls = (await node.WaitForOutputAsync("RTTP/TLS")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
                var ca = Path.Combine(dir, "ca.pem");
                var pub = await CliProcess.RunAsync(["pub", "/tls/x", "v=1", "--server", tls, "--ca", ca]);
                Assert.True(pub.Code == 0, pub.Stderr);
                var sub = await CliProcess.RunAsync(["sub", "/tls/x", "--server", tls, "--tls", "--ca", ca, "--json", "--count", "1"]);
                Assert.True(sub.Code == 0, sub.Stderr);
                using var image = JsonDocument.Parse(sub.Stdout);
                Assert.Equal("1", image.RootElement.GetProperty("fields").GetProperty("v").GetString());

                // The development CA is not among the system's roots: without --ca the handshake fails.
                var untrusted = await CliProcess.RunAsync(["sub", "/tls/x", "--server", tls, "--tls", "--count", "1"]);
                Assert.Equal(1, untrusted.Code);
                Assert.Contains("TLS with", untrusted.Stderr, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task HashPassword_ProducesVerifiableHash()
    {
        var r = await CliProcess.RunAsync(["hash-password"], stdin: "s3cret\n");
        Assert.Equal(0, r.Code);
        Assert.StartsWith("pbkdf2-sha256$", r.Stdout, StringComparison.Ordinal);
    }
}
