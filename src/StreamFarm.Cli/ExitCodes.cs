namespace StreamFarm.Cli;

/// <summary>The command's exit codes (docs/operations.md and ../shared/CLI.md).</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int RuntimeFailure = 1;
    public const int Usage = 2;
}
