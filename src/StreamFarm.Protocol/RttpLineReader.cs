using System.Buffers;

namespace StreamFarm.Protocol;

/// <summary>
/// Finds complete lines in a byte sequence from a pipe. Pure: it never buffers and checks the line
/// limit before the caller keeps more bytes, so an unterminated line costs at most the limit.
/// </summary>
public static class RttpLineReader
{
    /// <summary>
    /// Takes one line from the front of <paramref name="buffer"/>.
    /// <see cref="OperationStatus.Done"/>: <paramref name="line"/> holds the line without its
    /// terminator (a final CR dropped) and <paramref name="buffer"/> starts after the LF.
    /// <see cref="OperationStatus.NeedMoreData"/>: no LF yet and the limit is not reached.
    /// <see cref="OperationStatus.InvalidData"/>: the line is longer than <paramref name="maxLineBytes"/>.
    /// </summary>
    public static OperationStatus TryReadLine(ref ReadOnlySequence<byte> buffer, int maxLineBytes, out ReadOnlySequence<byte> line)
    {
        // The LF of the longest valid line sits at maxLineBytes (or maxLineBytes + 1 after a CR).
        var window = maxLineBytes + 2L;
        SequencePosition? lf;
        if (buffer.IsSingleSegment)
        {
            var span = buffer.FirstSpan;
            var i = span[..(int)Math.Min(span.Length, window)].IndexOf((byte)'\n');
            lf = i < 0 ? null : buffer.GetPosition(i);
        }
        else
        {
            lf = buffer.Length > window ? buffer.Slice(0, window).PositionOf((byte)'\n') : buffer.PositionOf((byte)'\n');
        }

        if (lf is null)
        {
            line = default;
            return buffer.Length >= window ? OperationStatus.InvalidData : OperationStatus.NeedMoreData;
        }

        line = buffer.Slice(0, lf.Value);
        if (line.Length > 0 && EndsWithCr(line))
        {
            line = line.Slice(0, line.Length - 1);
        }

        if (line.Length > maxLineBytes)
        {
            return OperationStatus.InvalidData;
        }

        buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
        return OperationStatus.Done;
    }

    private static bool EndsWithCr(in ReadOnlySequence<byte> line)
    {
        if (line.IsSingleSegment)
        {
            return line.FirstSpan[^1] == '\r';
        }

        return line.Slice(line.Length - 1).FirstSpan[0] == '\r';
    }
}
