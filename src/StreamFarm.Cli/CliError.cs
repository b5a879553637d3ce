namespace StreamFarm.Cli;

/// <summary>A failure to report in one line and an exit code, without a stack trace.</summary>
internal sealed class CliError : Exception
{
    public CliError()
    {
    }

    public CliError(string message)
        : base(message)
    {
    }

    public CliError(string message, Exception inner)
        : base(message, inner)
    {
    }

    public CliError(string message, int exitCode)
        : base(message) => ExitCode = exitCode;

    public int ExitCode { get; } = ExitCodes.RuntimeFailure;
}
