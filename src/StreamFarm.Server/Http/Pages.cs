using System.Collections.Frozen;
using Microsoft.AspNetCore.Http;

namespace StreamFarm.Server.Http;

/// <summary>
/// The pages built from clients/js and embedded in this assembly (see StreamFarm.Server.csproj):
/// the dashboard, the price grid, their scripts (the browser client and uPlot, bundled) and styles.
/// </summary>
internal static class Pages
{
    private static readonly FrozenDictionary<string, (byte[] Body, string Type)> Files = Load();

    /// <summary>Whether the pages were built into this assembly (a build without Node.js has none).</summary>
    public static bool Available => Files.ContainsKey("dashboard.html");

    public static IResult Serve(string name) =>
        Files.TryGetValue(name, out var f)
            ? Results.Bytes(f.Body, f.Type)
            : Results.NotFound();

    private static FrozenDictionary<string, (byte[], string)> Load()
    {
        var assembly = typeof(Pages).Assembly;
        var files = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith("pages/", StringComparison.Ordinal))
            {
                continue;
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var name = resource["pages/".Length..];
            files[name] = (copy.ToArray(), Path.GetExtension(name) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                _ => "application/octet-stream",
            });
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
