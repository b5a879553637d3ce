using System.Buffers;
using System.Text;

namespace StreamFarm.Protocol.Tests.Kit;

/// <summary>Builds <see cref="ReadOnlySequence{T}"/>s of several segments, as a pipe hands them out.</summary>
internal static class Segments
{
    /// <summary>A sequence made of the given segments, in order (empty ones included).</summary>
    public static ReadOnlySequence<byte> Of(params byte[][] parts)
    {
        if (parts.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        Segment? first = null;
        Segment? last = null;
        foreach (var part in parts)
        {
            last = new Segment(part, last);
            first ??= last;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>A sequence of the UTF-8 bytes of each string, one segment per string.</summary>
    public static ReadOnlySequence<byte> Of(params string[] parts) =>
        Of(Array.ConvertAll(parts, Encoding.UTF8.GetBytes));

    /// <summary><paramref name="data"/> cut at the given offsets (sorted; 0 and the length give empty segments).</summary>
    public static ReadOnlySequence<byte> Split(byte[] data, params int[] cuts)
    {
        var parts = new List<byte[]>();
        var start = 0;
        foreach (var cut in cuts.Order())
        {
            parts.Add(data[start..cut]);
            start = cut;
        }

        parts.Add(data[start..]);
        return Of([.. parts]);
    }

    /// <summary>One segment per byte.</summary>
    public static ReadOnlySequence<byte> OneBytePerSegment(byte[] data) =>
        data.Length == 0 ? ReadOnlySequence<byte>.Empty : Of(Array.ConvertAll(data, b => new[] { b }));

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] bytes, Segment? previous)
        {
            Memory = bytes;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
