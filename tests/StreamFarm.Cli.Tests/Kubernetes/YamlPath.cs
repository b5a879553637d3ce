using YamlDotNet.RepresentationModel;

namespace StreamFarm.Cli.Tests.Kubernetes;

/// <summary>Reading a YAML tree by path; a missing part is a test failure naming the path.</summary>
internal static class YamlPath
{
    public static YamlNode? TryGet(this YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    public static YamlMappingNode? TryMap(this YamlMappingNode map, params string[] path)
    {
        YamlMappingNode? node = map;
        foreach (var key in path)
        {
            node = node?.TryGet(key) as YamlMappingNode;
        }

        return node;
    }

    public static YamlMappingNode Map(this YamlMappingNode map, params string[] path) =>
        map.TryMap(path) ?? throw new Xunit.Sdk.XunitException($"no mapping at {string.Join('.', path)}");

    public static string? Str(this YamlMappingNode map, string key) => (map.TryGet(key) as YamlScalarNode)?.Value;

    public static IEnumerable<YamlNode> Seq(this YamlMappingNode map, string key) =>
        map.TryGet(key) as YamlSequenceNode ?? throw new Xunit.Sdk.XunitException($"no list at {key}");

    public static IEnumerable<YamlNode> SeqOrEmpty(this YamlMappingNode map, string key) =>
        map.TryGet(key) as YamlSequenceNode ?? (IEnumerable<YamlNode>)[];
}
