using System.Diagnostics;

namespace StreamFarm.Benchmarks.Receive;

/// <summary>
/// An allocation-counting run of <see cref="ReceiveBenchmarks"/> (<c>--receive-check [blocks] [only]</c>):
/// for each case, setup, 20 blocks to warm up, then <c>blocks</c> blocks measured with
/// <see cref="GC.GetTotalAllocatedBytes(bool)"/> (every thread) and a stopwatch.
/// </summary>
internal static class ReceiveCheck
{
    /// <param name="blocks">Blocks of <see cref="ReceiveBenchmarks.Messages"/> measured per case.</param>
    /// <param name="only">Runs only the cases whose name contains it (all: empty).</param>
    public static void Run(int blocks, string only = "")
    {
        (string Name, Action<ReceiveBenchmarks> Setup, Func<ReceiveBenchmarks, Task<long>> Op)[] cases =
        [
            ("StreamFarm FarmClient.SubscribeAsync", b => b.SetupFarmClient(), b => b.StreamFarmFarmClient()),
            ("StreamFarm FarmClient.SubscribePooledAsync", b => b.SetupPooled(), b => b.StreamFarmPooled()),
            ("StreamFarm RttpConnection.Messages", b => b.SetupConnection(), b => b.StreamFarmConnection()),
            ("NATS.Net NatsMemoryOwner<byte>", b => b.SetupNatsBytes(), b => b.NatsBytes()),
            ("NATS.Net string", b => b.SetupNatsString(), b => b.NatsString()),
        ];
        foreach (var payload in new[] { 16, 128 })
        {
            foreach (var (name, setup, op) in cases.Where(c => c.Name.Contains(only, StringComparison.Ordinal)))
            {
                Case(payload, name, setup, op, blocks);
            }
        }
    }

    private static void Case(int payload, string name, Action<ReceiveBenchmarks> setup, Func<ReceiveBenchmarks, Task<long>> op, int blocks)
    {

        var b = new ReceiveBenchmarks { PayloadBytes = payload };
        var watchdog = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var _ = watchdog.Token.Register(() =>
        {
            Console.Error.WriteLine($"{name} [{payload} B]: stuck, giving up");
            Environment.Exit(2);
        });
        Console.Error.WriteLine($"{name} [{payload} B]: setting up");
        setup(b);
        for (var i = 0; i < 20; i++)
        {
            op(b).GetAwaiter().GetResult();
        }

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < blocks; i++)
        {
            op(b).GetAwaiter().GetResult();
        }

        clock.Stop();
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        var messages = (double)blocks * ReceiveBenchmarks.Messages;
        Console.WriteLine($"{name,-40} [{payload,3} B]  {messages / clock.Elapsed.TotalSeconds,12:N0} msg/s  {allocated / messages,8:N1} B/msg");
        b.Cleanup();
    }
}
