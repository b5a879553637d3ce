using System.Diagnostics;
using System.Globalization;

namespace StreamFarm.Bench;

/// <summary>What one member showed about another at one poll: liveness (alive, suspect, dead, left) and users.</summary>
internal readonly record struct MemberSeen(string Liveness, int? Users);

/// <summary>
/// One member of a farm under test, a child process (<see cref="ChildProcess"/>) on its own loopback
/// address: polled for its view of the farm, asked for a status change, signalled (kill -9,
/// SIGSTOP/SIGCONT), and killed at the end whatever happened. Subclasses: a StreamFarm server and a
/// serf agent.
/// </summary>
internal abstract class MembershipMember : IAsyncDisposable
{
    private readonly ChildProcess _process;
    private long _readyTimestamp;

    protected MembershipMember(string id, string ip, string fileName, IEnumerable<string> args)
    {
        Id = id;
        Ip = ip;
        // Killed at the end (StopGrace zero): a graceful leave would only slow the end of a run down.
        _process = ChildProcess.Start(id, fileName, args, new ChildProcessOptions { OnLine = OnLine, StopGrace = TimeSpan.Zero });
    }

    /// <summary>The member's name in the farm (s1.., n1..).</summary>
    public string Id { get; }

    public string Ip { get; }

    public int Pid => _process.Pid;

    public string CommandLine => _process.CommandLine;

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

    /// <summary>
    /// Changes this member's users count by one, back and forth on each call (StreamFarm: one more RTTP
    /// client, then that client gone; serf: the users tag 2, then 1), for the churn phase.
    /// </summary>
    public abstract Task ToggleUserAsync(CancellationToken cancel);

    /// <summary>Utime + stime clock ticks used so far, or null when the process is gone.</summary>
    public long? CpuTicks()
    {
        try
        {
            return _process.CpuTicks();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Sends <paramref name="signal"/> (kill -9, SIGSTOP, SIGCONT); false when the member is gone.</summary>
    public bool Signal(int signal) => _process.Signal(signal);

    /// <summary>The last lines the member wrote (for error reports).</summary>
    public IReadOnlyList<string> RecentOutput() => _process.RecentOutput();

    /// <summary>Ends the process with kill -9 (after SIGCONT, in case it was paused) and waits for it.</summary>
    public virtual ValueTask DisposeAsync() => _process.DisposeAsync();

    /// <summary>Called for every line of output (stdout and stderr), on the process reader's thread.</summary>
    protected virtual void OnLine(string line)
    {
    }

    /// <summary>Records the moment the member is up (the first call counts).</summary>
    protected void MarkReady() => Interlocked.CompareExchange(ref _readyTimestamp, Stopwatch.GetTimestamp(), 0);

    protected static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
