using System.Buffers;
using System.Text.Json;

namespace StreamFarm.Protocol.Tests;

/// <summary>A server's addresses for each network view travel in SERVER lines and in /farm JSON.</summary>
public sealed class FarmAddressViewTests
{
    [Fact]
    public void ServerLine_ExternalAndTls_RoundTrip()
    {
        var m = new FarmMember { Id = "s1", Tcp = "10.0.0.5:7400", Ws = "ws://10.0.0.5:7480/rttp", Http = "http://10.0.0.5:7480", External = "stream.example.com:17400", Tls = "s1.example.com:7443", Wss = "wss://s1.example.com:7481/rttp" };
        var w = new ArrayBufferWriter<byte>();
        FarmCodec.WriteServer(w, 3, m);
        var buffer = new ReadOnlySequence<byte>(w.WrittenMemory);
        Assert.Equal(OperationStatus.Done, RttpLineReader.TryReadLine(ref buffer, RttpLimits.DefaultMaxLineBytes, out var line));
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(line, frame, RttpLimits.Default, out _));
        Assert.Equal(m, FarmCodec.ReadServer(frame));
    }

    [Fact]
    public void Json_ExternalOnlyWhenPublished()
    {
        var plain = FarmJson.Serialize(new FarmSnapshot(1, [new FarmMember { Id = "a", Tcp = "1.2.3.4:7400" }]));
        Assert.DoesNotContain("external", plain, StringComparison.Ordinal);
        var withExternal = JsonDocument.Parse(FarmJson.Serialize(new FarmSnapshot(1, [new FarmMember { Id = "a", Tcp = "1.2.3.4:7400", External = "x.example:1" }])));
        Assert.Equal("x.example:1", withExternal.RootElement[0].GetProperty("addresses").GetProperty("external").GetString());
    }

    [Fact]
    public void Json_TlsAddressesWhenPublished()
    {
        var plain = FarmJson.Serialize(new FarmSnapshot(1, [new FarmMember { Id = "a", Tcp = "1.2.3.4:7400" }]));
        Assert.DoesNotContain("tls", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("wss", plain, StringComparison.Ordinal);
        var tls = JsonDocument.Parse(FarmJson.Serialize(new FarmSnapshot(1, [new FarmMember { Id = "a", Tcp = "1.2.3.4:7400", Tls = "a.example:7443", Wss = "wss://a.example:7481/rttp" }])));
        var addresses = tls.RootElement[0].GetProperty("addresses");
        Assert.Equal("a.example:7443", addresses.GetProperty("tls").GetString());
        Assert.Equal("wss://a.example:7481/rttp", addresses.GetProperty("wss").GetString());
    }
}
