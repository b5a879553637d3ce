using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.Membership.Tests;

/// <summary>Lifeguard suspicion on fake time: starts at the maximum, shrinks with each new independent accuser.</summary>
public sealed class SuspicionTests
{
    private static readonly TimeSpan Min = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(6);
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private int _expired;

    [Fact]
    public void Suspicion_NoConfirmations_ExpiresAtMaxOnce()
    {
        using var suspicion = Start(k: 3);

        _time.Advance(Max - Ms);
        Assert.Equal(0, _expired);
        _time.Advance(Ms);
        Assert.Equal(1, _expired);
        _time.Advance(Max * 3);
        Assert.Equal(1, _expired);
    }

    [Fact]
    public void Confirm_OneAccuser_ExpiresAtRemainingSuspicionForOne()
    {
        using var suspicion = Start(k: 3);

        Assert.True(suspicion.Confirm("b"));

        // RemainingSuspicion(1, 3, 1 s, 6 s) = 3.5 s
        _time.Advance(TimeSpan.FromMilliseconds(3499));
        Assert.Equal(0, _expired);
        _time.Advance(Ms);
        Assert.Equal(1, _expired);
    }

    [Fact]
    public void Confirm_LaterInTheSuspicion_DeadlineCountsFromTheStart()
    {
        using var suspicion = Start(k: 3);
        _time.Advance(TimeSpan.FromSeconds(3));

        suspicion.Confirm("b");

        _time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.Equal(0, _expired);
        _time.Advance(Ms);
        Assert.Equal(1, _expired);
    }

    [Fact]
    public void Confirm_NewDeadlineAlreadyPast_ExpiresAtOnce()
    {
        using var suspicion = Start(k: 3);
        _time.Advance(TimeSpan.FromSeconds(3));

        suspicion.Confirm("b"); // 3.5 s: still ahead
        suspicion.Confirm("c"); // 2.04 s: behind us
        _time.Advance(Ms);

        Assert.Equal(1, _expired);
    }

    [Fact]
    public void Confirm_KAccusers_ExpiresAtMin()
    {
        using var suspicion = Start(k: 3);

        Assert.True(suspicion.Confirm("b"));
        Assert.True(suspicion.Confirm("c"));
        Assert.True(suspicion.Confirm("d"));

        _time.Advance(Min - Ms);
        Assert.Equal(0, _expired);
        _time.Advance(Ms);
        Assert.Equal(1, _expired);
    }

    [Fact]
    public void Confirm_SameAccuserTwice_CountedOnce()
    {
        using var suspicion = Start(k: 3);

        Assert.True(suspicion.Confirm("b"));
        Assert.False(suspicion.Confirm("b"));

        Assert.Equal(1, suspicion.Confirmations);
        _time.Advance(TimeSpan.FromMilliseconds(3499));
        Assert.Equal(0, _expired);
    }

    [Fact]
    public void Confirm_BeyondK_IgnoredAndNotWorthGossiping()
    {
        using var suspicion = Start(k: 2);
        suspicion.Confirm("b");
        suspicion.Confirm("c");

        Assert.False(suspicion.Confirm("d"));

        Assert.Equal(2, suspicion.Confirmations);
    }

    [Fact]
    public void Suspicion_KZero_ExpiresAtMinAndIgnoresConfirmations()
    {
        using var suspicion = Start(k: 0);

        Assert.False(suspicion.Confirm("b"));

        Assert.Equal(0, suspicion.Confirmations);
        _time.Advance(Min - Ms);
        Assert.Equal(0, _expired);
        _time.Advance(Ms);
        Assert.Equal(1, _expired);
    }

    [Fact]
    public void Dispose_BeforeTheDeadline_NeverExpires()
    {
        var suspicion = Start(k: 3);

        suspicion.Dispose();

        _time.Advance(Max * 2);
        Assert.Equal(0, _expired);
    }

    private Suspicion Start(int k) => new(_time, k, Min, Max, () => _expired++);
}
