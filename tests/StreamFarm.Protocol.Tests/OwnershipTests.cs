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

    [Fact]
    public void SuccessorOf_IsWhoOwnsTheSubject_WhenItsOwnerIsGone_AndNeverTheOwner()
    {
        var ids = new[] { "s1", "s2", "s3", "s4", "s5" };
        var all = new Ownership(ids);
        var subjects = Enumerable.Range(0, 1000).Select(i => $"/s/{i}").ToList();
        foreach (var subject in subjects)
        {
            var owner = all.OwnerOf(subject);
            var successor = all.SuccessorOf(subject);
            Assert.NotNull(successor);
            Assert.NotEqual(owner, successor);
            Assert.Equal(new Ownership(ids.Where(id => id != owner)).OwnerOf(subject), successor);
        }

        // Spread like the owners: every server is the successor of about a fifth.
        Assert.All(ids, id => Assert.InRange(subjects.Count(s => all.SuccessorOf(s) == id), 140, 260));
    }

    [Fact]
    public void SuccessorOf_ALoneOwner_HasNone_OfTwo_TheOther()
    {
        Assert.Null(new Ownership(["s1"]).SuccessorOf("/a"));
        var two = new Ownership(["s1", "s2"]);
        Assert.All(Enumerable.Range(0, 50).Select(i => $"/s/{i}"), s => Assert.Equal(two.OwnerOf(s) == "s1" ? "s2" : "s1", two.SuccessorOf(s)));
    }
}
