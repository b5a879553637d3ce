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
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? dll = null)
    {
        var binary = dll is null ? Binary : null;
        if (binary is not null && !File.Exists(binary))
        {
            throw new FileNotFoundException($"STREAMFARM_BINARY names '{binary}', which does not exist (scripts/native.sh makes artifacts/native/streamfarm)");
        }

        var info = new ProcessStartInfo(binary ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        if (binary is null)
        {
            info.ArgumentList.Add(dll ?? Path.Combine(AppContext.BaseDirectory, "streamfarm.dll"));
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }
}
