using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DnsClient;
using YamlDotNet.RepresentationModel;

namespace StreamFarm.Cli.Tests.Kubernetes;

/// <summary>
/// The real command run as the StatefulSet runs it: its arguments and environment (the pod's IP
/// 127.0.60.1, the first pod's name, Secrets with real values, the volumes as directories), then the
/// kubelet's part: the probes, the preStop hook, SIGTERM.
/// </summary>
public sealed class KubernetesNodeRunTests : IDisposable
{
    private const string PodIp = "127.0.60.1";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly string _root = Directory.CreateTempSubdirectory("streamfarm-k8s-").FullName;

    [Fact]
    public async Task Node_AsTheStatefulSetRunsIt_BindsItsPortsAnswersProbesAndDrainsOnPreStop()
    {
        var set = ManifestSet.Load();
        var secrets = await MakeSecretsAsync();
        var mounts = Mount(set, secrets);
        var unresolved = new List<string>();
        var env = set.Environment(PodIp, (name, key) => secrets[(name, key)], unresolved)
            .ToDictionary(e => e.Key, e => OnHost(e.Value, mounts));
        var args = set.Args(env, unresolved).Select(a => OnHost(a, mounts)).ToList();
        Assert.Empty(unresolved);

        await using var node = CliProcess.Start(args, env);
        var banner = await BannerAsync(node, lastLine: args.Contains("--dns") ? "  DNS" : "  Routes");

        // Every port the container declares is one the node bound, and the node bound no other.
        var declared = set.ContainerPorts;
        Assert.Equal(declared.Keys.Order(), banner.Keys.Order());
        Assert.All(declared, p => Assert.Equal(p.Value.Port, banner[p.Key]));
        foreach (var (name, (port, protocol)) in declared.Where(p => p.Value.Protocol == "TCP"))
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Parse(PodIp), port).WaitAsync(Patience);
            Assert.True(tcp.Connected, $"{name} {port}/{protocol}");
        }

        // The DNS ports answer the farm's zone (over UDP, and over TCP: TcpOnly).
        var zone = $"{JsonDocument.Parse(File.ReadAllText(env["STREAMFARM_CONFIG"])).RootElement.GetProperty("dns").GetProperty("zone").GetString()}.";
        foreach (var tcpOnly in new[] { false, true })
        {
            var dns = new LookupClient(new LookupClientOptions(new IPEndPoint(IPAddress.Parse(PodIp), declared["dns-udp"].Port)) { UseCache = false, UseTcpOnly = tcpOnly, Timeout = TimeSpan.FromSeconds(5) });
            var soa = await dns.QueryAsync(zone, QueryType.SOA);
            Assert.False(soa.HasError, soa.ErrorMessage);
            Assert.Single(soa.Answers.SoaRecords());
        }

        // The probes: GET as the kubelet does, on the port they name.
        using var http = new HttpClient { Timeout = Patience };
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            var get = set.Container.Map(probe, "httpGet");
            var port = int.TryParse(get.Str("port"), out var n) ? n : declared[get.Str("port")!].Port;
            using var response = await http.GetAsync(new Uri($"http://{PodIp}:{port}{get.Str("path")}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("ok", (await response.Content.ReadAsStringAsync()).Trim());
        }

        // A client, to see the drain move it.
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Parse(PodIp), declared["rttp"].Port);
        var stream = client.GetStream();
        var reader = new StreamReader(stream, Encoding.UTF8);
        await stream.WriteAsync("HELLO 1 client=k8s-test\n"u8.ToArray());
        Assert.StartsWith("WELCOME", await reader.ReadLineAsync().WaitAsync(Patience), StringComparison.Ordinal);
        var moved = ReadUntilAsync(reader, stream, l => l.StartsWith("MOVE DRAINING", StringComparison.Ordinal));

        // preStop: the hook's command, in the container's environment (its entry point is this command).
        var hook = set.PreStopCommand;
        Assert.Equal(KubernetesManifestTests.ImageEntryPoint, hook[0]);
        var clock = Stopwatch.StartNew();
        var drain = await CliProcess.RunAsync(hook.Skip(1), env);
        Assert.True(drain.Code == 0, $"preStop exited {drain.Code}: {drain.Stdout} {drain.Stderr}");
        Assert.Contains("draining", drain.Stdout, StringComparison.Ordinal);
        Assert.Contains("drained", drain.Stdout, StringComparison.Ordinal);
        Assert.True(await moved, "the client was not asked to move");

        // Draining: the table says so (with the admin token: /farm is restricted), /healthz stays ok
        // (the process is serving; the farm's DNS stops handing it out, as it is not active).
        using (var farm = new HttpRequestMessage(HttpMethod.Get, $"http://{PodIp}:{declared["http"].Port}/farm"))
        {
            farm.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secrets[("streamfarm-secrets", "admin-token")]);
            using var response = await http.SendAsync(farm);
            using var table = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal("draining", table.RootElement.EnumerateArray().Single(s => s.GetProperty("id").GetString() == set.FirstPodName).GetProperty("state").GetString());
        }

        // SIGTERM after the hook: a graceful stop, within what is left of the grace period.
        node.Signal(15);
        Assert.Equal(0, await node.WaitForExitAsync());
        var grace = TimeSpan.FromSeconds(int.Parse(set.PodSpec.Str("terminationGracePeriodSeconds") ?? "30", System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(clock.Elapsed < grace, $"preStop and stop took {clock.Elapsed.TotalSeconds:0.0} s, more than the grace period {grace.TotalSeconds} s");
        Assert.Contains("stopped", node.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Real values for every key of the example Secrets: a gossip key, an admin token and its hash, a certificate.</summary>
    private async Task<Dictionary<(string, string), string>> MakeSecretsAsync()
    {
        var key = (await CliProcess.RunAsync(["keygen"])).Stdout.Trim();
        var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        var hash = (await CliProcess.RunAsync(["hash-password", "--token"], stdin: token + "\n")).Stdout.Trim();
        var certs = Path.Combine(_root, "certs");
        Assert.Equal(0, (await CliProcess.RunAsync(["cert", "--dir", certs, "--name", "node", "--host", PodIp])).Code);
        return new()
        {
            [("streamfarm-secrets", "gossip-key")] = key,
            [("streamfarm-secrets", "admin-token")] = token,
            [("streamfarm-secrets", "admin-token-hash")] = hash,
            [("streamfarm-tls", "tls.crt")] = await File.ReadAllTextAsync(Path.Combine(certs, "node.pem")),
            [("streamfarm-tls", "tls.key")] = await File.ReadAllTextAsync(Path.Combine(certs, "node-key.pem")),
            [("streamfarm-tls", "ca.crt")] = await File.ReadAllTextAsync(Path.Combine(certs, "ca.pem")),
        };
    }

    /// <summary>Makes each volume mount a directory (or file) under the test's root; returns mount path to host path, longest first.</summary>
    private List<(string Mount, string Host)> Mount(ManifestSet set, Dictionary<(string, string), string> secrets)
    {
        var volumes = set.PodSpec.Seq("volumes").Cast<YamlMappingNode>().ToDictionary(v => v.Str("name")!);
        var mounts = new List<(string, string)>();
        foreach (var mount in set.Container.Seq("volumeMounts").Cast<YamlMappingNode>())
        {
            var path = mount.Str("mountPath")!;
            var host = Path.Combine(_root, "pod", path.TrimStart('/'));
            var volume = volumes[mount.Str("name")!];
            IReadOnlyDictionary<string, string> files = volume.TryMap("configMap") is { } cm
                ? ManifestSet.Labels(set.OfKind("ConfigMap").Single(m => m.Name == cm.Str("name")).Root.Map("data"))
                : volume.TryMap("secret") is { } secret
                    ? secrets.Where(s => s.Key.Item1 == secret.Str("secretName")).ToDictionary(s => s.Key.Item2, s => s.Value)
                    : new Dictionary<string, string>();
            if (mount.Str("subPath") is { } subPath)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(host)!);
                File.WriteAllText(host, files[subPath]);
            }
            else
            {
                Directory.CreateDirectory(host);
                foreach (var (name, content) in files)
                {
                    File.WriteAllText(Path.Combine(host, name), content);
                }
            }

            mounts.Add((path, host));
        }

        return [.. mounts.OrderByDescending(m => m.Item1.Length)];
    }

    private static string OnHost(string value, List<(string Mount, string Host)> mounts)
    {
        foreach (var (mount, host) in mounts)
        {
            if (value == mount || value.StartsWith(mount + "/", StringComparison.Ordinal))
            {
                return host + value[mount.Length..];
            }
        }

        return value;
    }

    /// <summary>The ports of the node's start-up lines, by the container port names they are.</summary>
    private static async Task<Dictionary<string, int>> BannerAsync(CliProcess node, string lastLine)
    {
        var names = new Dictionary<string, string[]>
        {
            ["RTTP/TCP"] = ["rttp"], ["HTTP"] = ["http"], ["RTTP/TLS"] = ["rttp-tls"], ["HTTPS"] = ["https"],
            ["Gossip"] = ["gossip-udp", "gossip-tcp"], ["Routes"] = ["route"], ["DNS"] = ["dns-udp", "dns-tcp"],
        };

        // The last line (DNS, or Routes without DNS) comes once everything is bound; the lines are read in order.
        await node.WaitForOutputAsync(lastLine);
        var ports = new Dictionary<string, int>();
        foreach (var line in node.Stdout.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && names.TryGetValue(parts[0], out var portNames) && parts[1] != "off")
            {
                var address = parts[1];
                var port = int.Parse(address[(address.LastIndexOf(':') + 1)..].TrimEnd('/'), System.Globalization.CultureInfo.InvariantCulture);
                foreach (var name in portNames)
                {
                    ports[name] = port;
                }
            }
        }

        return ports;
    }

    /// <summary>Reads the session's lines (answering the server's pings, as a client must within its idle time) until one is <paramref name="wanted"/>.</summary>
    private static async Task<bool> ReadUntilAsync(StreamReader reader, NetworkStream stream, Func<string, bool> wanted)
    {
        using var deadline = new CancellationTokenSource(Patience);
        try
        {
            while (await reader.ReadLineAsync(deadline.Token) is { } line)
            {
                if (wanted(line))
                {
                    return true;
                }

                if (line.StartsWith("PING", StringComparison.Ordinal))
                {
                    await stream.WriteAsync(Encoding.UTF8.GetBytes("PONG" + line["PING".Length..] + "\n"), deadline.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // not seen in time
        }

        return false;
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
