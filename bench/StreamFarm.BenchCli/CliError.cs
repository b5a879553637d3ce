namespace StreamFarm.BenchCli;

/// <summary>Exit codes, as the product's (../shared/CLI.md): 0 success, 1 runtime failure, 2 usage error.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int RuntimeFailure = 1;
    public const int Usage = 2;
}

/// <summary>A failure to report in one line and an exit code, without a stack trace.</summary>
internal sealed class CliError : Exception
{
    public CliError(string message, int exitCode = ExitCodes.RuntimeFailure)
        : base(message) => ExitCode = exitCode;

    public CliError(string message, Exception inner)
        : base(message, inner) => ExitCode = ExitCodes.RuntimeFailure;

    public int ExitCode { get; }
}
