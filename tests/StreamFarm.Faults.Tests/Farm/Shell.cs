using System.Diagnostics;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>Runs a system command (<c>nft</c>, <c>ip</c>, <c>dig</c>) to its end.</summary>
internal static class Shell
{
    /// <summary>
    /// Its exit code and output; with <paramref name="check"/>, a failure throws with the command
    /// and its error output. <paramref name="input"/> goes to its standard input.
    /// </summary>
    public static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args, bool check = true, string? input = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        if (input is not null)
        {
            p.StandardInput.Write(input);
        }

        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (check && p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', info.ArgumentList)}: exit {p.ExitCode}: {err.Result.Trim()}");
        }

        return (p.ExitCode, output, err.Result);
    }
}
