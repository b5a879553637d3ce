namespace StreamFarm.Membership.Tests;

/// <summary>Lifeguard's local health score: bounded, and stretching timeouts by score + 1.</summary>
public sealed class AwarenessTests
{
    [Fact]
    public void Awareness_New_HealthyAndTimeoutsUnchanged()
    {
        var awareness = new Awareness(8);

        Assert.Equal(0, awareness.Score);
        Assert.Equal(TimeSpan.FromMilliseconds(500), awareness.Scale(TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public void Apply_UpAndDown_FollowsTheDeltas()
    {
        var awareness = new Awareness(8);

        awareness.Apply(1);
        awareness.Apply(1);
        awareness.Apply(1);
        awareness.Apply(-1);

        Assert.Equal(2, awareness.Score);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), awareness.Scale(TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public void Apply_ManyMisses_CappedBelowMax()
    {
        var awareness = new Awareness(8);

        for (var i = 0; i < 100; i++)
        {
            awareness.Apply(1);
        }

        Assert.Equal(7, awareness.Score);
        Assert.Equal(TimeSpan.FromSeconds(4), awareness.Scale(TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public void Apply_ManyAcks_NeverBelowZero()
    {
        var awareness = new Awareness(8);
        awareness.Apply(1);

        for (var i = 0; i < 10; i++)
        {
            awareness.Apply(-1);
        }

        Assert.Equal(0, awareness.Score);
    }

    [Fact]
    public void Apply_MaxOne_AlwaysHealthy()
    {
        var awareness = new Awareness(1);

        awareness.Apply(5);

        Assert.Equal(0, awareness.Score);
    }
}
