using StreamFarm.Protocol;

namespace StreamFarm.Server.Subjects;

/// <summary>Copies of parsed lines, for passing a line on as it came.</summary>
internal static class FrameLines
{
    /// <summary>The frame's line with its LF: one copy of the bytes, no re-rendering.</summary>
    public static byte[] LineWithLf(this RttpFrame frame)
    {
        var line = frame.Line.Span;
        var buffer = new byte[line.Length + 1];
        line.CopyTo(buffer);
        buffer[^1] = (byte)'\n';
        return buffer;
    }
}
