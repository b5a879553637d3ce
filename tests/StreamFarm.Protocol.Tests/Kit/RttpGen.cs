using System.Globalization;
using System.Text;
using CsCheck;

namespace StreamFarm.Protocol.Tests.Kit;

/// <summary>A field or meta attribute of a generated line, with its raw (unescaped) value.</summary>
internal sealed record Item(bool Meta, string Name, string Value)
{
    public string Escaped => RttpGen.Escape(Value);

    /// <summary>As written on the wire.</summary>
    public string Token => (Meta ? "@" : "") + Name + "=" + Escaped;
}

/// <summary>A generated valid line (no terminator) and what the parser must find in it.</summary>
internal sealed record GenLine(string Text, Parsed Expected)
{
    public override string ToString() => Text;
}

/// <summary>CsCheck generators for RTTP names, values and whole valid lines of every verb.</summary>
internal static class RttpGen
{
    private const string SegmentChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:~+";
    private const string NameFirstChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
    private const string NameChars = NameFirstChars + "0123456789.-";
    private const string WordChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.:,";

    /// <summary>Pieces that exercise every escape, '=' and multi-byte UTF-8 (including a surrogate pair).</summary>
    private static readonly string[] Pieces =
    [
        "\\", " ", "\t", "\r", "\n", "\0", "\u0001", "\u001b", "\u001f", "\u007f", "=", "@", "/", "a", "Z", "9",
        "é", "€", "\u00a0", "東京", "😀", "\\s", "\\x41", "x=y", "  ", "\\\\",
    ];

    public static readonly Gen<string> Segment = Gen.Char[SegmentChars].Array[1, 8].Select(c => new string(c));

    public static readonly Gen<string> Subject = Segment.Array[1, 4].Select(s => "/" + string.Join('/', s));

    public static readonly Gen<string> Name =
        Gen.Select(Gen.Char[NameFirstChars], Gen.Char[NameChars].Array[0, 10], (f, r) => f + new string(r));

    /// <summary>A token without '=' (versions, reasons, ping tokens, ids).</summary>
    public static readonly Gen<string> Word = Gen.Char[WordChars].Array[1, 10].Select(c => new string(c));

    /// <summary>
    /// Any text: CsCheck's strings, strings of the tricky pieces, and strings over the whole UTF-16 range
    /// (lone surrogates replaced: they have no UTF-8 form, so they are not values), sometimes long.
    /// </summary>
    public static readonly Gen<string> Value = Gen.Frequency(
        (3, Gen.String),
        (4, Gen.OneOf(Pieces).Array[0, 12].Select(p => string.Concat(p))),
        (2, Gen.Char[char.MinValue, char.MaxValue].Array[0, 16].Select(WithoutLoneSurrogates)),
        (1, Gen.OneOf(Pieces).Array[60, 150].Select(p => string.Concat(p))));

    public static readonly Gen<Item> Field = Gen.Select(Name, Value, (n, v) => new Item(false, n, v));

    public static readonly Gen<Item> Meta = Gen.Select(Name, Value, (n, v) => new Item(true, n, v));

    /// <summary>A field, or now and then a meta attribute.</summary>
    public static readonly Gen<Item> FieldOrMeta = Gen.Frequency((4, Field), (1, Meta));

    /// <summary>Every verb, client to server and server to client.</summary>
    public static readonly Gen<GenLine> ValidLine = Gen.OneOf(
        Line(RttpVerb.Hello, Gen.OneOf("1", "1,2", "2,1,3").Select(v => new[] { v }), Field.Array[0, 3]),
        Line(RttpVerb.Sub, Subject.Array[1, 5], None),
        Line(RttpVerb.Unsub, Subject.Array[1, 5], None),
        Line(RttpVerb.Pub, Subject.Select(s => new[] { s }), WithAField(FieldOrMeta.Array[0, 6])),
        Line(RttpVerb.PubImage, Subject.Select(s => new[] { s }), FieldOrMeta.Array[0, 6]),
        Line(RttpVerb.Farm, Gen.OneOf(Gen.Const(Array.Empty<string>()), Gen.Select(Gen.ULong, Gen.UInt, (v, n) => new[] { Num(v), Num(n) })), None),
        Line(RttpVerb.Ping, Word.Array[0, 1], None),
        Line(RttpVerb.Pong, Word.Array[0, 1], None),
        Line(RttpVerb.Welcome, Gen.Const(new[] { "1" }), Field.Array[0, 6]),
        Line(RttpVerb.Image, Record, FieldOrMeta.Array[0, 6]),
        Line(RttpVerb.Update, Record, WithAField(FieldOrMeta.Array[0, 6])),
        Line(RttpVerb.Status, Gen.Select(Subject, Gen.OneOf("OK", "STALE", "NOT_FOUND", "DENIED"), (s, st) => new[] { s, st }), Meta.Array[0, 1]),
        Line(RttpVerb.Server, Gen.ULong.Select(v => new[] { Num(v) }), Field.Array[0, 9]),
        Line(RttpVerb.FarmDel, Gen.Select(Gen.ULong, Word, (v, id) => new[] { Num(v), id }), None),
        Line(RttpVerb.Move, Gen.OneOf("SHUTDOWN", "DRAINING", "REBALANCE").Select(r => new[] { r }), Meta.Array[0, 2]),
        Line(RttpVerb.Err, Gen.Int[1, 20].Select(c => new[] { ((RttpErrorCode)c).WireName() }), Meta.Array[0, 2], Text),
        Line(RttpVerb.Bye, Word.Array[1], None, Text),
        Line(RttpVerb.Bye, Gen.Const(Array.Empty<string>()), None));

