using System.Diagnostics;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>
/// An earlier commit's <c>streamfarm</c>, for the upgrade scenario: <c>scripts/old-build.sh</c> builds
/// it once into a cache (scripts/setup.sh does, so ./test.sh finds it built) and prints its path.
/// The commit is the script's, or STREAMFARM_UPGRADE_FROM's.
/// </summary>
internal static class OldBuild
{
    /// <summary>The path of the earlier build's <c>streamfarm.dll</c> (built now if the cache has none: 1-2 minutes).</summary>
    public static async Task<string> PathAsync()
    {
        var root = RepositoryRoot();
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = root };
        info.ArgumentList.Add(Path.Combine(root, "scripts", "old-build.sh"));
        if (Environment.GetEnvironmentVariable("STREAMFARM_UPGRADE_FROM") is { Length: > 0 } commit)
        {
            info.ArgumentList.Add(commit);
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        var dll = (await stdout).Trim();
        if (p.ExitCode != 0 || !File.Exists(dll))
        {
            throw new InvalidOperationException($"scripts/old-build.sh failed (exit {p.ExitCode}): {await stderr}");
        }

        return dll;
    }

    private static string RepositoryRoot()
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
}
