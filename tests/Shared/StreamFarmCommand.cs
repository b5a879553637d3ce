using System.Diagnostics;

namespace StreamFarm.Tests.Shared;

/// <summary>
/// How tests start the real <c>streamfarm</c> command: the .NET build next to the test assembly, or,
/// when <c>STREAMFARM_BINARY</c> names an executable (the native build, scripts/native.sh), that one,
/// so the same tests check both builds.
/// </summary>
internal static class StreamFarmCommand
{
    /// <summary>The executable under test, when it is not the .NET build.</summary>
    public static string? Binary => Environment.GetEnvironmentVariable("STREAMFARM_BINARY") is { Length: > 0 } b ? Path.GetFullPath(b) : null;

    /// <summary>A start description for <c>streamfarm args...</c>, every stream redirected.</summary>
    /// <param name="args">The command's arguments.</param>
    /// <param name="dll">Another build's <c>streamfarm.dll</c> to run instead (an upgrade test's earlier build).</param>
    /// <param name="prefix">A program the command runs under, with its arguments (<c>ip netns exec NS</c>: in another network namespace).</param>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? dll = null, IEnumerable<string>? prefix = null)
    {
        var binary = dll is null ? Binary : null;
        if (binary is not null && !File.Exists(binary))
        {
            throw new FileNotFoundException($"STREAMFARM_BINARY names '{binary}', which does not exist (scripts/native.sh makes artifacts/native/streamfarm)");
        }

        List<string> line = [.. prefix ?? []];
        if (binary is not null)
        {
            line.Add(binary);
        }
        else
        {
            line.Add("dotnet");
            line.Add(dll ?? Path.Combine(AppContext.BaseDirectory, "streamfarm.dll"));
        }

        line.AddRange(args);
        var info = new ProcessStartInfo(line[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in line.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }
}
