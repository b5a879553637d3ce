using System.CommandLine;
using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using StreamFarm.Cli.Commands;
using StreamFarm.Server;
using YamlDotNet.RepresentationModel;

namespace StreamFarm.Cli.Tests.Kubernetes;

/// <summary>
/// deploy/kubernetes read as the cluster would, and checked against the real command: its options
/// (the command tree of <see cref="CliRoot"/>), its settings (<see cref="ServerOptions"/>, bound as
/// the node binds them) and its defaults. <see cref="KubernetesNodeRunTests"/> then runs the node as
/// the manifests say.
/// </summary>
public sealed partial class KubernetesManifestTests
{
    private const string PodIp = "10.244.1.7";
    private readonly ManifestSet _set = ManifestSet.Load();

    [Fact]
    public void Kustomization_AppliesEveryManifestOfTheDirectory()
    {
        var listed = _set.Kustomization.Seq("resources").Select(r => ((YamlScalarNode)r).Value!).Order().ToList();
        var files = Directory.GetFiles(_set.Directory, "*.yaml").Select(f => Path.GetFileName(f))
            .Where(f => f is not ("kustomization.yaml" or ManifestSet.ExampleSecretsFile)).Order().ToList();
        Assert.Equal(files, listed);
        Assert.Equal(["ConfigMap", "Namespace", "PodDisruptionBudget", "Service", "StatefulSet"], _set.Applied.Select(m => m.Kind).Distinct().Order());
    }

    [Fact]
    public void Args_AreTheRealNodeCommandsOptions()
    {
        var unresolved = new List<string>();
        var args = _set.Args(PodEnvironment(unresolved), unresolved);
        Assert.Empty(unresolved); // a $(VAR) the environment does not define is passed on as written

        var parse = CliRoot.Create().Parse([.. args]);
        Assert.True(parse.Errors.Count == 0, string.Join("; ", parse.Errors.Select(e => e.Message)));
        Assert.Equal("node", parse.CommandResult.Command.Name);
        Assert.Equal(_set.FirstPodName, parse.GetValue<string?>("--id"));
    }

    [Fact]
    public void PreStop_IsTheRealDrainCommandAndWaitsForTheSpread()
    {
        var command = _set.PreStopCommand;
        Assert.Equal(ImageEntryPoint, command[0]);
        Assert.DoesNotContain(command, c => c.Contains("$(", StringComparison.Ordinal)); // exec commands are not expanded
        var parse = CliRoot.Create().Parse([.. command.Skip(1)]);
        Assert.True(parse.Errors.Count == 0, string.Join("; ", parse.Errors.Select(e => e.Message)));
        Assert.Equal("drain", parse.CommandResult.Command.Name);

        // Without --wait the hook returns at once and SIGTERM moves every client at the same moment.
        Assert.True(parse.GetValue<bool>("--wait"), "preStop must wait for the drain's spread");

        // Without --http, drain finds its server in the environment: the container must give it.
        if (parse.GetValue<string?>("--http") is null)
        {
            Assert.Equal(PodIp, PodEnvironment([])["STREAMFARM_LISTEN"]);
        }

        // The drain needs the administrative token whenever the server has a token hash (and from
        // anywhere but loopback, it always does: the server listens on the pod's IP).
        var env = PodEnvironment([]);
        Assert.True(env.ContainsKey("STREAMFARM_HTTP__ADMINTOKENHASH"), "the server needs http.adminTokenHash to take a drain from its pod IP");
        Assert.True(env.ContainsKey("STREAMFARM_ADMIN_TOKEN") || parse.GetValue<string?>("--admin-token") is not null, "drain must send the admin token");
    }

    [Fact]
    public void Environment_IsSettingsTheCommandReads()
    {
        var own = CliEnvironmentVariables();
        foreach (var name in PodEnvironment([]).Keys.Where(n => n.StartsWith("STREAMFARM_", StringComparison.Ordinal)))
        {
            Assert.True(own.Contains(name) || IsSettingKey(name["STREAMFARM_".Length..]),
                $"{name} is neither a variable the command reads ({string.Join(", ", own)}) nor a setting of ServerOptions");
        }
    }

    [Fact]
    public void ConfigMap_IsAConfigFileTheNodeTakes()
    {
        var json = ConfigFileText();

        // Every key is a setting (the binder ignores unknown keys; this asks it not to).
        var config = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();
        config.Bind(new ServerOptions(), o => o.ErrorOnUnknownConfiguration = true);

        // And with the pod's environment over it, the settings are valid, as the node checks them at start.
        var options = Resolve(out _);
        Assert.Equal(PodIp, options.Listen);
        Assert.NotEmpty(options.Farm.GossipKeys);
        Assert.NotNull(options.Http.AdminTokenHash);
    }

