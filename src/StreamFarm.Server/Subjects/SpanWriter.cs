using System.Buffers;

namespace StreamFarm.Server.Subjects;

/// <summary>An <see cref="IBufferWriter{T}"/> over a fixed array, to render a line once into exact storage.</summary>
internal sealed class SpanWriter(byte[] buffer) : IBufferWriter<byte>
{
    public int Written { get; private set; }

    public void Advance(int count) => Written += count;

    public Memory<byte> GetMemory(int sizeHint = 0) => EnsureRoom(sizeHint).AsMemory(Written);

    public Span<byte> GetSpan(int sizeHint = 0) => EnsureRoom(sizeHint).AsSpan(Written);

    private byte[] EnsureRoom(int sizeHint) =>
        buffer.Length - Written >= sizeHint ? buffer : throw new InvalidOperationException("line buffer too small");
}
