namespace StreamFarm.Bench;

/// <summary>How <see cref="ChildProcess.Start"/> runs a program and how the child is ended.</summary>
internal sealed record ChildProcessOptions
{
    /// <summary>Variables added to the inherited environment (shown before the program in <see cref="ChildProcess.CommandLine"/>).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>
    /// Sees every line the child writes on stdout and stderr, on the process reader's thread (a
    /// server's start-up lines: its addresses, that its membership runs).
    /// </summary>
    public Action<string>? OnLine { get; init; }

    /// <summary>How many of the last lines are kept for error reports (<see cref="ChildProcess.RecentOutput"/>).</summary>
    public int KeptLines { get; init; } = 40;

    /// <summary>
    /// How long <see cref="ChildProcess.DisposeAsync"/> waits after SIGTERM before SIGKILL. Zero:
    /// SIGKILL at once (members of a farm under test, whose graceful leave or drain would only slow
    /// the end of a run down).
    /// </summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(10);

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(KeptLines);
        ArgumentOutOfRangeException.ThrowIfLessThan(StopGrace, TimeSpan.Zero);
    }
}
