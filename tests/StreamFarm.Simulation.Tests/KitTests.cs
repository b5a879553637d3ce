using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.TestKit;

namespace StreamFarm.Simulation.Tests;

/// <summary>The kit's faults do what they say: kills end connections as their mode says, paused processes hold their timers and traffic, cut ways hold bytes until the heal.</summary>
public sealed class KitTests
{
    private static string[] Subjects => ["/K/a"];

    [Theory]
    [InlineData(KillMode.Close, "end of stream")]
    [InlineData(KillMode.Reset, "reset")]
    [InlineData(KillMode.Silent, "silent")]
    public void Kill_EndsTheClientsConnection_AsTheModeSays_AndItMovesToAnotherServer(KillMode mode, string expected)
    {
        using var farm = new SimFarm(new SimFarmOptions { Servers = 3, Seed = 5 });
        farm.Eventually(farm.Converged, TimeSpan.FromSeconds(10), "converged");
        var client = farm.AddClient("c", "s2", Subjects);
        farm.Eventually(() => client.IsWelcomed, TimeSpan.FromSeconds(5), "welcomed");
        var killedAt = farm.NowMs;
        farm.Kill("s2", mode);
        farm.Eventually(() => client.Sessions == 2 && client.IsWelcomed, TimeSpan.FromSeconds(10), "moved to another server");
        var gone = client.Events.First(e => e.Kind == ClientEventKind.Disconnected);
        Assert.Contains(expected, gone.Line, StringComparison.Ordinal);
        Assert.NotEqual("s2", client.Server);
        if (mode == KillMode.Silent)
        {
            Assert.True(gone.AtMs - killedAt >= 3000, $"a silent kill is noticed by the client's own timeout only (after {gone.AtMs - killedAt} ms)");
        }
        else
        {
            Assert.True(gone.AtMs - killedAt < 100, $"noticed after {gone.AtMs - killedAt} ms");
        }
    }

    [Fact]
    public void DeadHost_RefusesConnections_CutWay_TimesOut_HealedWay_Connects()
    {
        using var farm = new SimFarm(new SimFarmOptions { Servers = 2, Seed = 6 });
        farm.Eventually(farm.Converged, TimeSpan.FromSeconds(10), "converged");
        farm.Kill("s2");
        var refused = farm.Network.ConnectAsync("10.0.0.1", SimFarm.RouteAddressOf("s2"), false, CancellationToken.None).AsTask();
        var e = Assert.ThrowsAny<SocketException>(() => refused.GetAwaiter().GetResult());
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);

