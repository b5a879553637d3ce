using System.Net;
using StreamFarm.Client.Tests.Kit;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests;

/// <summary>
/// <see cref="RttpConnectionOptions.Stamps"/>: the client asks for the writes' stamps and never
/// shows a field older than one it showed, across a move too (docs/protocol.md 4a, "Refusing to go
/// back"). Two scripted servers: f1 serves a write and dies with it; f2, the next owner, goes on
/// from an older copy.
/// </summary>
public sealed class StampsTests
{
    private static readonly IPAddress F1 = IPAddress.Parse("127.0.43.2");
    private static readonly IPAddress F2 = IPAddress.Parse("127.0.43.3");
    private const int Port = 17450;

    private static string Table() =>
        "FARM 1 2\n" +
        $"SERVER 1 id=f1 group=default state=active liveness=alive users=1 capacity=100 tcp={F1}:{Port} ws=ws://{F1}:1/rttp http=http://{F1}:1\n" +
        $"SERVER 1 id=f2 group=default state=active liveness=alive users=1 capacity=100 tcp={F2}:{Port} ws=ws://{F2}:1/rttp http=http://{F2}:1\n";

    [Fact]
    public async Task AnOlderImageAfterAMove_KeepsTheNewerValues_NamedBehind_UntilALaterWrite()
    {
        await using var f1 = new ScriptedServer(F1, Port, "f1", Table);
        await using var f2 = new ScriptedServer(F2, Port, "f2", Table);
        await using var watch = new ClientWatch(new FarmClientOptions
        {
            ServiceName = "scripted.test",
            Port = Port,
            Resolver = new FixedResolver(F1),
            Selector = new OrderSelector("f1", "f2"),
            Random = new Random(5),
            HeartbeatTimeout = TimeSpan.FromMinutes(1),
            Connection = new RttpConnectionOptions { Stamps = true },
        });
        var client = watch.Client;
        var start = watch.StartAsync("/ST/p");
        using var onF1 = await f1.NextAsync();
        await start;
        Assert.EndsWith(" stamps=1", onF1.Hello, StringComparison.Ordinal);
        Assert.Equal("SUB /ST/p", await onF1.NextAsync());

        await onF1.SendAsync("IMAGE /ST/p 7 1 @clr=0 @fts=100,100 bid=1.10 ask=1.20\nUPDATE /ST/p 7 2 @ts=110 bid=1.12 last=1.12\n");
        await Eventually.TrueAsync(() => client.TryGetRecord("/ST/p", out var r) && r.Seq == 2, () => "the update applied");

        // f1 dies with the writes stamped 110; f2's history goes on from the copy at 100.
        f1.StopListening();
        onF1.Dispose();
        using var onF2 = await f2.NextAsync();
        Assert.Equal("SUB /ST/p", await onF2.NextAsync());
        await onF2.SendAsync("IMAGE /ST/p 9 1 @clr=0 @fts=100,100 bid=1.10 ask=1.20\n");
        await Eventually.TrueAsync(() => client.TryGetRecord("/ST/p", out var r) && r.Epoch == 9, () => "the image from f2 applied");
        Assert.True(client.TryGetRecord("/ST/p", out var moved));
        Assert.Equal("1.12", moved["bid"]);
        Assert.Equal("1.20", moved["ask"]);
        Assert.Equal("1.12", moved["last"]);
        Assert.Equal(["bid", "last"], moved.Behind.Order(StringComparer.Ordinal));
        Assert.Equal(1, client.KeptNewer);
        await Eventually.TrueAsync(() => watch.Messages.Any(m => m.Message.Kind == RttpMessageKind.Image && m.Message.Epoch == 9), () => "the image delivered");
        var image = watch.Messages.Last(m => m.Message.Kind == RttpMessageKind.Image && m.Message.Epoch == 9).Message;
        Assert.Contains(KeyValuePair.Create("bid", "1.12"), image.Fields); // what the application is shown, not the older wire value

        // A later write takes its field; the one f2 still lacks stays behind.
        await onF2.SendAsync("UPDATE /ST/p 9 2 @ts=120 bid=1.13\n");
        await Eventually.TrueAsync(() => client.TryGetRecord("/ST/p", out var r) && r.Seq == 2, () => "the update applied");
        Assert.True(client.TryGetRecord("/ST/p", out var later));
        Assert.Equal("1.13", later["bid"]);
        Assert.Equal(["last"], later.Behind);
        Assert.Equal(1, client.KeptNewer);
    }
}

/// <summary>The record's merge by stamps on its own, line by line (the byte path the read loop takes).</summary>
public sealed class RecordStampsTests
{
    private readonly NameCache _names = new();
    private readonly RecordState _record = new("/ST/q");

    private SubjectData Apply(string line)
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new System.Buffers.ReadOnlySequence<byte>(System.Text.Encoding.UTF8.GetBytes(line)), frame, new RttpLimits(), out _));
        var data = new SubjectData();
        Assert.True(data.Load(frame, _names));
        _record.Apply(data, "s1");
        return data;
    }

    private static string Shown(SubjectData d) => string.Join(' ', d.ToFields().Select(f => $"{f.Key}={f.Value}"));

    [Fact]
    public void AnImagePublication_RemovesOlderFields_KeepsLaterOnes_AndALateOlderWriteIsDropped()
    {
        Apply("IMAGE /ST/q 1 1 @clr=0 @fts=100,100 a=1 b=2");
        Apply("UPDATE /ST/q 1 2 @ts=130 c=3");

        // An image publication at 120 with a only: b (100) went; c (130, after it) stays, and is kept.
        var image = Apply("IMAGE /ST/q 2 1 @clr=120 @fts=120 a=9");
        Assert.Equal("a=9 c=3", Shown(image));
        Assert.Equal("a=9 c=3", string.Join(' ', _record.Snapshot()!.Fields.Select(f => $"{f.Key}={f.Value}")));
        Assert.Equal(["c"], _record.Snapshot()!.Behind);

        // A late copy of b's older write: dropped from the update, the record unchanged.
        var late = Apply("UPDATE /ST/q 2 2 @ts=100 b=2");
        Assert.Equal("", Shown(late));
        Assert.Null(_record.Snapshot()!["b"]);

        // Lines without stamps (a client that did not ask) are taken as they come.
        var plain = Apply("UPDATE /ST/q 2 3 a=0");
        Assert.Equal("a=0", Shown(plain));
    }
}
