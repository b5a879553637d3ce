using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Bench;

/// <summary>
/// A program the harness runs beside itself (a server under test, a farm member, knotd, a busy loop):
/// started with its arguments and environment, its output kept (the last lines, for error reports)
/// and handed line by line to an observer, waited on until it is ready, measured from /proc (CPU
/// ticks, RSS), signalled (SIGSTOP, SIGCONT, kill -9), and ended on dispose: SIGTERM and a grace
/// period, then SIGKILL. <see cref="RunToEndAsync"/> runs a short command (a version probe, nft,
/// taskset) to its end instead. The only place in the harness that starts a process.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan OutputDrainWait = TimeSpan.FromSeconds(1);
    private readonly Process _process;
    private readonly ChildProcessOptions _options;
    private readonly Queue<string> _output = new();
    private readonly long _startedAt;

    private ChildProcess(string name, Process process, string commandLine, long startedAt, ChildProcessOptions options)
    {
        Name = name;
        _process = process;
        CommandLine = commandLine;
        _startedAt = startedAt;
        _options = options;
        Pid = process.Id;
    }

    /// <summary>Its name in the benchmark (StreamFarm, s2, nats-a, Knot), for messages.</summary>
    public string Name { get; }

    public int Pid { get; }

    /// <summary>The environment added, the program and its arguments, as a shell would take them (for reports).</summary>
    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once <see cref="HasExited"/>.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="args"/>; the child's stdin is a pipe nobody writes to.</summary>
    /// <exception cref="BenchException">the program could not be started</exception>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> args, ChildProcessOptions? options = null)
    {
        options ??= new ChildProcessOptions();
        options.Validate();
        var (process, commandLine, startedAt) = Launch(fileName, args, options.Environment);
        var child = new ChildProcess(name, process, commandLine, startedAt, options);
        process.OutputDataReceived += (_, e) => child.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => child.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>
    /// Runs a short command to its end and returns its exit code, stdout and stderr (its stdin closed).
    /// Killed, with a <see cref="BenchException"/>, if it takes longer than <paramref name="timeout"/>.
    /// </summary>
    /// <exception cref="BenchException">it could not be started, or did not finish in time</exception>
    public static async Task<ChildProcessResult> RunToEndAsync(string fileName, IEnumerable<string> args, TimeSpan timeout, CancellationToken cancel)
    {
        var (process, commandLine, _) = Launch(fileName, args, environment: null);
        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            limit.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                await KillAsync(process);
                cancel.ThrowIfCancellationRequested();
                throw new BenchException($"{commandLine} did not finish within {timeout.TotalSeconds:0.#} s");
            }

            return new ChildProcessResult(commandLine, process.ExitCode, await output, await errors);
        }
    }

    /// <summary>A readiness probe for <see cref="WaitUntilReadyAsync"/>: <paramref name="endpoint"/> accepts a TCP connection.</summary>
    public static Func<CancellationToken, Task<bool>> AcceptsConnections(IPEndPoint endpoint) => async cancel =>
    {
        using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await probe.ConnectAsync(endpoint, cancel);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    };

    /// <summary>
    /// Polls <paramref name="ready"/> every <paramref name="interval"/> until it answers true, and
    /// returns the time from just before the process started. The probe's token is cancelled when
    /// <paramref name="timeout"/> runs out.
    /// </summary>
    /// <param name="ready">the probe: true once the child is ready</param>
    /// <param name="what">what ready means, for the error ("accepting connections on 127.0.0.2:7400")</param>
    /// <param name="timeout">how long it may take from now</param>
    /// <param name="interval">the pause between probes</param>
    /// <param name="cancel">stops the wait</param>
    /// <exception cref="BenchException">the child exited, or was not ready in time (with its last output)</exception>
    public async Task<TimeSpan> WaitUntilReadyAsync(Func<CancellationToken, Task<bool>> ready, string what, TimeSpan timeout, TimeSpan interval, CancellationToken cancel)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        try
        {
            while (true)
            {
                if (_process.HasExited)
                {
                    await DrainOutputAsync();
                    throw new BenchException($"{Name} exited with code {_process.ExitCode} while starting ({CommandLine}): {RecentOutputText()}");
                }

                if (await ready(deadline.Token))
                {
                    return Stopwatch.GetElapsedTime(_startedAt);
                }

                await Task.Delay(interval, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new BenchException($"{Name} was not {what} within {timeout.TotalSeconds:0.#} s ({CommandLine}): {RecentOutputText()}");
        }
    }

    /// <summary>Waits until <paramref name="endpoint"/> accepts TCP connections (probed every 20 ms); returns the time since the start.</summary>
    /// <exception cref="BenchException">the child exited, or did not listen in time</exception>
    public Task<TimeSpan> WaitUntilListeningAsync(IPEndPoint endpoint, TimeSpan timeout, CancellationToken cancel) =>
        WaitUntilReadyAsync(AcceptsConnections(endpoint), $"accepting connections on {endpoint}", timeout, TimeSpan.FromMilliseconds(20), cancel);

    /// <summary>Waits until the child has exited (after a kill -9, or a command that ends by itself).</summary>
    /// <exception cref="BenchException">it is still running after <paramref name="timeout"/></exception>
    public async Task WaitForExitAsync(TimeSpan timeout, CancellationToken cancel = default)
    {
        if (!await TryWaitForExitAsync(timeout, cancel))
        {
            throw new BenchException($"{Name} (pid {Pid}) did not exit within {timeout.TotalSeconds:0.#} s");
        }
    }

    /// <summary>Sends <paramref name="signal"/> (<see cref="NativeMethods.SigStop"/>, <see cref="NativeMethods.SigKill"/>, ...); false when the child is gone.</summary>
    public bool Signal(int signal) => !_process.HasExited && NativeMethods.Signal(Pid, signal);

    /// <summary>Utime + stime clock ticks used so far (<see cref="NativeMethods.ClockTicksPerSecond"/> a second), from /proc/PID/stat.</summary>
    /// <exception cref="IOException">the child is gone</exception>
    public long CpuTicks()
    {
        // After the command name (field 2, in parentheses, may hold spaces): field 3 (state) on. utime is field 14, stime 15.
        var fields = StatFields($"/proc/{Pid.ToString(CultureInfo.InvariantCulture)}/stat");
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>Its resident set size (VmRSS of /proc/PID/status) in KiB.</summary>
    /// <exception cref="IOException">the child is gone</exception>
    public long RssKiB()
    {
        var path = $"/proc/{Pid.ToString(CultureInfo.InvariantCulture)}/status";
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidDataException($"no VmRSS in {path}");
    }

    /// <summary>
    /// Cutime + cstime of the harness itself (fields 16 and 17 of /proc/self/stat): the CPU ticks of
    /// the children it has waited for. The runtime reaps a child when it exits, so the difference
    /// across a run is the CPU of the commands that ended in it (dnsperf).
    /// </summary>
    public static long ReapedChildrenCpuTicks()
    {
        var fields = StatFields("/proc/self/stat");
        return long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
    }

    /// <summary>The last lines the child wrote on stdout and stderr.</summary>
    public IReadOnlyList<string> RecentOutput()
    {
        lock (_output)
        {
            return [.. _output];
        }
    }

    /// <summary><see cref="RecentOutput"/> on one line, for a message.</summary>
    public string RecentOutputText() => string.Join(" | ", RecentOutput());

    /// <summary>
    /// Ends the child and waits for it: SIGCONT (a paused child cannot act on SIGTERM), SIGTERM and up
    /// to <paramref name="grace"/> to leave (none when zero), then SIGKILL to it and its children.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (_process.HasExited)
        {
            return;
        }

        Signal(NativeMethods.SigCont);
        if (grace > TimeSpan.Zero && Signal(NativeMethods.SigTerm) && await TryWaitForExitAsync(grace, CancellationToken.None))
        {
            return;
        }

        await KillAsync(_process);
    }

    /// <summary><see cref="StopAsync"/> with <see cref="ChildProcessOptions.StopGrace"/>, then releases the process.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(_options.StopGrace);
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <summary>Starts the program with every stream redirected (so no child reads or writes the harness's terminal).</summary>
    private static (Process Process, string CommandLine, long StartedAt) Launch(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment)
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

        var env = environment ?? new Dictionary<string, string>();
        foreach (var (name, value) in env)
        {
            info.Environment[name] = value;
        }

        var commandLine = string.Join(' ', env.Select(e => $"{e.Key}={e.Value}").Concat(info.ArgumentList.Prepend(fileName)));
        var startedAt = Stopwatch.GetTimestamp();
        try
        {
            return (Process.Start(info) ?? throw new BenchException($"could not start {commandLine}"), commandLine, startedAt);
        }
        catch (Win32Exception e)
        {
            throw new BenchException($"could not start {commandLine}: {e.Message}", e);
        }
    }

    /// <summary>SIGKILL to the process and its children, and a bounded wait: a child that does not go is left to the OS.</summary>
    private static async Task KillAsync(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
            using var wait = new CancellationTokenSource(KillWait);
            await process.WaitForExitAsync(wait.Token);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or Win32Exception)
        {
            // gone already, or past saving
        }
    }

    private static string[] StatFields(string path)
    {
        var stat = File.ReadAllText(path);
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return fields.Length >= 15 ? fields : throw new InvalidDataException($"unexpected {path}: {stat}");
    }

    private async Task<bool> TryWaitForExitAsync(TimeSpan timeout, CancellationToken cancel)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        limit.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
            return true;
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Lets the reader threads hand over the last lines of a child that has exited (bounded: a grandchild may hold the pipes).</summary>
    private async Task DrainOutputAsync() => await TryWaitForExitAsync(OutputDrainWait, CancellationToken.None);

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > _options.KeptLines)
            {
                _output.Dequeue();
            }
        }

        _options.OnLine?.Invoke(line);
    }
}
