namespace StreamFarm.Bench;

/// <summary>The signals the membership benchmark sends: kill -9, and SIGSTOP/SIGCONT for a pause.</summary>
internal static partial class NativeMethods
{
    public const int SigKill = 9;
    public const int SigCont = 18;
    public const int SigStop = 19;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when it could not be sent (the process is gone).</summary>
    public static bool Signal(int pid, int signal)
    {
        try
        {
            return Kill(pid, signal) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
