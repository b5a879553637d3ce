namespace StreamFarm.Protocol.Tests;

/// <summary>The client's side of "no going back" (docs/protocol.md, 4a): a field never takes an older write.</summary>
public sealed class StampedFieldsTests
{
    private static (string, string, ulong)[] F(params (string Name, string Value, ulong Stamp)[] fields) => fields;

    [Fact]
    public void Updates_TakeLaterWrites_AndKeepAFieldFromAnOlderOne()
    {
        var c = new StampedFields();
        Assert.Equal(new StampedFields.ApplyResult(2, 0), c.Apply(image: true, 0, F(("bid", "1.10", 100), ("ask", "1.20", 100))));
        Assert.Equal(new StampedFields.ApplyResult(1, 0), c.Apply(image: false, 0, F(("bid", "1.11", 105))));
        Assert.Equal(new StampedFields.ApplyResult(0, 1), c.Apply(image: false, 0, F(("bid", "1.09", 103)))); // late, older
        Assert.Equal("1.11", c["bid"]);
        Assert.Equal("1.20", c["ask"]);
    }

    [Fact]
    public void AnImageAfterAMove_ThatLacksTheNewestWrites_LeavesThemShownAndSaysSo()
    {
        var c = new StampedFields();
        c.Apply(image: true, 0, F(("bid", "1.10", 100), ("ask", "1.20", 100)));
        c.Apply(image: false, 0, F(("bid", "1.12", 110), ("last", "1.12", 110)));

        // Every server that had stamp 110 died: the new owner's history goes on from stamp 100.
        var result = c.Apply(image: true, 0, F(("bid", "1.10", 100), ("ask", "1.20", 100)));
        Assert.Equal(2, result.Kept); // bid (older in the image) and last (missing from it)
        Assert.Equal("1.12", c["bid"]);
        Assert.Equal("1.12", c["last"]);

        // A later write takes its field; what the farm still lacks stays as shown.
        Assert.Equal(new StampedFields.ApplyResult(1, 0), c.Apply(image: false, 0, F(("bid", "1.13", 120))));
        Assert.Equal("1.13", c["bid"]);
        Assert.Equal("1.12", c["last"]);
    }

    [Fact]
    public void AnImagePublication_RemovesFieldsWrittenBeforeIt_AndALateCopyOfThemStaysRemoved()
    {
        var c = new StampedFields();
        c.Apply(image: true, 0, F(("a", "1", 100), ("b", "2", 100)));
        c.Apply(image: false, 0, F(("c", "3", 130)));

        // PUBIMAGE at 120 with a only: b (100) goes; c (130, later than the clear) is kept and reported.
        var result = c.Apply(image: true, 120, F(("a", "9", 120)));
        Assert.Equal(new StampedFields.ApplyResult(1, 1), result);
        Assert.Null(c["b"]);
        Assert.Equal("9", c["a"]);
        Assert.Equal("3", c["c"]);
        Assert.Equal(["a", "c"], c.Fields.Select(f => f.Name));

        Assert.Equal(0, c.Apply(image: false, 0, F(("b", "2", 100))).Taken); // an older write of a removed field
        Assert.Null(c["b"]);
    }

    [Theory]
    [InlineData("5", "1,2,3", null, 3, 5UL, new ulong[] { 1, 2, 3 })]
    [InlineData(null, null, "7", 2, 0UL, new ulong[] { 7, 7 })]
    [InlineData("x", "1,y", null, 3, 0UL, new ulong[] { 1, 0, 0 })]
    [InlineData(null, null, null, 1, 0UL, new ulong[] { 0 })]
    public void ReadStamps_FromClrFtsOrTs(string? clr, string? fts, string? ts, int fields, ulong clear, ulong[] stamps)
    {
        var (c, s) = StampedFields.ReadStamps(clr, fts, ts, fields);
        Assert.Equal(clear, c);
        Assert.Equal(stamps, s);
    }
}
