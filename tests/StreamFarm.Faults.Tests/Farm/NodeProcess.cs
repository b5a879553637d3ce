using StreamFarm.Tests.Shared;
using System.Diagnostics;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>
/// One life of a <c>streamfarm node</c> process (a restart is a new <see cref="NodeProcess"/> with
/// the same arguments), or of another <c>streamfarm</c> command a scenario keeps running (a
/// subscriber). Its output goes to a log file, and each line to an optional watcher; it is killed
/// (with its tree) on dispose.
/// </summary>
internal sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<string, bool>? _onLine;
    private bool _closed;

    private NodeProcess(Process process, StreamWriter log, Action<string, bool>? onLine)
    {
        _process = process;
        _log = log;
        _onLine = onLine;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The command built with these tests.</summary>
    public static string ThisBuild => Path.Combine(AppContext.BaseDirectory, "streamfarm.dll");

    /// <summary>
    /// How to run the <c>streamfarm</c> command (<see cref="StreamFarmCommand"/>: this build, or the
    /// native executable named by <c>STREAMFARM_BINARY</c>; or another build's <c>streamfarm.dll</c>,
    /// <paramref name="dll"/>), after <paramref name="prefix"/> if given (for example
    /// <c>ip netns exec NS</c>, which runs the command in another network namespace).
    /// </summary>
    public static ProcessStartInfo Command(IEnumerable<string> args, IEnumerable<string>? prefix = null, string? dll = null) =>
        StreamFarmCommand.StartInfo(args, dll is null || dll == ThisBuild ? null : dll, prefix);

    public static NodeProcess Start(IEnumerable<string> args, string logFile) => Start(Command(args), logFile);

    /// <summary>
    /// Starts a process made by <see cref="Command"/> (or a network's variant of it: another
    /// namespace, another environment). <paramref name="onLine"/> sees every line of its output,
    /// with true for standard error.
    /// </summary>
    public static NodeProcess Start(ProcessStartInfo info, string logFile, Action<string, bool>? onLine = null)
    {
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var p = new NodeProcess(Process.Start(info)!, log, onLine);
        p._process.OutputDataReceived += (_, e) => p.Append(e.Data, false);
        p._process.ErrorDataReceived += (_, e) => p.Append(e.Data, true);
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

    private void Append(string? line, bool error)
    {
        if (line is null)
        {
            return;
        }

        _onLine?.Invoke(line, error);
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
