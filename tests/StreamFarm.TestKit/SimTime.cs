using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.TestKit;

/// <summary>
/// The simulation's one clock: a <see cref="FakeTimeProvider"/> whose reads only read.
/// <para>
/// <see cref="FakeTimeProvider.GetUtcNow"/> (and <c>GetTimestamp</c>, which calls it) runs every
/// timer that is due on the reading thread. Server code reads the clock under its own locks all
/// the time, as it may with a real clock; with the plain fake, such a read could run another
/// component's timer callback inside that lock. A read that came between a step's advance of the
/// clock and the stepping thread's own wake-up took the due timers: the simulated network's lock was held by a pump
/// thread that read the clock to time a delivery and so ran a status publisher's timer, which
/// waited for the publisher's lock, held by the test thread restarting a server, which waited
/// for the network's lock (a sweep hung with no CPU, 2026-12-07, overlapping seeds 104001–105000).
/// Here timers run only where a real clock's could: from <see cref="FakeTimeProvider.Advance(TimeSpan)"/>
/// (the step) and when a timer is created or changed to be already due.
/// </para>
/// </summary>
public sealed class SimTime(DateTimeOffset start) : FakeTimeProvider(start)
{
    /// <summary>The current time, without running anything.</summary>
    public override DateTimeOffset GetUtcNow()
    {
        // The fake's time lives in a private field with no side-effect-free accessor: read it
        // directly (an UnsafeAccessor fails loudly, with MissingFieldException, if a new version of
        // the package renames it). Its offset is always zero and its ticks are one aligned 8-byte
        // word, so a read racing an advance sees the old time or the new one.
        if (AutoAdvanceAmount != TimeSpan.Zero)
        {
            throw new InvalidOperationException("SimTime does not advance on reads: advance it in steps");
        }

        return Now(this);
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_now")]
    private static extern ref DateTimeOffset Now(FakeTimeProvider time);
}