    [Fact]
    public void ContainerPorts_AreThePortsTheNodeBinds()
    {
        var options = Resolve(out var parse);
        var dns = parse.GetValue<string?>("--dns") ?? options.DnsListen;
        var expected = new Dictionary<string, (int, string)>
        {
            ["rttp"] = (parse.GetValue<int?>("--tcp-port") ?? options.TcpPort, "TCP"),
            ["http"] = (parse.GetValue<int?>("--http-port") ?? options.HttpPort, "TCP"),
            ["gossip-udp"] = (parse.GetValue<int?>("--gossip-port") ?? options.Farm.GossipPort, "UDP"),
            ["gossip-tcp"] = (parse.GetValue<int?>("--gossip-port") ?? options.Farm.GossipPort, "TCP"),
            ["route"] = (parse.GetValue<int?>("--route-port") ?? options.Farm.RoutePort, "TCP"),
        };
        if (parse.GetValue<string?>("--tls-cert") is not null)
        {
            expected["rttp-tls"] = (parse.GetValue<int?>("--tls-port") ?? options.Tls.Port, "TCP");
            expected["https"] = (parse.GetValue<int?>("--https-port") ?? options.Tls.HttpsPort, "TCP");
        }

        if (dns is not null)
        {
            var port = IPEndPoint.Parse(dns).Port;
            expected["dns-udp"] = (port, "UDP");
            expected["dns-tcp"] = (port, "TCP");
            Assert.Equal(PodIp, IPEndPoint.Parse(dns).Address.ToString()); // answers on the pod's address
        }

        Assert.Equal(expected.OrderBy(p => p.Key), _set.ContainerPorts.OrderBy(p => p.Key));
    }

