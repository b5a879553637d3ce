using System.Text;

namespace StreamFarm.Protocol.Tests;

public sealed class SubjectSyntaxTests
{
    [Theory]
    [InlineData("/A", true)]
    [InlineData("/FX/GBPUSD", true)]
    [InlineData("/EQ/VOD.L", true)]
    [InlineData("/a_b/C-D/e.f/g:h/i~j/k+l/09", true)]
    [InlineData("/.", true)]
    [InlineData("", false)]
    [InlineData("/", false)]
    [InlineData("A", false)]
    [InlineData("A/B", false)]
    [InlineData("/A/", false)]
    [InlineData("//A", false)]
    [InlineData("/A//B", false)]
    [InlineData("/A B", false)]
    [InlineData("/A=B", false)]
    [InlineData("/A\\B", false)]
    [InlineData("/Zoë", false)]
    [InlineData("/*", false)]
    [InlineData("/A/>", false)]
    [InlineData("/A/*/B", false)]
    public void IsValidSubject_Subject_GivesExpected(string subject, bool expected)
    {
        Assert.Equal(expected, SubjectSyntax.IsValidSubject(Encoding.UTF8.GetBytes(subject)));
    }

    [Theory]
    [InlineData(256, true)]
    [InlineData(257, false)]
    public void IsValidSubject_Length_IsAtMost256Bytes(int length, bool expected)
    {
        var subject = "/" + new string('s', length - 1);

        Assert.Equal(expected, SubjectSyntax.IsValidSubject(Encoding.ASCII.GetBytes(subject)));
        Assert.Equal(expected, SubjectSyntax.IsValidPattern(Encoding.ASCII.GetBytes(subject)));
    }

    [Theory]
    [InlineData("/FX/GBPUSD", true)]
    [InlineData("/*", true)]
    [InlineData("/>", true)]
    [InlineData("/FX/*", true)]
    [InlineData("/*/GBPUSD", true)]
    [InlineData("/FX/>", true)]
    [InlineData("/*/*/>", true)]
    [InlineData("/>/A", false)]
    [InlineData("/A/>/>", false)]
    [InlineData("/A*", false)]
    [InlineData("/A/**", false)]
    [InlineData("/A/>>", false)]
    [InlineData("/A/", false)]
    [InlineData("*", false)]
    [InlineData(">", false)]
    [InlineData("", false)]
    public void IsValidPattern_Pattern_GivesExpected(string pattern, bool expected)
    {
        Assert.Equal(expected, SubjectSyntax.IsValidPattern(Encoding.UTF8.GetBytes(pattern)));
    }

    [Theory]
    [InlineData("bid", true)]
    [InlineData("_", true)]
    [InlineData("_x", true)]
    [InlineData("a.b-c_d9", true)]
    [InlineData("Z", true)]
    [InlineData("", false)]
    [InlineData("9a", false)]
    [InlineData("-a", false)]
    [InlineData(".a", false)]
    [InlineData("a b", false)]
    [InlineData("a=b", false)]
    [InlineData("a:b", false)]
    [InlineData("a/b", false)]
    [InlineData("@a", false)]
    [InlineData("é", false)]
    public void IsValidName_Name_GivesExpected(string name, bool expected)
    {
        Assert.Equal(expected, SubjectSyntax.IsValidName(Encoding.UTF8.GetBytes(name)));
    }

    [Theory]
    [InlineData(64, true)]
    [InlineData(65, false)]
    public void IsValidName_Length_IsAtMost64Bytes(int length, bool expected)
    {
        Assert.Equal(expected, SubjectSyntax.IsValidName(Encoding.ASCII.GetBytes(new string('n', length))));
    }

    [Theory]
    // exact
    [InlineData("/FX/GBPUSD", "/FX/GBPUSD", true)]
    [InlineData("/FX/GBPUSD", "/FX/EURUSD", false)]
    [InlineData("/FX/GBPUSD", "/FX/GBPUSD2", false)]
    [InlineData("/FX/GBPUSD", "/FX/GBP", false)]
    [InlineData("/FX/GBPUSD", "/fx/gbpusd", false)]
    [InlineData("/FX", "/FX/GBPUSD", false)]
    [InlineData("/FX/GBPUSD", "/FX", false)]
    [InlineData("/FX/GBPUSD/X", "/FX/GBPUSD", false)]
    // * is exactly one segment
    [InlineData("/FX/*", "/FX/GBPUSD", true)]
    [InlineData("/*/GBPUSD", "/FX/GBPUSD", true)]
    [InlineData("/*/*", "/FX/GBPUSD", true)]
    [InlineData("/*", "/FX", true)]
    [InlineData("/FX/*", "/FX", false)]
    [InlineData("/FX/*", "/FX/GBPUSD/SPOT", false)]
    [InlineData("/*", "/FX/GBPUSD", false)]
    [InlineData("/*/GBPUSD", "/FX/EURUSD", false)]
    [InlineData("/FX/*/SPOT", "/FX/GBPUSD/SPOT", true)]
    [InlineData("/FX/*/SPOT", "/FX/GBPUSD/FWD", false)]
    // a trailing > is one or more segments
    [InlineData("/>", "/A", true)]
    [InlineData("/>", "/A/B/C", true)]
    [InlineData("/FX/>", "/FX/GBPUSD", true)]
    [InlineData("/FX/>", "/FX/GBPUSD/SPOT/1", true)]
    [InlineData("/FX/>", "/FX", false)]
    [InlineData("/FX/>", "/EQ/VOD.L", false)]
    [InlineData("/FX/>", "/FXX/GBPUSD", false)]
    [InlineData("/*/>", "/FX/GBPUSD", true)]
    [InlineData("/*/>", "/FX", false)]
    // not subjects or not patterns
    [InlineData("", "/A", false)]
    [InlineData("/A", "", false)]
    [InlineData("A", "A", false)]
    [InlineData("/>", "/", false)]
    public void Matches_PatternAndSubject_GivesExpected(string pattern, string subject, bool expected)
    {
        Assert.Equal(expected, SubjectSyntax.Matches(pattern, subject));
    }
}
