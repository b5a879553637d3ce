using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace StreamFarm.Cli.Tests.Kubernetes;

/// <summary>
/// The manifests of <c>deploy/kubernetes</c>, parsed with YamlDotNet, and what the tests read from
/// them: the StatefulSet's container, its environment as the kubelet would make it (downward API,
/// Secrets, <c>$(VAR)</c> expansion), the Services and the PodDisruptionBudget.
/// </summary>
internal sealed partial class ManifestSet
{
    public const string ExampleSecretsFile = "secret.example.yaml";

    private ManifestSet(string directory, IReadOnlyList<Manifest> applied, IReadOnlyList<Manifest> exampleSecrets, YamlMappingNode kustomization)
    {
        Directory = directory;
        Applied = applied;
        ExampleSecrets = exampleSecrets;
        Kustomization = kustomization;
    }

    public string Directory { get; }

    /// <summary>Every document of the files the kustomization applies.</summary>
    public IReadOnlyList<Manifest> Applied { get; }

    /// <summary>The Secrets of <see cref="ExampleSecretsFile"/> (their keys; the values are placeholders).</summary>
    public IReadOnlyList<Manifest> ExampleSecrets { get; }

    public YamlMappingNode Kustomization { get; }

    public string Namespace => Kustomization.Str("namespace") ?? "default";

    public Manifest StatefulSet => Applied.Single(m => m.Kind == "StatefulSet");

    public YamlMappingNode PodTemplate => StatefulSet.Root.Map("spec", "template");

    public YamlMappingNode PodSpec => PodTemplate.Map("spec");

    /// <summary>The server's container: the pod's only one.</summary>
    public YamlMappingNode Container => Assert.Single(PodSpec.Seq("containers").Cast<YamlMappingNode>());

    /// <summary>The name of the StatefulSet's first pod, whose id the tests take.</summary>
    public string FirstPodName => StatefulSet.Name + "-0";

    public IEnumerable<Manifest> OfKind(string kind) => Applied.Where(m => m.Kind == kind);

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "StreamFarm.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no StreamFarm.slnx above {AppContext.BaseDirectory}");
    }

    public static ManifestSet Load() => Load(Path.Combine(RepositoryRoot(), "deploy", "kubernetes"));

    public static ManifestSet Load(string directory)
    {
        var kustomization = (YamlMappingNode)Documents(Path.Combine(directory, "kustomization.yaml")).Single();
        var applied = kustomization.Seq("resources").Select(r => ((YamlScalarNode)r).Value!)
            .SelectMany(file => Documents(Path.Combine(directory, file)).Select(d => Describe(file, d))).ToList();
        var secrets = Documents(Path.Combine(directory, ExampleSecretsFile)).Select(d => Describe(ExampleSecretsFile, d)).ToList();
        return new ManifestSet(directory, applied, secrets, kustomization);
    }

    private static Manifest Describe(string file, YamlNode document)
    {
        var root = (YamlMappingNode)document;
        return new Manifest(file, root.Str("kind") ?? "", root.Map("metadata").Str("name") ?? "", root);
    }

    private static IEnumerable<YamlNode> Documents(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path))
        {
            stream.Load(reader);
        }

        return stream.Documents.Select(d => d.RootNode).Where(n => n is YamlMappingNode);
    }

    /// <summary>The container's arguments, with <c>$(VAR)</c> expanded from <paramref name="environment"/>.</summary>
    public IReadOnlyList<string> Args(IReadOnlyDictionary<string, string> environment, List<string> unresolved) =>
        [.. Container.SeqOrEmpty("args").Select(a => Expand(((YamlScalarNode)a).Value!, environment, unresolved))];

    /// <summary>The preStop hook's command (Kubernetes does not expand variables in it).</summary>
    public IReadOnlyList<string> PreStopCommand =>
        [.. Container.Map("lifecycle", "preStop", "exec").Seq("command").Select(a => ((YamlScalarNode)a).Value!)];

    /// <summary>
    /// The container's environment as the kubelet makes it: the downward API's fields for the pod
    /// named <see cref="FirstPodName"/> at <paramref name="podIp"/>, Secret keys from
    /// <paramref name="secretValue"/> (name, key), and each value's <c>$(VAR)</c> expanded from the
    /// variables before it. Unresolvable references land in <paramref name="unresolved"/>.
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment(string podIp, Func<string, string, string> secretValue, List<string> unresolved)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in Container.SeqOrEmpty("env").Cast<YamlMappingNode>())
        {
            var name = item.Str("name")!;
            if (item.Str("value") is { } value)
            {
                env[name] = Expand(value, env, unresolved);
            }
            else if (item.TryMap("valueFrom", "fieldRef") is { } field)
            {
                env[name] = field.Str("fieldPath") switch
                {
                    "metadata.name" => FirstPodName,
                    "metadata.namespace" => Namespace,
                    "status.podIP" => podIp,
                    var other => throw new InvalidOperationException($"env {name}: fieldRef {other} is not one the tests know"),
                };
            }
            else if (item.TryMap("valueFrom", "secretKeyRef") is { } secret)
            {
                env[name] = secretValue(secret.Str("name")!, secret.Str("key")!);
            }
            else
            {
                throw new InvalidOperationException($"env {name}: neither value, fieldRef nor secretKeyRef");
            }
        }

        return env;
    }

    /// <summary>Kubernetes' <c>$(VAR)</c> expansion: a defined variable is replaced, <c>$$</c> escapes, anything else stays as written.</summary>
    public static string Expand(string text, IReadOnlyDictionary<string, string> variables, List<string> unresolved) =>
        Reference().Replace(text, m =>
        {
            if (m.Value.StartsWith("$$", StringComparison.Ordinal))
            {
                return m.Value[1..];
            }

            if (variables.TryGetValue(m.Groups[1].Value, out var v))
            {
                return v;
            }

            unresolved.Add(m.Value);
            return m.Value;
        });

    [GeneratedRegex(@"\$?\$\(([A-Za-z_][A-Za-z0-9_]*)\)")]
    private static partial Regex Reference();

    /// <summary>The container's ports: name to (number, protocol).</summary>
    public IReadOnlyDictionary<string, (int Port, string Protocol)> ContainerPorts =>
        Container.Seq("ports").Cast<YamlMappingNode>().ToDictionary(
            p => p.Str("name")!,
            p => (int.Parse(p.Str("containerPort")!, System.Globalization.CultureInfo.InvariantCulture), p.Str("protocol") ?? "TCP"));

    /// <summary>The labels a selector's <c>matchLabels</c> (or a Service's plain selector) asks for.</summary>
    public static IReadOnlyDictionary<string, string> Labels(YamlMappingNode? map) =>
        map is null ? new Dictionary<string, string>() : map.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ((YamlScalarNode)c.Value).Value!);
}
