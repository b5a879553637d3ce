using System.Buffers;

namespace StreamFarm.Benchmarks;

/// <summary>Builds multi-segment sequences, as a pipe hands them out.</summary>
internal static class Segments
{
    /// <summary>The bytes in segments of at most <paramref name="size"/> bytes.</summary>
    public static ReadOnlySequence<byte> Chunks(byte[] data, int size)
    {
        var cuts = new List<int>();
        for (var i = size; i < data.Length; i += size)
        {
            cuts.Add(i);
        }

        return Split(data, [.. cuts]);
    }

    /// <summary>The bytes cut at the given offsets (sorted, clamped to the data).</summary>
    public static ReadOnlySequence<byte> Split(byte[] data, params int[] cuts)
    {
        Segment? first = null;
        Segment? last = null;
        var start = 0;
        foreach (var cut in cuts.Select(c => Math.Clamp(c, 0, data.Length)).Order().Append(data.Length))
        {
            last = new Segment(data.AsMemory(start, cut - start), last);
            first ??= last;
            start = cut;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
