namespace StreamFarm.Protocol.Tests;

/// <summary>Rendezvous ownership and the fingerprint the routes' owners barrier names a set of owners by.</summary>
public sealed class OwnershipTests
{
    [Fact]
    public void Fingerprint_EqualSets_EqualNumbers_WhateverTheOrderOrDuplicates()
    {
        Assert.Equal(new Ownership(["s1", "s2", "s3"]).Fingerprint, new Ownership(["s3", "s1", "s2", "s1"]).Fingerprint);
    }

    [Fact]
    public void Fingerprint_DiffersWhenAServerIsMissingOrAdded()
    {
        var three = new Ownership(["s1", "s2", "s3"]).Fingerprint;
        Assert.NotEqual(three, new Ownership(["s1", "s2"]).Fingerprint);
        Assert.NotEqual(three, new Ownership(["s1", "s2", "s3", "s4"]).Fingerprint);

        // Ids are separated: ["s1", "s23"] and ["s12", "s3"] are different sets.
        Assert.NotEqual(new Ownership(["s1", "s23"]).Fingerprint, new Ownership(["s12", "s3"]).Fingerprint);
    }

    [Fact]
    public void OwnerOf_OnlyTheSubjectsOfAServerThatLeftMove()
    {
        var before = new Ownership(["s1", "s2", "s3"]);
        var after = new Ownership(["s1", "s2"]);
        var subjects = Enumerable.Range(0, 1000).Select(i => $"/s/{i}").ToList();

        Assert.All(subjects.Where(s => before.OwnerOf(s) != "s3"), s => Assert.Equal(before.OwnerOf(s), after.OwnerOf(s)));
        Assert.InRange(subjects.Count(s => before.OwnerOf(s) == "s3"), 250, 420); // about a third
    }
}
