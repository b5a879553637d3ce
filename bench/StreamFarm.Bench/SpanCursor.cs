using System.Buffers.Text;

namespace StreamFarm.Bench;

/// <summary>Writes bytes and decimal numbers one after the other into a span, without allocating (stamped messages).</summary>
internal ref struct SpanCursor(Span<byte> destination)
{
    private readonly Span<byte> _destination = destination;

    /// <summary>Bytes written so far.</summary>
    public int Written { get; private set; }

    public void Write(scoped ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_destination[Written..]);
        Written += bytes.Length;
    }

    public void Write(long value)
    {
        if (!Utf8Formatter.TryFormat(value, _destination[Written..], out var used))
        {
            throw new ArgumentException("the destination is too small");
        }

        Written += used;
    }

    /// <summary>Leaves <paramref name="count"/> bytes to be filled later and returns them.</summary>
    public Span<byte> Reserve(int count)
    {
        var span = _destination.Slice(Written, count);
        Written += count;
        return span;
    }
}
