using System.Globalization;

namespace StreamFarm.Bench;

/// <summary>
/// The whole machine's busy CPU time from /proc/stat, so a run can tell how much CPU went to neither
/// the server nor the load generator (kernel softirq work, or other processes disturbing the run).
/// </summary>
public static class MachineCpu
{
    /// <summary>Busy clock ticks of all CPUs together (everything but idle and iowait), or 0 when unknown.</summary>
    public static long BusyTicks()
    {
        try
        {
            using var reader = new StreamReader("/proc/stat");
            var line = reader.ReadLine();
            if (line is null || !line.StartsWith("cpu ", StringComparison.Ordinal))
            {
                return 0;
            }

            // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = 0;
            for (var i = 1; i < Math.Min(fields.Length, 9); i++)
            {
                if (i is 4 or 5)
                {
                    continue;
                }

                busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
            }

            return busy;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