        farm.Restart("s2");
        farm.Cut("s1", "s2");
        var timedOut = farm.Network.ConnectAsync("10.0.0.1", SimFarm.RouteAddressOf("s2"), false, CancellationToken.None).AsTask();
        farm.Run(TimeSpan.FromMilliseconds(1900));
        Assert.False(timedOut.IsCompleted);
        farm.Run(TimeSpan.FromMilliseconds(200));
        Assert.Equal(SocketError.TimedOut, Assert.ThrowsAny<SocketException>(() => timedOut.GetAwaiter().GetResult()).SocketErrorCode);
        farm.Heal();
        farm.Eventually(farm.Converged, TimeSpan.FromSeconds(20), "converged after the heal");
    }

    [Fact]
    public async Task Settle_TellsBusyFromQuiet_OnAPoolThread_AsOnADedicatedOne()
    {
        // xUnit runs a synchronous test on a pool thread after an asynchronous test, on a dedicated
        // thread otherwise: the settle must not count the caller's own thread as the farm's work
        // (it did once: every step of a simulation on a pool thread waited out its limit), nor
        // miss a busy pool thread when the caller is not one of them.
        static (bool Quiet, bool Busy) Look()
        {
            var quiescence = Quiescence.Measure();
            var quiet = quiescence.Settle(TimeSpan.FromSeconds(2));
            var stop = false;
            using var started = new ManualResetEventSlim();
            var spinner = Task.Run(() =>
            {
                started.Set();
                while (!Volatile.Read(ref stop))
                {
                    Thread.SpinWait(100);
                }
            });
            started.Wait();
            var busy = !quiescence.Settle(TimeSpan.FromMilliseconds(100));
            Volatile.Write(ref stop, true);
            while (!spinner.IsCompleted)
            {
                Thread.Yield();
            }

            return (quiet, busy);
        }

        // Up to three looks each: work left running by an earlier test (a farm's last tasks winding
        // down) can be busy while the baseline is measured and gone by the time the spinner runs,
        // which hides the spinner once (seen in a full run, 2026-12-07). The fault this test is for
        // (the caller's own thread taken for the farm's work) fails every look.
        var onPool = new List<(bool Quiet, bool Busy)>();
        var onThread = new List<(bool Quiet, bool Busy)>();
        for (var i = 0; i < 3 && !onPool.Any(l => l is { Quiet: true, Busy: true }); i++)
        {
            onPool.Add(await Task.Run(Look));
        }

        for (var i = 0; i < 3 && !onThread.Any(l => l is { Quiet: true, Busy: true }); i++)
        {
            var done = new TaskCompletionSource<(bool, bool)>(TaskCreationOptions.RunContinuationsAsynchronously);
            new Thread(() => done.SetResult(Look())) { IsBackground = true }.Start();
            onThread.Add(await done.Task);
        }

        Assert.True(onPool.Any(l => l is { Quiet: true, Busy: true }), $"on a pool thread (quiet = an idle pool settled, busy = a spinning work item was seen): {string.Join(", ", onPool)}");
        Assert.True(onThread.Any(l => l is { Quiet: true, Busy: true }), $"on a dedicated thread (quiet = an idle pool settled, busy = a spinning work item was seen): {string.Join(", ", onThread)}");
    }

    [Fact]
    public async Task Partition_HoldsStreamBytes_UntilTheHeal_InOrder()
    {
        var time = new SimTime(SimFarm.Epoch);
        var net = new SimNetwork(time, 1);
        var received = new List<string>();
        var accepted = new TaskCompletionSource<IDuplexPipe>();
        net.Listen("10.0.0.2:9", (pipe, _, _) =>
        {
            accepted.TrySetResult(pipe);
            return Task.CompletedTask;
        });
        var client = await net.ConnectAsync("10.0.0.1", "10.0.0.2:9", unboundedOutput: true, CancellationToken.None);
        var server = await accepted.Task;
        var quiescence = Quiescence.Measure(); // on the thread that goes on from here
        string Drain()
        {
            quiescence.Settle(TimeSpan.FromSeconds(1));
            return server.Input.TryRead(out var r) ? Consume(server.Input, r) : "";
        }

        Write(quiescence, client.Output, "one ");
        time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal("one ", Drain());
        net.Partition(["10.0.0.1"], ["10.0.0.2"]);
        Write(quiescence, client.Output, "two ");
        Write(quiescence, client.Output, "three");
        quiescence.Settle(TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("", Drain());
        net.Heal();
        time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal("two three", Drain());
    }

    /// <summary>
    /// The window that deadlocked a sweep: a step has moved the clock but not yet run the timers
    /// that came due, and another thread reads the clock (under some lock of its own). The plain
    /// fake runs those timers on that thread; the simulation's clock must leave them to the step.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ClockRead_BetweenAnAdvanceAndItsWakeUp_RunsNoTimer(bool plain)
    {
        var time = plain ? new FakeTimeProvider(SimFarm.Epoch) : new SimTime(SimFarm.Epoch);
        var firedOn = -1;
        using var timer = time.CreateTimer(_ => firedOn = Environment.CurrentManagedThreadId, null, TimeSpan.FromMilliseconds(100), Timeout.InfiniteTimeSpan);
        NowOf(time) += TimeSpan.FromMilliseconds(150); // what Advance does before it wakes the timers
        var reader = new Thread(() => time.GetTimestamp());
        reader.Start();
        reader.Join();
        if (plain)
        {
            Assert.Equal(reader.ManagedThreadId, firedOn); // the hazard SimTime exists for
            return;
        }

        Assert.Equal(-1, firedOn);
        Assert.Equal(SimFarm.Epoch.AddMilliseconds(150), time.GetUtcNow());
        time.Advance(TimeSpan.Zero);
        Assert.Equal(Environment.CurrentManagedThreadId, firedOn);
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_now")]
    private static extern ref DateTimeOffset NowOf(FakeTimeProvider time);

    [Fact]
    public void PausedClock_HoldsTimers_AndFiresThemOnceAtResume()
    {
        var time = new SimTime(SimFarm.Epoch);
        var clock = new SimClock(time, "s1");
        var fired = 0;
        using var timer = clock.CreateTimer(_ => fired++, null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Equal(2, fired);
        clock.Pause();
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(2, fired);
        clock.Resume();
        Assert.Equal(3, fired); // late, once
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(4, fired);
        clock.Stop();
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(4, fired);
    }

    private static void Write(Quiescence quiescence, PipeWriter w, string text)
    {
        w.Write(Encoding.UTF8.GetBytes(text));
        _ = w.FlushAsync().AsTask();
        quiescence.Settle(TimeSpan.FromSeconds(1)); // the network's pump takes the bytes
    }

    private static string Consume(PipeReader r, ReadResult result)
    {
        var text = Encoding.UTF8.GetString(result.Buffer);
        r.AdvanceTo(result.Buffer.End);
        return text;
    }
}
