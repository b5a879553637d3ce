using YamlDotNet.RepresentationModel;

namespace StreamFarm.Cli.Tests.Kubernetes;

/// <summary>One YAML document of deploy/kubernetes: its file, kind, name and root mapping.</summary>
internal sealed record Manifest(string File, string Kind, string Name, YamlMappingNode Root);