    /// <summary>A line that parses to nothing: empty or spaces only.</summary>
    public static readonly Gen<GenLine> BlankLine =
        Gen.Int[0, 3].Select(n => new GenLine(new string(' ', n), Parsed.Valid(RttpVerb.None, [], [])));

    /// <summary>Valid lines, now and then a blank one.</summary>
    public static readonly Gen<GenLine> StreamLine = Gen.Frequency((12, ValidLine), (1, BlankLine));

    /// <summary>Several lines, each ended by LF or CRLF.</summary>
    public static readonly Gen<(GenLine[] Lines, byte[] Bytes)> Stream =
        Gen.Select(StreamLine.Array[2, 8], Gen.Bool.Array[8], (lines, crlf) =>
        {
            var sb = new StringBuilder();
            for (var i = 0; i < lines.Length; i++)
            {
                sb.Append(lines[i].Text).Append(crlf[i % crlf.Length] ? "\r\n" : "\n");
            }

            return (lines, Encoding.UTF8.GetBytes(sb.ToString()));
        });

    private static Gen<Item[]> None => Gen.Const(Array.Empty<Item>());

    private static Gen<string[]> Record =>
        Gen.Select(Subject, Gen.ULong, Gen.ULong, (s, e, q) => new[] { s, Num(e), Num(q) });

    /// <summary>Free text of ERR and BYE: words of letters and punctuation (one may hold '=').</summary>
    private static Gen<string[]> Text => Gen.Char["abcxyzABC019.,:!?=()"].Array[1, 8].Select(c => new string(c)).Array[0, 4];

    public static string Escape(string value) => Encoding.UTF8.GetString(FieldEscaping.Escape(value));

    public static string WithoutLoneSurrogates(char[] chars)
    {
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]))
            {
                chars[i] = '\uFFFD';
            }
        }

        return new string(chars);
    }

    private static string Num(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    private static Gen<Item[]> WithAField(Gen<Item[]> items) =>
        Gen.Select(Field, items, Gen.Int[0, 6], (f, rest, at) => rest.Take(Math.Min(at, rest.Length)).Append(f).Concat(rest.Skip(Math.Min(at, rest.Length))).ToArray());

    private static Gen<GenLine> Line(RttpVerb verb, Gen<string[]> args, Gen<Item[]> items, Gen<string[]>? text = null) =>
        Gen.Select(args, items, text ?? Gen.Const(Array.Empty<string>()), Gen.Int[1, 3].Array[16], (a, it, tx, seps) => Build(verb, a, it, tx, seps));

    private static GenLine Build(RttpVerb verb, string[] args, Item[] items, string[] text, int[] seps)
    {
        var tokens = new List<string> { verb.ToString().ToUpperInvariant() };
        tokens.AddRange(args);
        tokens.AddRange(items.Select(i => i.Token));
        var sb = new StringBuilder(tokens[0]);
        for (var i = 1; i < tokens.Count; i++)
        {
            sb.Append(' ', seps[i % seps.Length]).Append(tokens[i]);
        }

        var freeText = string.Join(' ', text);
        if (freeText.Length > 0)
        {
            sb.Append(' ', seps[0]).Append(freeText);
        }

        var expected = Parsed.Valid(
            verb,
            args,
            items.Where(i => !i.Meta).Select(i => i.Name + "=" + i.Escaped),
            items.Where(i => i.Meta).Select(i => i.Name + "=" + i.Escaped),
            freeText);
        return new GenLine(sb.ToString(), expected);
    }
}
