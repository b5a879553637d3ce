using System.Buffers;
using System.Text;
using StreamFarm.Protocol;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Tests;

public sealed class SubjectTableTests
{
    private static RttpFrame Frame(string line)
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line)), frame, RttpLimits.Default, out _));
        return frame;
    }

    [Fact]
    public void Publish_IntoRecordRetiredMeanwhile_LandsInTheLiveRecord()
    {
        var table = new SubjectTable(TimeProvider.System);
        var stale = table.GetOrAdd("/x"u8); // e.g. found by a publisher just before the last unsubscribe
        table.RemoveIfUnused(stale);
        Assert.Equal(PublishOutcome.Retired, stale.Publish(Frame("PUB /x a=1"), replace: false));

        table.Publish("/x"u8, Frame("PUB /x a=1"), replace: false);
        var live = table.Find("/x"u8);
        Assert.NotNull(live);
        Assert.NotSame(stale, live);
        Assert.Equal(1UL, live.Seq);
    }

    [Fact]
    public void RemoveIfUnused_RecordWithData_Kept()
    {
        var table = new SubjectTable(TimeProvider.System);
        table.Publish("/kept"u8, Frame("PUB /kept a=1"), replace: false);
        var record = table.Find("/kept"u8)!;
        table.RemoveIfUnused(record);
        Assert.Same(record, table.Find("/kept"u8));
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Epochs_StrictlyIncreasing_EvenWithinOneMillisecond()
    {
        var table = new SubjectTable(TimeProvider.System);
        var epochs = Enumerable.Range(0, 100).Select(i => table.GetOrAdd(Encoding.ASCII.GetBytes($"/e/{i}")).Epoch).ToList();
        Assert.Equal(epochs.Distinct().Order(), epochs);
    }
}
