using System.Net;
using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.Dns.Tests;

/// <summary>The token bucket per client network, on a fake clock: exact budgets, refill, slip, keys.</summary>
public sealed class RateLimiterTests
{
    private static readonly byte[] ClientA = [198, 51, 100, 7];

    [Fact]
    public void Check_BurstOverTheLimit_SendsTheBudgetThenSlipsEverySecondAndDropsTheRest()
    {
        var limiter = new RateLimiter(10, 2, new FakeTimeProvider());

        var decisions = Enumerable.Range(0, 30).Select(_ => limiter.Check(ClientA)).ToList();

        Assert.All(decisions.Take(10), d => Assert.Equal(RateDecision.Send, d));
        Assert.Equal(
            Enumerable.Range(1, 20).Select(i => i % 2 == 0 ? RateDecision.Slip : RateDecision.Drop),
            decisions.Skip(10));
        Assert.Equal(20, limiter.Limited);
    }

    [Fact]
    public void Check_TimePasses_TheBucketRefillsAtTheRateUpToTheLimit()
    {
        var time = new FakeTimeProvider();
        var limiter = new RateLimiter(10, 2, time);
        Drain(limiter, ClientA);

        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(5, SendsBeforeLimit(limiter, ClientA));

        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(10, SendsBeforeLimit(limiter, ClientA)); // never more than one second's worth
    }

    [Fact]
    public void Check_SameIpv4Slash24_SharesABucketAndAnotherSlash24DoesNot()
    {
        var limiter = new RateLimiter(10, 2, new FakeTimeProvider());
        Drain(limiter, ClientA);

        Assert.NotEqual(RateDecision.Send, limiter.Check([198, 51, 100, 200]));
        Assert.Equal(RateDecision.Send, limiter.Check([198, 51, 101, 7]));
    }

    [Fact]
    public void Check_SameIpv6Slash56_SharesABucketAndAnotherSlash56DoesNot()
    {
        var limiter = new RateLimiter(10, 2, new FakeTimeProvider());
        Drain(limiter, IPAddress.Parse("2001:db8:1:100::1").GetAddressBytes());

        Assert.NotEqual(RateDecision.Send, limiter.Check(IPAddress.Parse("2001:db8:1:1ff:ffff::9").GetAddressBytes()));
        Assert.Equal(RateDecision.Send, limiter.Check(IPAddress.Parse("2001:db8:1:200::1").GetAddressBytes()));
        Assert.Equal(RateDecision.Send, limiter.Check([0, 0, 0, 0])); // IPv4 keys never collide with IPv6 ones
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Check_SlipZeroOrOne_DropsAllOrSlipsAll(int slip)
    {
        var expected = slip == 0 ? RateDecision.Drop : RateDecision.Slip;
        var limiter = new RateLimiter(3, slip, new FakeTimeProvider());
        Drain(limiter, ClientA);

        Assert.All(Enumerable.Range(0, 10).Select(_ => limiter.Check(ClientA)), d => Assert.Equal(expected, d));
    }

    [Fact]
    public void Check_LimitZero_AlwaysSends()
    {
        var limiter = new RateLimiter(0, 2, new FakeTimeProvider());

        Assert.All(Enumerable.Range(0, 1000).Select(_ => limiter.Check(ClientA)), d => Assert.Equal(RateDecision.Send, d));
        Assert.Equal(0, limiter.Limited);
    }

    [Fact]
    public void Check_MoreNetworksThanTheTableHolds_KeepsWorking()
    {
        var time = new FakeTimeProvider();
        var limiter = new RateLimiter(2, 2, time);

        for (var i = 0; i < 70_000; i++)
        {
            Assert.Equal(RateDecision.Send, limiter.Check([(byte)(1 + (i >> 16)), (byte)(i >> 8), (byte)i, 1])); // a new /24 each time
        }

        time.Advance(TimeSpan.FromSeconds(30));
        Drain(limiter, ClientA);
        Assert.NotEqual(RateDecision.Send, limiter.Check(ClientA));
    }

    private static void Drain(RateLimiter limiter, byte[] client)
    {
        while (limiter.Check(client) == RateDecision.Send)
        {
        }
    }

    private static int SendsBeforeLimit(RateLimiter limiter, byte[] client)
    {
        var n = 0;
        while (limiter.Check(client) == RateDecision.Send)
        {
            n++;
        }

        return n;
    }
}
