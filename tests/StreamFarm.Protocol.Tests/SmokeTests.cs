using System.Buffers;
using System.Text;

namespace StreamFarm.Protocol.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Parse_Pub_ReadsSubjectAndFields()
    {
        var frame = new RttpFrame();
        var line = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes("PUB /FX/GBPUSD bid=1.27 venue=LSE\\sIOB"));
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(line, frame, RttpLimits.Default, out _));
        Assert.Equal(RttpVerb.Pub, frame.Verb);
        Assert.Equal("/FX/GBPUSD", Encoding.UTF8.GetString(frame.Arg(0)));
        Assert.Equal(2, frame.FieldCount);
        Assert.Equal("LSE IOB", FieldEscaping.Unescape(frame.FieldValue(1)));
    }
}
