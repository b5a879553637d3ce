namespace StreamFarm.Membership.Tests;

public sealed class BroadcastQueueTests
{
    private const int Plenty = 64 * 1024;

    [Fact]
    public void Take_Empty_ReturnsNothing()
    {
        var queue = new BroadcastQueue();

        Assert.Empty(queue.Take(Plenty, 5));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Enqueue_NewerAboutSameMember_ReplacesOlder()
    {
        var queue = new BroadcastQueue();
        var older = Bytes(1, 10);
        var newer = Bytes(2, 12);

        queue.Enqueue("n1", older);
        queue.Enqueue("n1", newer);

        Assert.Equal(1, queue.Count);
        var taken = queue.Take(Plenty, 5);
        Assert.Same(newer, Assert.Single(taken));
    }

    [Fact]
    public void Enqueue_NewerAboutSameMember_StartsAFreshRetransmitBudget()
    {
        var queue = new BroadcastQueue();
        queue.Enqueue("n1", Bytes(1, 10));
        queue.Take(Plenty, 3);
        queue.Take(Plenty, 3);
        var newer = Bytes(2, 10);

        queue.Enqueue("n1", newer);

        for (var i = 0; i < 3; i++)
        {
            Assert.Same(newer, Assert.Single(queue.Take(Plenty, 3)));
        }

        Assert.Empty(queue.Take(Plenty, 3));
    }

    [Fact]
    public void Enqueue_DifferentMembers_KeepsBoth()
    {
        var queue = new BroadcastQueue();

        queue.Enqueue("n1", Bytes(1, 10));
        queue.Enqueue("n2", Bytes(2, 10));

        Assert.Equal(2, queue.Count);
        Assert.Equal(2, queue.Take(Plenty, 5).Count);
    }

    [Fact]
    public void Take_OneSlotPerRound_FewestTransmittedFirst()
    {
        var queue = new BroadcastQueue();
        var a = Bytes(1, 10);
        var b = Bytes(2, 10);
        var c = Bytes(3, 10);
        queue.Enqueue("a", a);
        queue.Enqueue("b", b);
        queue.Enqueue("c", c);

        // Room for one message per round: every message goes once before any goes twice.
        var firstRound = Enumerable.Range(0, 3).Select(_ => Assert.Single(queue.Take(10, 10))).ToList();
        var secondRound = Enumerable.Range(0, 3).Select(_ => Assert.Single(queue.Take(10, 10))).ToList();

        Assert.Equal(3, firstRound.Distinct().Count());
        Assert.Equal(3, secondRound.Distinct().Count());
    }

    [Fact]
    public void Take_NewArrivalAmongRetransmissions_SentBeforeThem()
    {
        var queue = new BroadcastQueue();
        var old = Bytes(1, 10);
        queue.Enqueue("old", old);
        queue.Take(Plenty, 10);
        queue.Take(Plenty, 10);
        var fresh = Bytes(2, 10);

        queue.Enqueue("fresh", fresh);

        // fresh has 0 transmissions, then 1; old already has 2.
        Assert.Same(fresh, Assert.Single(queue.Take(10, 10)));
        Assert.Same(fresh, Assert.Single(queue.Take(10, 10)));
    }

    [Fact]
    public void Take_DifferentTransmitCounts_FewestFirstInTheResult()
    {
        var queue = new BroadcastQueue();
        var a = Bytes(1, 10);
        queue.Enqueue("a", a);
        queue.Take(Plenty, 10); // a: 1
        var b = Bytes(2, 10);
        queue.Enqueue("b", b); // b: 0

        var taken = queue.Take(Plenty, 10);

        Assert.Equal([b, a], taken);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(12)]
    public void Take_RepeatedRounds_RetiredAfterLimitTransmissions(int limit)
    {
        var queue = new BroadcastQueue();
        var message = Bytes(7, 20);
        queue.Enqueue("n1", message);

        for (var i = 0; i < limit; i++)
        {
            Assert.Same(message, Assert.Single(queue.Take(Plenty, limit)));
        }

        Assert.Equal(0, queue.Count);
        Assert.Empty(queue.Take(Plenty, limit));
    }

    [Fact]
    public void Take_BudgetFitsSome_TotalWithinBudget()
    {
        var queue = new BroadcastQueue();
        queue.Enqueue("a", Bytes(1, 100));
        queue.Enqueue("b", Bytes(2, 200));
        queue.Enqueue("c", Bytes(3, 300));

        var taken = queue.Take(350, 5);

        Assert.NotEmpty(taken);
        Assert.True(taken.Sum(t => t.Length) <= 350, $"took {taken.Sum(t => t.Length)} bytes of a 350-byte budget");
    }

    [Fact]
    public void Take_TooLargeForBudget_SkippedAndKeptForLater()
    {
        var queue = new BroadcastQueue();
        var big = Bytes(1, 500);
        queue.Enqueue("big", big);
        var small = Bytes(2, 50);
        queue.Enqueue("small", small);

        var taken = queue.Take(100, 1);

        Assert.Same(small, Assert.Single(taken));
        Assert.Equal(1, queue.Count); // the skipped one was not counted as sent
        Assert.Same(big, Assert.Single(queue.Take(500, 1)));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Take_ZeroBudget_TakesNothingAndCountsNothing()
    {
        var queue = new BroadcastQueue();
        queue.Enqueue("a", Bytes(1, 10));

        Assert.Empty(queue.Take(0, 1));

        Assert.Equal(1, queue.Count);
        Assert.Single(queue.Take(Plenty, 1));
    }

    [Fact]
    public void Take_RandomSizesAndBudgets_NeverOverBudgetAndGreedy()
    {
        var random = new Random(20260101);
        for (var round = 0; round < 500; round++)
        {
            var queue = new BroadcastQueue();
            var count = random.Next(1, 30);
            for (var i = 0; i < count; i++)
            {
                queue.Enqueue($"m{i}", Bytes((byte)i, random.Next(1, 200)));
            }

            var before = queue.Count;
            var budget = random.Next(0, 2000);
            var taken = queue.Take(budget, 1);

            var used = taken.Sum(t => t.Length);
            Assert.True(used <= budget, $"round {round}: {used} bytes over a budget of {budget}");
            Assert.Equal(before - taken.Count, queue.Count); // limit 1: everything taken is retired

            // Whatever is left did not fit in what remained.
            foreach (var left in queue.Take(int.MaxValue, 1))
            {
                Assert.True(left.Length > budget - used, $"round {round}: a {left.Length}-byte message was left with {budget - used} bytes to spare");
            }
        }
    }

    private static byte[] Bytes(byte fill, int length) => Enumerable.Repeat(fill, length).ToArray();
}
