namespace StreamFarm.Bench;

/// <summary>What a short command run to its end (<see cref="ChildProcess.RunToEndAsync"/>) left: its exit code and everything it wrote.</summary>
internal sealed record ChildProcessResult(string CommandLine, int ExitCode, string Output, string Errors)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>
    /// The first non-empty line of stdout, then of stderr, that contains <paramref name="containing"/>
    /// (any line when null), trimmed; null when there is none. For version probes: <c>nats-server
    /// --version</c> prints one line on stdout, <c>dnsperf -h</c> its version among the help on stderr.
    /// </summary>
    public string? FirstLine(string? containing = null) =>
        $"{Output}\n{Errors}".Split('\n')
            .Select(l => l.Trim())
            .FirstOrDefault(l => l.Length > 0 && (containing is null || l.Contains(containing, StringComparison.Ordinal)));
}
