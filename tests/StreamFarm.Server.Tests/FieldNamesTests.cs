using System.Text;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Tests;

/// <summary>Field names shared between records (<see cref="FieldNames"/>): one array per name, and a bound a client cannot pass.</summary>
public sealed class FieldNamesTests
{
    [Fact]
    public void TheSameName_IsOneArray_ALongOne_IsCopied_AndPastTheBound_NamesAreCopiedNotShared()
    {
        var bid = FieldNames.Intern("bid"u8);
        Assert.Same(bid, FieldNames.Intern(Encoding.ASCII.GetBytes("bid")));
        Assert.Equal("bid"u8.ToArray(), bid);

        var longName = new byte[FieldNames.MaxLength + 1];
        Assert.NotSame(FieldNames.Intern(longName), FieldNames.Intern(longName));

        // A client inventing names fills the pool at most to its bound; after that each record
        // keeps its own copy (correct, only not shared), and the pool does not grow.
        for (var i = 0; FieldNames.Count < FieldNames.MaxNames; i++)
        {
            FieldNames.Intern(Encoding.ASCII.GetBytes($"invented{i}"));
        }

        var late = Encoding.ASCII.GetBytes("a-name-never-seen-before");
        var first = FieldNames.Intern(late);
        Assert.Equal(late, first);
        Assert.NotSame(first, FieldNames.Intern(late));
        Assert.InRange(FieldNames.Count, FieldNames.MaxNames, FieldNames.MaxNames + 64); // tests running beside this one may add a few at the same moment
        Assert.Same(bid, FieldNames.Intern("bid"u8)); // what was shared stays shared
    }
}
