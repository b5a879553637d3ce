namespace StreamFarm.Membership.Tests;

/// <summary>The protocol's arithmetic against tables worked out by hand (see the formulas in <see cref="MembershipMath"/>).</summary>
public sealed class MembershipMathTests
{
    private const double Tolerance = 0.001; // milliseconds

    [Theory]
    [InlineData(1, 4000)] // log10(1) = 0, at least 1
    [InlineData(2, 4000)] // log10(2) = 0.30, at least 1
    [InlineData(10, 4000)] // log10(10) = 1
    [InlineData(100, 8000)] // log10(100) = 2
    [InlineData(1000, 12000)] // log10(1000) = 3
    public void SuspicionTimeout_MultFourOneSecondInterval_MatchesTable(int members, double expectedMs)
    {
        var timeout = MembershipMath.SuspicionTimeout(4, members, TimeSpan.FromSeconds(1));

        Assert.Equal(expectedMs, timeout.TotalMilliseconds, Tolerance);
    }

    [Theory]
    [InlineData(1, 600)]
    [InlineData(2, 600)]
    [InlineData(10, 600)]
    [InlineData(100, 1200)]
    [InlineData(1000, 1800)]
    public void SuspicionTimeout_LocalPreset_MatchesTable(int members, double expectedMs)
    {
        var timeout = MembershipMath.SuspicionTimeout(3, members, TimeSpan.FromMilliseconds(200));

        Assert.Equal(expectedMs, timeout.TotalMilliseconds, Tolerance);
    }

    [Fact]
    public void SuspicionTimeout_FiftyMembers_ScalesWithFractionalLog()
    {
        var timeout = MembershipMath.SuspicionTimeout(4, 50, TimeSpan.FromSeconds(1));

        Assert.Equal(4 * 1.6989700043360187 * 1000, timeout.TotalMilliseconds, Tolerance);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void SuspicionTimeout_NoMembers_SameAsOne(int members)
    {
        var timeout = MembershipMath.SuspicionTimeout(4, members, TimeSpan.FromSeconds(1));

        Assert.Equal(TimeSpan.FromSeconds(4), timeout);
    }

    [Fact]
    public void SuspicionTimeout_GrowingFarm_NeverShrinks()
    {
        var previous = TimeSpan.Zero;
        for (var n = 1; n <= 5000; n++)
        {
            var timeout = MembershipMath.SuspicionTimeout(4, n, TimeSpan.FromSeconds(1));
            Assert.True(timeout >= previous, $"n={n}: {timeout} < {previous}");
            previous = timeout;
        }
    }

    [Theory]
    [InlineData(4, 0, 0)] // ceil(log10(1)) = 0
    [InlineData(4, 1, 4)] // ceil(log10(2)) = 1
    [InlineData(4, 2, 4)]
    [InlineData(4, 9, 4)] // ceil(log10(10)) = 1
    [InlineData(4, 10, 8)] // ceil(log10(11)) = 2
    [InlineData(4, 99, 8)] // ceil(log10(100)) = 2
    [InlineData(4, 100, 12)] // ceil(log10(101)) = 3
    [InlineData(4, 999, 12)]
    [InlineData(4, 1000, 16)] // ceil(log10(1001)) = 4
    [InlineData(1, 10, 2)]
    [InlineData(3, 1000, 12)]
    public void RetransmitLimit_Members_MatchesTable(int mult, int members, int expected)
    {
        Assert.Equal(expected, MembershipMath.RetransmitLimit(mult, members));
    }

    [Theory]
    [InlineData(0, 6000)] // no confirmation: the maximum
    [InlineData(1, 3500)] // 6000 - 5000 × ln 2 / ln 4 = 6000 - 2500
    [InlineData(2, 2037)] // 6000 - 5000 × ln 3 / ln 4 = 2037.59, floored
    [InlineData(3, 1000)] // k confirmations: the minimum
    [InlineData(4, 1000)] // more than k: never below the minimum
    [InlineData(10, 1000)]
    public void RemainingSuspicion_KThree_MatchesTable(int confirmations, double expectedMs)
    {
        var remaining = MembershipMath.RemainingSuspicion(confirmations, 3, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(6));

        Assert.Equal(expectedMs, remaining.TotalMilliseconds, Tolerance);
    }

    [Theory]
    [InlineData(0, 12000)]
    [InlineData(1, 8131)]
    [InlineData(2, 5868)]
    [InlineData(3, 4262)]
    [InlineData(4, 3017)]
    [InlineData(5, 2000)]
    [InlineData(6, 2000)]
    [InlineData(7, 2000)]
    public void RemainingSuspicion_KFive_MatchesTable(int confirmations, double expectedMs)
    {
        var remaining = MembershipMath.RemainingSuspicion(confirmations, 5, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(12));

        Assert.Equal(expectedMs, remaining.TotalMilliseconds, Tolerance);
    }

    [Theory]
    [InlineData(0, 3600)]
    [InlineData(1, 600)]
    [InlineData(2, 600)]
    public void RemainingSuspicion_KOne_MaxThenMin(int confirmations, double expectedMs)
    {
        var remaining = MembershipMath.RemainingSuspicion(confirmations, 1, TimeSpan.FromMilliseconds(600), TimeSpan.FromMilliseconds(3600));

        Assert.Equal(expectedMs, remaining.TotalMilliseconds, Tolerance);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(20)]
    public void RemainingSuspicion_MoreConfirmations_ShrinksMonotonicallyAndNeverBelowMin(int k)
    {
        var min = TimeSpan.FromMilliseconds(1234);
        var max = TimeSpan.FromMilliseconds(7404);
        var previous = TimeSpan.MaxValue;
        for (var c = 0; c <= 3 * k; c++)
        {
            var remaining = MembershipMath.RemainingSuspicion(c, k, min, max);
            Assert.InRange(remaining, min, max);
            Assert.True(remaining <= previous, $"k={k}, c={c}: {remaining} > {previous}");
            previous = remaining;
        }

        Assert.Equal(max, MembershipMath.RemainingSuspicion(0, k, min, max));
        Assert.Equal(min, MembershipMath.RemainingSuspicion(k, k, min, max));
    }

    [Fact]
    public void RemainingSuspicion_MinEqualsMax_AlwaysThatValue()
    {
        var t = TimeSpan.FromSeconds(3);
        for (var c = 0; c <= 3; c++)
        {
            Assert.Equal(t, MembershipMath.RemainingSuspicion(c, 3, t, t));
        }
    }

    [Theory]
    [InlineData(500, 0, 500)] // healthy: unchanged
    [InlineData(500, 1, 1000)]
    [InlineData(500, 2, 1500)]
    [InlineData(500, 7, 4000)] // the Lan preset's highest score (max multiplier 8)
    [InlineData(100, 3, 400)]
    [InlineData(0, 5, 0)]
    public void ScaleByAwareness_Score_MultipliesByScorePlusOne(int timeoutMs, int score, int expectedMs)
    {
        var scaled = MembershipMath.ScaleByAwareness(TimeSpan.FromMilliseconds(timeoutMs), score);

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), scaled);
    }
}
