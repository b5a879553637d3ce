using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Bench;

/// <summary>
/// A server process of the client benchmarks (a StreamFarm node, the DNS system, a nats-server):
/// started with its arguments, its output kept for error reports and handed line by line to an
/// observer, killed with SIGKILL on purpose (<see cref="Kill"/>) and always killed at the end.
/// </summary>
internal sealed class ClientBenchProcess : IAsyncDisposable
{
    private const int KeptOutputLines = 40;
    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly Action<string>? _onLine;

    private ClientBenchProcess(string name, Process process, string commandLine, Action<string>? onLine)
    {
        Name = name;
        _process = process;
        CommandLine = commandLine;
        _onLine = onLine;
        Pid = process.Id;
    }

    /// <summary>The server's name in the benchmark (s2, dns, nats-a).</summary>
    public string Name { get; }

    public int Pid { get; }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="args"/>; <paramref name="onLine"/> sees every line of its stdout and stderr.</summary>
    public static ClientBenchProcess Start(string name, string fileName, IEnumerable<string> args, Action<string>? onLine = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var commandLine = string.Join(' ', info.ArgumentList.Prepend(fileName));
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new BenchException($"could not start {commandLine}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"could not start {commandLine}: {e.Message}", e);
        }

        var child = new ClientBenchProcess(name, process, commandLine, onLine);
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The last lines the process wrote (for error reports).</summary>
    public string RecentOutput()
    {
        lock (_output)
        {
            return string.Join(" | ", _output);
        }
    }

    /// <summary>kill -9: the process ends without a word to its clients or its farm.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(); // SIGKILL on Linux
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    /// <summary>Waits until the process has exited (after <see cref="Kill"/>).</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new BenchException($"{Name} (pid {Pid}) did not exit within {timeout.TotalSeconds:0} s of SIGKILL");
        }
    }

    /// <summary>Waits until <paramref name="endpoint"/> accepts TCP connections; throws if the process exits or the time runs out.</summary>
    public async Task WaitUntilListeningAsync(IPEndPoint endpoint, TimeSpan timeout, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new BenchException($"{Name} exited with code {_process.ExitCode} while starting ({CommandLine}): {RecentOutput()}");
            }

            using (var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
            {
                try
                {
                    await probe.ConnectAsync(endpoint, cancel);
                    return;
                }
                catch (SocketException e) when (clock.Elapsed >= timeout)
                {
                    throw new BenchException($"{Name} did not accept connections on {endpoint} within {timeout.TotalSeconds:0} s: {e.Message} ({RecentOutput()})", e);
                }
                catch (SocketException)
                {
                    // not listening yet
                }
            }

            await Task.Delay(20, cancel);
        }
    }

    /// <summary>Kills the process (whatever state it is in) and releases it.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(cts.Token);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // gone, or past saving: the OS reaps it
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > KeptOutputLines)
            {
                _output.Dequeue();
            }
        }

        _onLine?.Invoke(line);
    }
}
