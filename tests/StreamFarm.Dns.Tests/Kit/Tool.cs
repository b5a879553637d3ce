using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace StreamFarm.Dns.Tests.Kit;

/// <summary>Runs <c>dig</c> and <c>kdig</c> against a server, as an operator would.</summary>
internal static class Tool
{
    public static async Task<string> RunAsync(string file, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        Process? started;
        try
        {
            started = Process.Start(start);
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"{file} is needed by these tests: apt-get install dnsutils knot-dnsutils", e);
        }

        using var process = started ?? throw new InvalidOperationException($"{file} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }

        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', start.ArgumentList)} exited with {process.ExitCode}: {output} {await stderr}");
        return output;
    }

    /// <summary><c>dig</c> with a few retries and no recursion; <paramref name="options"/> like "+short" or "+tcp".</summary>
    public static Task<string> DigAsync(IPEndPoint server, string name, string type, params string[] options) =>
        RunAsync("dig", ["+norec", "+time=5", "+tries=3", .. options, $"@{server.Address}", "-p", server.Port.ToString(CultureInfo.InvariantCulture), name, type]);

    /// <summary>Knot's <c>kdig</c>, the same way.</summary>
    public static Task<string> KdigAsync(IPEndPoint server, string name, string type, params string[] options) =>
        RunAsync("kdig", ["+norec", "+time=5", "+retry=2", .. options, $"@{server.Address}", "-p", server.Port.ToString(CultureInfo.InvariantCulture), name, type]);

    public static List<string> Lines(string output) =>
        [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith(';'))];
}
