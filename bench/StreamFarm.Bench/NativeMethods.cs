using System.Runtime.InteropServices;

namespace StreamFarm.Bench;

/// <summary>The two libc calls the harness needs: a graceful stop signal and the clock-tick rate of /proc.</summary>
internal static partial class NativeMethods
{
    public const int SigTerm = 15;
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

    /// <summary>Sends SIGTERM; false when the signal could not be sent.</summary>
    public static bool Terminate(int pid)
    {
        try
        {
            return Kill(pid, SigTerm) == 0;
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