    [Fact]
    public void Probes_GetHealthzOnTheHttpPort()
    {
        var ports = _set.ContainerPorts;
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            var get = _set.Container.Map(probe, "httpGet");
            Assert.Equal("/healthz", get.Str("path"));
            var port = get.Str("port")!;
            Assert.Equal(ports["http"].Port, int.TryParse(port, out var n) ? n : ports[port].Port);
            Assert.NotEqual("HTTPS", get.Str("scheme"));
        }
    }

    [Fact]
    public void Services_TargetContainerPortsAndSelectThePods()
    {
        var podLabels = ManifestSet.Labels(_set.PodTemplate.Map("metadata").TryMap("labels"));
        var ports = _set.ContainerPorts;
        foreach (var service in _set.OfKind("Service"))
        {
            var selector = ManifestSet.Labels(service.Root.Map("spec").TryMap("selector"));
            Assert.NotEmpty(selector);
            Assert.All(selector, l => Assert.Equal(l.Value, podLabels.GetValueOrDefault(l.Key)));
            foreach (var port in service.Root.Map("spec").Seq("ports").Cast<YamlMappingNode>())
            {
                var target = port.Str("targetPort") ?? port.Str("port")!;
                var protocol = port.Str("protocol") ?? "TCP";
                var match = int.TryParse(target, out var number)
                    ? ports.Values.Any(p => p.Port == number && p.Protocol == protocol)
                    : ports.TryGetValue(target, out var named) && named.Protocol == protocol;
                Assert.True(match, $"{service.Name}: port {port.Str("name")} targets {target}/{protocol}, which is no container port");
            }
        }

        var selectorOfSet = ManifestSet.Labels(_set.StatefulSet.Root.Map("spec", "selector").TryMap("matchLabels"));
        Assert.All(selectorOfSet, l => Assert.Equal(l.Value, podLabels.GetValueOrDefault(l.Key)));
        var budget = Assert.Single(_set.OfKind("PodDisruptionBudget"));
        Assert.Equal("1", budget.Root.Map("spec").Str("maxUnavailable"));
        Assert.All(ManifestSet.Labels(budget.Root.Map("spec", "selector").TryMap("matchLabels")), l => Assert.Equal(l.Value, podLabels.GetValueOrDefault(l.Key)));
    }

    [Fact]
    public void HeadlessService_GivesStableNamesAndIsTheSeed()
    {
        var headless = Assert.Single(_set.OfKind("Service"), s => s.Root.Map("spec").Str("clusterIP") == "None");
        Assert.Equal(headless.Name, _set.StatefulSet.Root.Map("spec").Str("serviceName"));
        Assert.Equal("true", headless.Root.Map("spec").Str("publishNotReadyAddresses")); // a joining pod must be found

        // The id is the pod's stable name; the seeds name the headless Service (or its pods).
        var options = Resolve(out _);
        Assert.Equal(_set.FirstPodName, options.Id);
        Assert.NotEmpty(options.Farm.SeedAddresses);
        var service = new Regex($@"^({Regex.Escape(_set.StatefulSet.Name)}-\d+\.)?{Regex.Escape(headless.Name)}(\.{Regex.Escape(_set.Namespace)}(\.svc(\.[a-z.]+)?)?)?:{options.Farm.GossipPort}$");
        Assert.All(options.Farm.SeedAddresses, s => Assert.Matches(service, s));

        // The farm's members reach each other on the gossip and route ports through it.
        var published = headless.Root.Map("spec").Seq("ports").Cast<YamlMappingNode>().Select(p => p.Str("targetPort")).ToHashSet();
        Assert.Contains("gossip-udp", published);
        Assert.Contains("gossip-tcp", published);
        Assert.Contains("route", published);
    }

    [Fact]
    public void DnsService_Port53OverUdpAndTcp()
    {
        var dns = Assert.Single(_set.OfKind("Service"), s => s.Root.Map("spec").Seq("ports").Cast<YamlMappingNode>().Any(p => p.Str("port") == "53"));
        var ports = dns.Root.Map("spec").Seq("ports").Cast<YamlMappingNode>().ToList();
        Assert.Equal(["TCP", "UDP"], ports.Where(p => p.Str("port") == "53").Select(p => p.Str("protocol") ?? "TCP").Order());
        var containerPorts = _set.ContainerPorts;
        var options = Resolve(out var parse);
        var answering = IPEndPoint.Parse(parse.GetValue<string?>("--dns") ?? options.DnsListen!).Port;
        Assert.All(ports, p => Assert.Equal(answering, containerPorts[p.Str("targetPort")!].Port));
    }

    [Fact]
    public void TerminationGrace_CoversTheDrainAndTheStop()
    {
        var options = Resolve(out _);
        var drain = CliRoot.Create().Parse([.. _set.PreStopCommand.Skip(1)]);
        var spread = drain.GetValue<int>("--spread");
        var grace = int.Parse(_set.PodSpec.Str("terminationGracePeriodSeconds") ?? "30", System.Globalization.CultureInfo.InvariantCulture);

        // preStop waits the spread; then SIGTERM: sessions get shutdownTimeout, Kestrel 2 s more,
        // gossip a few intervals; a few seconds of margin for a loaded node.
        var needed = spread + options.ShutdownTimeout.TotalSeconds + 2 + 3;
        Assert.True(grace >= needed, $"terminationGracePeriodSeconds {grace} < {needed} (drain {spread} s, shutdownTimeout {options.ShutdownTimeout.TotalSeconds} s, +2 s, +3 s margin)");
    }

    [Fact]
    public void SecurityContext_NonRootReadOnlyNoCapabilities()
    {
        var pod = _set.PodSpec.Map("securityContext");
        Assert.Equal("true", pod.Str("runAsNonRoot"));
        Assert.NotEqual("0", pod.Str("runAsUser"));
        var container = _set.Container.Map("securityContext");
        Assert.Equal("true", container.Str("readOnlyRootFilesystem"));
        Assert.Equal("false", container.Str("allowPrivilegeEscalation"));
        Assert.Equal(["ALL"], container.Map("capabilities").Seq("drop").Select(c => ((YamlScalarNode)c).Value));
        Assert.Null(container.TryMap("capabilities")!.TryGet("add"));

        // Without capabilities a non-root process binds no port below 1024 (DNS: the Service maps 53).
        Assert.All(_set.ContainerPorts, p => Assert.True(p.Value.Port >= 1024, $"{p.Key} {p.Value.Port} needs NET_BIND_SERVICE"));
    }

    [Fact]
    public void Volumes_AndSecrets_Exist()
    {
        var volumes = _set.PodSpec.Seq("volumes").Cast<YamlMappingNode>().ToDictionary(v => v.Str("name")!);
        foreach (var mount in _set.Container.Seq("volumeMounts").Cast<YamlMappingNode>())
        {
            Assert.True(volumes.TryGetValue(mount.Str("name")!, out var volume), $"mount {mount.Str("name")} has no volume");
            if (volume.TryMap("configMap") is { } cm)
            {
                var map = Assert.Single(_set.OfKind("ConfigMap"), m => m.Name == cm.Str("name"));
                if (mount.Str("subPath") is { } key)
                {
                    Assert.NotNull(map.Root.Map("data").Str(key));
                }
            }
            else if (volume.TryMap("secret") is { } secret)
            {
                Assert.NotNull(ExampleSecret(secret.Str("secretName")!, null));
            }
        }

        // Every file the arguments and the environment name is under a mount.
        var mounts = _set.Container.Seq("volumeMounts").Cast<YamlMappingNode>().Select(m => m.Str("mountPath")!).ToList();
        var unresolved = new List<string>();
        var env = PodEnvironment(unresolved);
        foreach (var path in _set.Args(env, unresolved).Concat(env.Values).Where(a => a.StartsWith("/etc/", StringComparison.Ordinal)))
        {
            Assert.True(mounts.Any(m => path == m || path.StartsWith(m + "/", StringComparison.Ordinal)), $"{path} is on no volume");
        }

        // secretKeyRef: names and keys of the example Secrets (unknown ones throw in the resolver).
        Assert.NotEmpty(env);
    }

    [Fact]
    public void Image_IsThisBuildsVersion()
    {
        var version = typeof(CliRoot).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
        Assert.Equal($"streamfarm:{version}", _set.Container.Str("image"));
    }

    /// <summary>Where <c>dotnet publish /t:PublishContainer</c> puts the command (its working directory /app, the entry point the app host).</summary>
    internal const string ImageEntryPoint = "/app/streamfarm";

    private IReadOnlyDictionary<string, string> PodEnvironment(List<string> unresolved) =>
        _set.Environment(PodIp, (name, key) => ExampleSecret(name, key) ?? throw new Xunit.Sdk.XunitException($"secret {name} has no key {key} in {ManifestSet.ExampleSecretsFile}"), unresolved);

    /// <summary>A sample value for a key of an example Secret (its name alone: any non-null when it exists); null when there is no such Secret or key.</summary>
    private string? ExampleSecret(string name, string? key)
    {
        var secret = _set.ExampleSecrets.FirstOrDefault(s => s.Name == name);
        if (secret is null || key is not null && secret.Root.Map("stringData").Str(key) is null)
        {
            return null;
        }

        return key switch
        {
            null => "",
            "gossip-key" => Convert.ToBase64String(new byte[32]),
            "admin-token-hash" => "sha256$" + new string('0', 64),
            _ => "sample",
        };
    }

    private string ConfigFileText()
    {
        var map = Assert.Single(_set.OfKind("ConfigMap"));
        return map.Root.Map("data").Str("streamfarm.json")!;
    }

    /// <summary>
    /// The node's settings as it reads them in the pod: the ConfigMap's file, then the environment's
    /// setting variables, then what the arguments set (its seeds and gossip keys as the command takes them).
    /// </summary>
    private ServerOptions Resolve(out ParseResult parse)
    {
        var unresolved = new List<string>();
        var env = PodEnvironment(unresolved);
        parse = CliRoot.Create().Parse([.. _set.Args(env, unresolved)]);
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, ConfigFileText());
            var overrides = env.Where(e => e.Key.StartsWith("STREAMFARM_", StringComparison.Ordinal) && IsSettingKey(e.Key["STREAMFARM_".Length..]))
                .ToDictionary(e => e.Key["STREAMFARM_".Length..].Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
            // (The certificate files are read at start: the run test gives them.)
            foreach (var (option, key) in new[] { ("--id", "id"), ("--listen", "listen"), ("--dns", "dnsListen"), ("--tls-name", "tlsName") })
            {
                if (parse.GetValue<string?>(option) is { } value)
                {
                    overrides[key] = value;
                }
            }

            var seeds = parse.GetValue<string?>("--seeds") ?? env.GetValueOrDefault("STREAMFARM_SEEDS");
            var key2 = env.GetValueOrDefault("STREAMFARM_GOSSIP_KEY");
            return NodeCommand.LoadOptions(file, overrides, o =>
            {
                o.Farm.Seeds = seeds is null ? o.Farm.Seeds : [seeds];
                o.Farm.GossipKeys = key2 is null ? o.Farm.GossipKeys : [key2];
            });
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Whether <c>A__B__0__C</c> names a setting of <see cref="ServerOptions"/> (sections by property, list items by index).</summary>
    private static bool IsSettingKey(string key)
    {
        var type = typeof(ServerOptions);
        foreach (var part in key.Split("__"))
        {
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
            {
                if (!int.TryParse(part, out _))
                {
                    return false;
                }

                type = type.GetGenericArguments()[0];
                continue;
            }

            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                type = type.GetGenericArguments()[1];
                continue;
            }

            var property = type.GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || !property.CanWrite)
            {
                return false;
            }

            type = property.PropertyType;
        }

        return true;
    }

    /// <summary>The variables the command reads itself (STREAMFARM_GOSSIP_KEY, ...): the literals of its source.</summary>
    private static HashSet<string> CliEnvironmentVariables()
    {
        var source = Path.Combine(ManifestSet.RepositoryRoot(), "src", "StreamFarm.Cli");
        return [.. Directory.GetFiles(source, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(f => VariableLiteral().Matches(File.ReadAllText(f)).Select(m => m.Groups[1].Value))];
    }

    [GeneratedRegex("\"(STREAMFARM_[A-Z][A-Z_]*[A-Z])\"")]
    private static partial Regex VariableLiteral();
}
