namespace StreamFarm.Membership.Tests;

/// <summary>
/// The process's tick thread runs every timer of the membership, the housekeeping and the status
/// publications one after another: a callback that takes long holds up all of them (a server once
/// took itself for paused because a status round walked a million subjects there). Such callbacks
/// are counted, so an operator sees them (streamfarm_tick_slow_callbacks_total).
/// </summary>
public sealed class TickThreadTests
{
    [Fact]
    public async Task ACallbackThatRunsLong_IsCounted_AndHoldsUpTheTimerDueMeanwhile()
    {
        var ticks = TickThread.Shared;
        var before = ticks.SlowCallbacks;
        var slowDone = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var quickRan = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);

        using var slow = ticks.CreateTimer(_ =>
        {
            Thread.Sleep(300);
            slowDone.TrySetResult(ticks.GetTimestamp());
        }, null, TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        using var quick = ticks.CreateTimer(_ => quickRan.TrySetResult(ticks.GetTimestamp()), null, TimeSpan.FromMilliseconds(50), Timeout.InfiniteTimeSpan);

        var slowEnded = await slowDone.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var quickStarted = await quickRan.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // One thread: the timer due at 50 ms ran only after the slow one returned.
        Assert.True(quickStarted >= slowEnded, "the second timer ran while the first still held the thread");
        await Eventually(() => ticks.SlowCallbacks > before);
    }

    private static async Task Eventually(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "not counted");
            await Task.Delay(10);
        }
    }
}
