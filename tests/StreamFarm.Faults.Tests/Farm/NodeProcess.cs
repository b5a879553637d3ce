using StreamFarm.Tests.Shared;
using System.Diagnostics;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>
/// One life of a <c>streamfarm node</c> process (a restart is a new <see cref="NodeProcess"/> with
/// the same arguments). Its output goes to a log file; it is killed (with its tree) on dispose.
/// </summary>
internal sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _closed;

    private NodeProcess(Process process, StreamWriter log)
    {
        _process = process;
        _log = log;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The command built with these tests.</summary>
    public static string ThisBuild => Path.Combine(AppContext.BaseDirectory, "streamfarm.dll");

    /// <summary>Starts <c>streamfarm</c> (this build, as <see cref="StreamFarmCommand"/> chooses it, or the <c>streamfarm.dll</c> of another: <paramref name="dll"/>).</summary>
    public static NodeProcess Start(IEnumerable<string> args, string logFile, string? dll = null)
    {
        var info = dll is null || dll == ThisBuild ? StreamFarmCommand.StartInfo(args) : StreamFarmCommand.StartInfo(args, dll);
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var p = new NodeProcess(Process.Start(info)!, log);
        p._process.OutputDataReceived += (_, e) => p.Append(e.Data);
        p._process.ErrorDataReceived += (_, e) => p.Append(e.Data);
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        p._process.StandardInput.Close();
        return p;
    }

    /// <summary>Waits until the node prints its HTTP address (it listens); false if it exits or the patience runs out.</summary>
    public async Task<bool> WaitReadyAsync(TimeSpan patience)
    {
        var done = await Task.WhenAny(_ready.Task, _process.WaitForExitAsync(), Task.Delay(patience));
        return done == _ready.Task;
    }

    /// <summary>Sends a signal (9 kill, 19 stop, 18 continue) with the system's kill command.</summary>
    public void Signal(int signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {_process.Id}")!;
        kill.WaitForExit(5000);
    }

    public async Task WaitForExitAsync(TimeSpan patience)
    {
        using var cts = new CancellationTokenSource(patience);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // still running: the caller kills it
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            if (!_closed)
            {
                _log.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {line}");
            }
        }

        if (line.TrimStart().StartsWith("HTTP ", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await WaitForExitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        lock (_lock)
        {
            _closed = true;
            _log.Dispose();
        }

        _process.Dispose();
    }
}
