using System.Buffers;
using System.Text;

namespace StreamFarm.Protocol.Tests.Kit;

/// <summary>
/// A copy of what <see cref="RttpParser"/> put in a frame, safe to keep after the frame is reused.
/// Values are kept escaped, as on the wire; compare with <see cref="FieldEscaping.Escape(string)"/>.
/// </summary>
internal sealed record Parsed(RttpErrorCode Error, RttpVerb Verb, string Args, string Fields, string Metas, string Text)
{
    // A raw control byte never appears in a parsed token, so it is a safe separator.
    private const string Sep = "\u0001";

    public static Parsed From(RttpErrorCode error, RttpFrame frame)
    {
        if (error != RttpErrorCode.None)
        {
            return new Parsed(error, RttpVerb.None, "", "", "", "");
        }

        var args = new List<string>();
        for (var i = 0; i < frame.ArgCount; i++)
        {
            args.Add(Utf8(frame.Arg(i)));
        }

        var fields = new List<string>();
        for (var i = 0; i < frame.FieldCount; i++)
        {
            fields.Add(Utf8(frame.FieldName(i)) + "=" + Utf8(frame.FieldValue(i)));
        }

        var metas = new List<string>();
        for (var i = 0; i < frame.MetaCount; i++)
        {
            metas.Add(Utf8(frame.MetaName(i)) + "=" + Utf8(frame.MetaValue(i)));
        }

        return new Parsed(error, frame.Verb, string.Join(Sep, args), string.Join(Sep, fields), string.Join(Sep, metas), Utf8(frame.Text));
    }

    /// <summary>Parses one line (no terminator) with a fresh frame.</summary>
    public static Parsed Parse(string line, RttpLimits? limits = null) =>
        Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line)), new RttpFrame(), limits);

    public static Parsed Parse(in ReadOnlySequence<byte> line, RttpFrame frame, RttpLimits? limits = null)
    {
        var error = RttpParser.TryParse(line, frame, limits ?? RttpLimits.Default, out _);
        return From(error, frame);
    }

    /// <summary>The expected result of a valid line.</summary>
    public static Parsed Valid(RttpVerb verb, IEnumerable<string> args, IEnumerable<string> fields, IEnumerable<string>? metas = null, string text = "") =>
        new(RttpErrorCode.None, verb, string.Join(Sep, args), string.Join(Sep, fields), string.Join(Sep, metas ?? []), text);

    /// <summary>
    /// Reads every complete line of <paramref name="buffer"/> with <see cref="RttpLineReader"/> and parses
    /// each one into <paramref name="frame"/> (reused, as a connection does). Returns the results and the
    /// bytes left over.
    /// </summary>
    public static List<Parsed> ReadAll(ReadOnlySequence<byte> buffer, RttpFrame frame, int maxLine, out long leftOver, out OperationStatus lastStatus)
    {
        var results = new List<Parsed>();
        while ((lastStatus = RttpLineReader.TryReadLine(ref buffer, maxLine, out var line)) == OperationStatus.Done)
        {
            results.Add(Parse(line, frame));
        }

        leftOver = buffer.Length;
        return results;
    }

    private static string Utf8(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);
}
