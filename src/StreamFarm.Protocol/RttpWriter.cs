using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace StreamFarm.Protocol;

/// <summary>
/// Writes RTTP lines into an <see cref="IBufferWriter{T}"/> (a pipe, a pooled buffer). No allocation:
/// callers pass UTF-8 spans; values passed as "escaped" are written as they are.
/// </summary>
public static class RttpWriter
{
    /// <summary>Writes <c>IMAGE subject epoch seq fields</c>: a subject's whole record; <paramref name="escapedFields"/> (<c>a=1 b=2</c>, values escaped) is written as it is, after one space.</summary>
    public static void WriteImage(IBufferWriter<byte> w, ReadOnlySpan<byte> subject, ulong epoch, ulong seq, ReadOnlySpan<byte> escapedFields)
        => WriteRecordLine(w, "IMAGE "u8, subject, epoch, seq, default, escapedFields);

    /// <summary>UPDATE line; <paramref name="merged"/> &gt; 1 adds <c>@merged=n</c>.</summary>
    public static void WriteUpdate(IBufferWriter<byte> w, ReadOnlySpan<byte> subject, ulong epoch, ulong seq, int merged, ReadOnlySpan<byte> escapedFields)
    {
        Span<byte> meta = stackalloc byte[24];
        var metaLength = 0;
        if (merged > 1)
        {
            "@merged="u8.CopyTo(meta);
            Utf8Formatter.TryFormat(merged, meta[8..], out var n);
            metaLength = 8 + n;
        }

        WriteRecordLine(w, "UPDATE "u8, subject, epoch, seq, meta[..metaLength], escapedFields);
    }

    /// <summary>Length of an IMAGE/UPDATE line, for callers that size a buffer first.</summary>
    public static int RecordLineLength(int verbLength, int subjectLength, int fieldsLength) =>
        verbLength + subjectLength + 1 + 20 + 1 + 20 + 1 + 24 + fieldsLength + 1;

    /// <summary>Length of an IMAGE/UPDATE line with meta attributes of <paramref name="metaLength"/> bytes, at most.</summary>
    public static int RecordLineLength(int verbLength, int subjectLength, int metaLength, int fieldsLength) =>
        verbLength + subjectLength + 1 + 20 + 1 + 20 + 1 + metaLength + 1 + fieldsLength + 1;

    /// <summary>An IMAGE or UPDATE line with the given meta attributes (<c>@a=1 @b=2</c>, written as they are) before the fields.</summary>
    public static void WriteRecord(IBufferWriter<byte> w, bool image, ReadOnlySpan<byte> subject, ulong epoch, ulong seq, ReadOnlySpan<byte> meta, ReadOnlySpan<byte> escapedFields)
        => WriteRecordLine(w, image ? "IMAGE "u8 : "UPDATE "u8, subject, epoch, seq, meta, escapedFields);

    private static void WriteRecordLine(IBufferWriter<byte> w, ReadOnlySpan<byte> verb, ReadOnlySpan<byte> subject, ulong epoch, ulong seq, ReadOnlySpan<byte> meta, ReadOnlySpan<byte> fields)
    {
        var span = w.GetSpan(RecordLineLength(verb.Length, subject.Length, meta.Length, fields.Length));
        verb.CopyTo(span);
        var p = verb.Length;
        subject.CopyTo(span[p..]);
        p += subject.Length;
        span[p++] = (byte)' ';
        Utf8Formatter.TryFormat(epoch, span[p..], out var n);
        p += n;
        span[p++] = (byte)' ';
        Utf8Formatter.TryFormat(seq, span[p..], out n);
        p += n;
        if (!meta.IsEmpty)
        {
            span[p++] = (byte)' ';
            meta.CopyTo(span[p..]);
            p += meta.Length;
        }

        if (!fields.IsEmpty)
        {
            span[p++] = (byte)' ';
            fields.CopyTo(span[p..]);
            p += fields.Length;
        }

        span[p++] = (byte)'\n';
        w.Advance(p);
    }

    /// <summary>Writes <c>STATUS subject state</c>.</summary>
    public static void WriteStatus(IBufferWriter<byte> w, ReadOnlySpan<byte> subject, SubjectStatus status)
    {
        WriteRaw(w, "STATUS "u8);
        WriteRaw(w, subject);
        WriteRaw(w, " "u8);
        WriteRaw(w, status.WireName());
        WriteRaw(w, "\n"u8);
    }

    /// <summary>Writes <c>ERR CODE text</c>; the text must be free of control characters.</summary>
    public static void WriteError(IBufferWriter<byte> w, RttpErrorCode code, string? text, string? meta = null)
    {
        WriteRaw(w, "ERR "u8);
        WriteCodeMetaText(w, code, meta, text);
    }

