using System.Globalization;

namespace StreamFarm.Bench;

/// <summary>
/// Saturates one CPU core around one member: the member (every thread) is pinned to the last core,
/// every other member to the remaining cores, and <c>hogs</c> busy loops (<c>sh -c 'while :; do :; done'</c>,
/// pinned with taskset) run on the member's core at the same priority, so the scheduler gives the
/// member about 1/(hogs+1) of its core whenever it wants to run. Dispose stops the loops (kill -9) and
/// lets every member use every core again.
/// </summary>
internal sealed class CpuHog : IAsyncDisposable
{
    private readonly List<ChildProcess> _loops = [];
    private readonly List<int> _pinned = [];
    private readonly string _allCores;

    private CpuHog()
    {
        _allCores = $"0-{Environment.ProcessorCount - 1}";
    }

    /// <summary>The core the victim shares with the loops.</summary>
    public static int Core => Math.Max(0, Environment.ProcessorCount - 1);

    /// <summary>What this does, for the report.</summary>
    public static string Describe(int hogs) => Environment.ProcessorCount > 1
        ? $"the member's threads pinned to core {Core} (taskset -a -p) together with {hogs} busy loops at the same priority (taskset -c {Core} sh -c 'while :; do :; done'); the other members pinned to the other core(s)"
        : $"{hogs} busy loops at the same priority on the only core";

    public static async Task<CpuHog> StartAsync(MembershipMember victim, IEnumerable<MembershipMember> others, int hogs)
    {
        var hog = new CpuHog();
        try
        {
            if (Environment.ProcessorCount > 1)
            {
                var rest = Environment.ProcessorCount == 2 ? "0" : $"0-{Core - 1}";
                foreach (var m in others.Where(m => !m.HasExited))
                {
                    await hog.PinAsync(m.Pid, rest);
                }

                await hog.PinAsync(victim.Pid, Core.ToString(CultureInfo.InvariantCulture));
            }

            for (var i = 0; i < hogs; i++)
            {
                hog._loops.Add(ChildProcess.Start("busy loop", "taskset", ["-c", Core.ToString(CultureInfo.InvariantCulture), "sh", "-c", "while :; do :; done"],
                    new ChildProcessOptions { StopGrace = TimeSpan.Zero }));
            }

            return hog;
        }
        catch (BenchException e)
        {
            await hog.DisposeAsync();
            throw new BenchException($"could not saturate a core: {e.Message}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var loop in _loops)
        {
            await loop.DisposeAsync(); // kill -9
        }

        _loops.Clear();
        foreach (var pid in _pinned)
        {
            await TasksetAsync(pid, _allCores);
        }
    }

    private async Task PinAsync(int pid, string cores)
    {
        _pinned.Add(pid);
        if (!await TasksetAsync(pid, cores))
        {
            throw new BenchException($"taskset -a -p -c {cores} {pid} failed");
        }
    }

    private static async Task<bool> TasksetAsync(int pid, string cores) =>
        (await ChildProcess.RunToEndAsync("taskset", ["-a", "-p", "-c", cores, pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10), CancellationToken.None)).Succeeded;
}
