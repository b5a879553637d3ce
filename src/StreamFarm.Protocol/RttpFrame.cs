using System.Buffers;
using System.Buffers.Text;

namespace StreamFarm.Protocol;

/// <summary>
/// One parsed RTTP line. Reused for every line of a connection, so parsing allocates nothing in the
/// steady state: tokens are kept as offsets into the line's memory, valid until the next parse.
/// </summary>
public sealed class RttpFrame
{
    private (int Start, int Length)[] _args = new (int, int)[8];
    private (int NameStart, int NameLength, int ValueStart, int ValueLength)[] _fields = new (int, int, int, int)[16];
    private (int NameStart, int NameLength, int ValueStart, int ValueLength)[] _metas = new (int, int, int, int)[4];
    private byte[]? _scratch;

    /// <summary>The line's verb; <see cref="RttpVerb.None"/> before the first successful parse.</summary>
    public RttpVerb Verb { get; internal set; }

    /// <summary>The whole line (no terminator).</summary>
    public ReadOnlyMemory<byte> Line { get; private set; }

    /// <summary>How many positional arguments the line has (<see cref="Arg"/>): the subject, epoch and seq of an <c>IMAGE</c>, the subjects of a <c>SUB</c>.</summary>
    public int ArgCount { get; private set; }

    /// <summary>How many <c>name=value</c> fields the line has (<see cref="FieldName"/>, <see cref="FieldValue"/>).</summary>
    public int FieldCount { get; private set; }

    /// <summary>How many <c>@name=value</c> meta attributes the line has (<see cref="MetaName"/>, <see cref="MetaValue"/>).</summary>
    public int MetaCount { get; private set; }

    /// <summary>Offset in <see cref="Line"/> where the first field starts (-1 without fields).</summary>
    public int FieldsStart { get; private set; }

    /// <summary>Offset of the free text of ERR and BYE (-1 if none).</summary>
    internal int TextStart { get; set; }

    /// <summary>The bytes from the first field to the end of the line: every field, as sent.</summary>
    public ReadOnlySpan<byte> FieldsSection => FieldsStart < 0 ? default : Line.Span[FieldsStart..];

    /// <summary>
    /// True when <see cref="FieldsSection"/> holds fields only: no meta attribute comes after the
    /// first field (senders put meta attributes first), so the section can be passed on as it is.
    /// </summary>
    public bool FieldsSectionIsClean => MetaCount == 0 || FieldsStart < 0 || _metas[MetaCount - 1].Item1 < FieldsStart;

    /// <summary>Positional argument <paramref name="i"/> (0 to <see cref="ArgCount"/> - 1), as sent.</summary>
    public ReadOnlySpan<byte> Arg(int i)
    {
        var (s, l) = _args[i];
        return Line.Span.Slice(s, l);
    }

    /// <summary>The name of field <paramref name="i"/> (0 to <see cref="FieldCount"/> - 1).</summary>
    public ReadOnlySpan<byte> FieldName(int i)
    {
        var f = _fields[i];
        return Line.Span.Slice(f.NameStart, f.NameLength);
    }

    /// <summary>The field's value, still escaped.</summary>
    public ReadOnlySpan<byte> FieldValue(int i)
    {
        var f = _fields[i];
        return Line.Span.Slice(f.ValueStart, f.ValueLength);
    }

    /// <summary>The field's value (escaped) as memory, for callers that keep a slice.</summary>
    public ReadOnlyMemory<byte> FieldValueMemory(int i)
    {
        var f = _fields[i];
        return Line.Slice(f.ValueStart, f.ValueLength);
    }

    /// <summary>The name of meta attribute <paramref name="i"/> without its <c>@</c> (0 to <see cref="MetaCount"/> - 1).</summary>
    public ReadOnlySpan<byte> MetaName(int i)
    {
        var f = _metas[i];
        return Line.Span.Slice(f.NameStart, f.NameLength);
    }

    /// <summary>The value of meta attribute <paramref name="i"/>, still escaped.</summary>
    public ReadOnlySpan<byte> MetaValue(int i)
    {
        var f = _metas[i];
        return Line.Span.Slice(f.ValueStart, f.ValueLength);
    }

    /// <summary>The escaped value of field <paramref name="name"/> (last one wins), or false.</summary>
    public bool TryGetField(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        for (var i = FieldCount - 1; i >= 0; i--)
        {
            if (FieldName(i).SequenceEqual(name))
            {
                value = FieldValue(i);
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>The escaped value of meta attribute <c>@name</c> (pass the name without <c>@</c>).</summary>
    public bool TryGetMeta(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        for (var i = MetaCount - 1; i >= 0; i--)
        {
            if (MetaName(i).SequenceEqual(name))
            {
                value = MetaValue(i);
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>Free text of ERR and BYE.</summary>
    public ReadOnlySpan<byte> Text => TextStart < 0 ? default : Line.Span[TextStart..];

    /// <summary>Positional argument <paramref name="i"/> as an unsigned 64-bit number.</summary>
    public bool TryGetUInt64(int i, out ulong value) =>
        Utf8Parser.TryParse(Arg(i), out value, out var n) && n == Arg(i).Length;

    internal void Reset(in ReadOnlySequence<byte> line)
    {
        if (line.IsSingleSegment)
        {
            Line = line.First;
        }
        else
        {
            var length = (int)line.Length;
            if (_scratch is null || _scratch.Length < length)
            {
                _scratch = new byte[Math.Max(length, 256)];
            }

            line.CopyTo(_scratch);
            Line = _scratch.AsMemory(0, length);
        }

        Verb = RttpVerb.None;
        ArgCount = FieldCount = MetaCount = 0;
        FieldsStart = TextStart = -1;
    }

    internal void AddArg(int start, int length)
    {
        if (ArgCount == _args.Length)
        {
            Array.Resize(ref _args, _args.Length * 2);
        }

        _args[ArgCount++] = (start, length);
    }

    internal void AddField(int nameStart, int nameLength, int valueStart, int valueLength)
    {
        if (FieldsStart < 0)
        {
            FieldsStart = nameStart;
        }

        if (FieldCount == _fields.Length)
        {
            Array.Resize(ref _fields, _fields.Length * 2);
        }

        _fields[FieldCount++] = (nameStart, nameLength, valueStart, valueLength);
    }

    internal void AddMeta(int nameStart, int nameLength, int valueStart, int valueLength)
    {
        if (MetaCount == _metas.Length)
        {
            Array.Resize(ref _metas, _metas.Length * 2);
        }

        _metas[MetaCount++] = (nameStart, nameLength, valueStart, valueLength);
    }
}
