using System.Diagnostics;
using System.Globalization;

namespace StreamFarm.Bench;

/// <summary>What one member showed about another at one poll: liveness (alive, suspect, dead, left) and users.</summary>
internal readonly record struct MemberSeen(string Liveness, int? Users);

/// <summary>
/// One member of a farm under test, a child process on its own loopback address: polled for its view
/// of the farm, asked for a status change, signalled (kill -9, SIGSTOP/SIGCONT), and killed at the
/// end whatever happened. Subclasses: a StreamFarm server and a serf agent.
/// </summary>
internal abstract class MembershipMember : IAsyncDisposable
{
    private const int KeptOutputLines = 40;
    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly string _statPath;
    private long _readyTimestamp;

    protected MembershipMember(string id, string ip, string fileName, IEnumerable<string> args)
    {
        Id = id;
        Ip = ip;
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

        CommandLine = string.Join(' ', info.ArgumentList.Prepend(fileName));
        try
        {
            _process = Process.Start(info) ?? throw new BenchException($"could not start {CommandLine}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"could not start {CommandLine}: {e.Message}", e);
        }

        Pid = _process.Id;
        _statPath = $"/proc/{Pid}/stat";
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The member's name in the farm (s1.., n1..).</summary>
    public string Id { get; }

    public string Ip { get; }

    public int Pid { get; }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// <see cref="Stopwatch.GetTimestamp"/> when the member said its membership is running (StreamFarm:
    /// the Gossip line of its start-up output; serf: its own join event in its log), or 0 before.
    /// </summary>
    public long ReadyTimestamp => Interlocked.Read(ref _readyTimestamp);

    /// <summary>Its view of the farm: member id → liveness and users; null while it cannot answer (starting, paused, gone).</summary>
    public abstract Task<IReadOnlyDictionary<string, MemberSeen>?> PollAsync(CancellationToken cancel);

    /// <summary>Changes this member's users count from 0 to 1 (an RTTP client, or a serf tag).</summary>
    public abstract Task ChangeStatusAsync(CancellationToken cancel);

    /// <summary>Utime + stime clock ticks used so far, or null when the process is gone.</summary>
    public long? CpuTicks()
    {
        try
        {
            return ServerProcess.ReadCpuTicks(_statPath);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public bool Signal(int signal) => NativeMethods.Signal(Pid, signal);

    /// <summary>The last lines the member wrote (for error reports).</summary>
    public IReadOnlyList<string> RecentOutput()
    {
        lock (_output)
        {
            return [.. _output];
        }
    }

    /// <summary>Ends the process with kill -9 (after SIGCONT, in case it was paused) and waits for it.</summary>
    public virtual async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signal(NativeMethods.SigCont);
                Signal(NativeMethods.SigKill);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await _process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <summary>Called for every line of output (stdout and stderr), on the process reader's thread.</summary>
    protected virtual void OnLine(string line)
    {
    }

    /// <summary>Records the moment the member is up (the first call counts).</summary>
    protected void MarkReady() => Interlocked.CompareExchange(ref _readyTimestamp, Stopwatch.GetTimestamp(), 0);

    protected static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        OnLine(line);
        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > KeptOutputLines)
            {
                _output.Dequeue();
            }
        }
    }
}
