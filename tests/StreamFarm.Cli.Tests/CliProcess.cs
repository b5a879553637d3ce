using StreamFarm.Tests.Shared;
using System.Diagnostics;
using System.Text;

namespace StreamFarm.Cli.Tests;

/// <summary>Runs the real <c>streamfarm</c> command as a child process and captures its output.</summary>
internal sealed class CliProcess : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly Lock _lock = new();

    private CliProcess(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Stdout
    {
        get
        {
            lock (_lock)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_lock)
            {
                return _stderr.ToString();
            }
        }
    }

    public static CliProcess Start(IEnumerable<string> args, IDictionary<string, string>? env = null, string? stdin = null, string? workingDirectory = null) =>
        Start(StreamFarmCommand.StartInfo(args), env, stdin, workingDirectory);

    /// <summary>Runs another program (dotnet, podman, the installed tool) the same way.</summary>
    public static CliProcess StartProgram(string file, IEnumerable<string> args, string? workingDirectory = null, IDictionary<string, string>? env = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return Start(info, env, null, workingDirectory);
    }

    private static CliProcess Start(ProcessStartInfo info, IDictionary<string, string>? env, string? stdin, string? workingDirectory)
    {
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            info.Environment[k] = v;
        }

        var p = new CliProcess(Process.Start(info)!);
        p._process.OutputDataReceived += (_, e) => p.Append(p._stdout, e.Data);
        p._process.ErrorDataReceived += (_, e) => p.Append(p._stderr, e.Data);
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        if (stdin is not null)
        {
            p._process.StandardInput.Write(stdin);
        }

        p._process.StandardInput.Close();
        return p;
    }

    /// <summary>Runs to the end and returns the exit code.</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(IEnumerable<string> args, IDictionary<string, string>? env = null, string? stdin = null)
    {
        await using var p = Start(args, env, stdin);
        var code = await p.WaitForExitAsync();
        return (code, p.Stdout, p.Stderr);
    }

    public async Task<int> WaitForExitAsync(TimeSpan? patience = null)
    {
        using var cts = new CancellationTokenSource(patience ?? Patience);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{_process.StartInfo.FileName} {string.Join(' ', _process.StartInfo.ArgumentList)} still running after {(patience ?? Patience).TotalSeconds} s. stdout: {Stdout} stderr: {Stderr}");
        }

        _process.WaitForExit(); // flush the output events
        return _process.ExitCode;
    }

    /// <summary>Waits until standard output has a line containing <paramref name="text"/>; returns that line.</summary>
    public async Task<string> WaitForOutputAsync(string text, TimeSpan? patience = null)
    {
        var deadline = DateTime.UtcNow + (patience ?? Patience);
        while (DateTime.UtcNow < deadline)
        {
            var line = Stdout.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                return line.TrimEnd('\r');
            }

            if (_process.HasExited)
            {
                break;
            }

            await Task.Delay(20);
        }

        throw new InvalidOperationException($"no '{text}' in output. stdout: {Stdout} stderr: {Stderr}");
    }

    public void Signal(int signal) => _ = Process.Start("kill", $"-{signal} {_process.Id}")!.WaitForExit(5000);

    private void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            sb.AppendLine(line);
        }
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
