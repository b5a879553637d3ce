using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// After a pause (SIGSTOP, a starved VM) a server closes the clients it had (<c>BYE PAUSED</c>:
/// what they sent meanwhile may be stale), but a client that connects after the process runs
/// again is served, even when it connects before the housekeeping tick has noticed the pause.
/// Found as a flaky process test: a subscriber that connected right after SIGCONT was closed,
/// with nothing to tell it why it should have come later.
/// </summary>
public sealed class PauseTests
{
    [Fact]
    public async Task ClientConnectingAfterAPauseBeforeTheTickNoticedIt_IsServed_WhileTheOldClientIsClosed()
    {
        var clock = new PausableClock();
        await using var node = await StreamFarmNode.StartAsync(
            new ServerOptions { Id = "t1", Listen = "127.0.0.1", TcpPort = 0, HttpPort = 0, ShutdownTimeout = TimeSpan.FromSeconds(3) },
            time: clock);
        await using var before = await node.ConnectAsync();
        await before.SendAsync("SUB /pause/x");
        await before.ExpectAsync("STATUS /pause/x NOT_FOUND");

        // The process is silent for 3 s: no timer runs meanwhile, and when it runs again a client
        // connects and publishes before any tick has come.
        clock.Hold();
        LineClient after;
        try
        {
            clock.Jump(TimeSpan.FromSeconds(3));
            after = await node.ConnectAsync();
            await after.SendAsync("PUB /pause/x v=1");
            await after.SendAsync("PING");
            await after.ExpectAsync("PONG");
        }
        finally
        {
            clock.Release(); // the ticks come again (the node's shutdown waits on them too)
        }

        // The client from before the pause is closed, the new one is not.
        await using var _ = after;
        Assert.StartsWith("BYE PAUSED", (await before.ReadToEndAsync()).Last());
        await after.SendAsync("SUB /pause/x");
        Assert.Contains("v=1", await after.ExpectAsync("IMAGE /pause/x"), StringComparison.Ordinal);
        await after.SendAsync("PUB /pause/x v=2");
        await after.ExpectAsync("UPDATE /pause/x");
    }

    /// <summary>
    /// The system clock, shifted by <see cref="Jump"/>, whose timers' callbacks are skipped while
    /// held: what a process sees of a pause (time jumped, no tick ran in between).
    /// </summary>
    private sealed class PausableClock : TimeProvider
    {
        private long _offsetTicks;
        private volatile bool _held;

        public void Hold() => _held = true;

        public void Release() => _held = false;

        public void Jump(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

        public override long TimestampFrequency => System.TimestampFrequency;

        public override long GetTimestamp() =>
            System.GetTimestamp() + (long)(Interlocked.Read(ref _offsetTicks) * (double)System.TimestampFrequency / TimeSpan.TicksPerSecond);

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            System.CreateTimer(s => { if (!_held) { callback(s); } }, state, dueTime, period);
    }
}
