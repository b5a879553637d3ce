using System.Runtime.InteropServices;

namespace StreamFarm.Bench;

/// <summary>The libc calls the harness needs: signals to its children, and the clock-tick rate of /proc.</summary>
internal static partial class NativeMethods
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;
    private const int ScClkTck = 2; // _SC_CLK_TCK on Linux

    /// <summary>Ticks per second of the utime/stime fields of /proc/PID/stat (100 on Linux), or 100 when unknown.</summary>
    public static long ClockTicksPerSecond()
    {
        try
        {
            var ticks = SysConf(ScClkTck);
            return ticks > 0 ? ticks : 100;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }

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

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