    /// <summary><c>CODE [meta] [text]</c> and the line feed: the tail of ERR and NACK.</summary>
    private static void WriteCodeMetaText(IBufferWriter<byte> w, RttpErrorCode code, string? meta, string? text)
    {
        WriteRaw(w, code.WireNameUtf8());
        if (!string.IsNullOrEmpty(meta))
        {
            WriteRaw(w, " "u8);
            WriteAscii(w, meta);
        }

        if (!string.IsNullOrEmpty(text))
        {
            WriteRaw(w, " "u8);
            WriteText(w, text);
        }

        WriteRaw(w, "\n"u8);
    }

    /// <summary>Writes <c>ACK id</c>: the publication sent with <c>@ack=id</c> was applied.</summary>
    public static void WriteAck(IBufferWriter<byte> w, ReadOnlySpan<byte> id)
    {
        WriteRaw(w, "ACK "u8);
        WriteRaw(w, id);
        WriteRaw(w, "\n"u8);
    }

    /// <summary>Writes <c>NACK id CODE [meta] [text]</c>: the publication sent with <c>@ack=id</c> was not applied.</summary>
    public static void WriteNack(IBufferWriter<byte> w, ReadOnlySpan<byte> id, RttpErrorCode code, string? text, string? meta = null)
    {
        WriteRaw(w, "NACK "u8);
        WriteRaw(w, id);
        WriteRaw(w, " "u8);
        WriteCodeMetaText(w, code, meta, text);
    }

    /// <summary>Writes <c>PING</c> or <c>PONG</c> with an optional token.</summary>
    public static void WritePingPong(IBufferWriter<byte> w, bool pong, ReadOnlySpan<byte> token)
    {
        WriteRaw(w, pong ? "PONG"u8 : "PING"u8);
        if (!token.IsEmpty)
        {
            WriteRaw(w, " "u8);
            WriteRaw(w, token);
        }

        WriteRaw(w, "\n"u8);
    }

    /// <summary>Writes a field <c> name=value</c> with a leading space, escaping the value.</summary>
    public static void WriteField(IBufferWriter<byte> w, ReadOnlySpan<byte> name, ReadOnlySpan<byte> rawValue)
    {
        var length = FieldEscaping.EscapedLength(rawValue);
        var span = w.GetSpan(name.Length + 2 + length);
        span[0] = (byte)' ';
        name.CopyTo(span[1..]);
        span[1 + name.Length] = (byte)'=';
        FieldEscaping.Escape(rawValue, span[(2 + name.Length)..]);
        w.Advance(name.Length + 2 + length);
    }

    /// <summary>Writes a field whose value is a string (escaped on the way).</summary>
    public static void WriteField(IBufferWriter<byte> w, ReadOnlySpan<byte> name, string value)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        byte[]? rented = null;
        var raw = max <= 256 ? stackalloc byte[max] : (rented = ArrayPool<byte>.Shared.Rent(max));
        var n = Encoding.UTF8.GetBytes(value, raw);
        WriteField(w, name, raw[..n]);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Writes a field with a number value.</summary>
    public static void WriteField(IBufferWriter<byte> w, ReadOnlySpan<byte> name, long value)
    {
        var span = w.GetSpan(name.Length + 22);
        span[0] = (byte)' ';
        name.CopyTo(span[1..]);
        span[1 + name.Length] = (byte)'=';
        Utf8Formatter.TryFormat(value, span[(2 + name.Length)..], out var n);
        w.Advance(name.Length + 2 + n);
    }

    /// <summary>Copies bytes as they are.</summary>
    public static void WriteRaw(IBufferWriter<byte> w, ReadOnlySpan<byte> bytes)
    {
        var span = w.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        w.Advance(bytes.Length);
    }

    /// <summary>Writes an ASCII string (verbs, codes, numbers already formatted).</summary>
    public static void WriteAscii(IBufferWriter<byte> w, string ascii)
    {
        var span = w.GetSpan(ascii.Length);
        var n = Encoding.ASCII.GetBytes(ascii, span);
        w.Advance(n);
    }

    /// <summary>Writes a decimal number.</summary>
    public static void WriteNumber(IBufferWriter<byte> w, ulong value)
    {
        var span = w.GetSpan(20);
        Utf8Formatter.TryFormat(value, span, out var n);
        w.Advance(n);
    }

    /// <summary>Free text (ERR, BYE): control characters become spaces so the line stays one line.</summary>
    public static void WriteText(IBufferWriter<byte> w, string text)
    {
        var span = w.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var n = Encoding.UTF8.GetBytes(text, span);
        for (var i = 0; i < n; i++)
        {
            if (span[i] < 0x20 || span[i] == 0x7F)
            {
                span[i] = (byte)' ';
            }
        }

        w.Advance(n);
    }
}
