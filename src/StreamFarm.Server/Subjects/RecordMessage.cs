namespace StreamFarm.Server.Subjects;

/// <summary>
/// An IMAGE or UPDATE line, rendered once and shared by every subscriber's queue (fan-out copies a
/// reference, not bytes). Immutable.
/// </summary>
internal sealed class RecordMessage(SubjectRecord subject, bool isImage, ulong epoch, ulong seq, int merged, byte[] line, int length)
{
    public SubjectRecord Subject { get; } = subject;

    public bool IsImage { get; } = isImage;

    public ulong Epoch { get; } = epoch;

    public ulong Seq { get; } = seq;

    /// <summary>How many updates this one stands for (1 unless conflated).</summary>
    public int Merged { get; } = merged;

    public ReadOnlyMemory<byte> Line => line.AsMemory(0, length);

    public int Length => length;
}
