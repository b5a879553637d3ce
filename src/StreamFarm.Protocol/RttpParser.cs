using System.Buffers;
using System.Text.Unicode;

namespace StreamFarm.Protocol;

/// <summary>
/// Parses one RTTP line (from <see cref="RttpLineReader"/>) into a reusable <see cref="RttpFrame"/>.
/// Hand-written: the grammar is ours and this is the hottest path of the server. Strict: every
/// malformed line gets a specific <see cref="RttpErrorCode"/> and a fixed message (no allocation).
/// </summary>
public static class RttpParser
{
    private static readonly SearchValues<byte> Controls = SearchValues.Create(BuildControls());

    private static byte[] BuildControls()
    {
        var b = new byte[33];
        for (var i = 0; i < 32; i++)
        {
            b[i] = (byte)i;
        }

        b[32] = 0x7F;
        return b;
    }

    /// <summary>Parses <paramref name="line"/>. On failure returns the error and a short reason.</summary>
    public static RttpErrorCode TryParse(in ReadOnlySequence<byte> line, RttpFrame frame, RttpLimits limits, out string? reason)
    {
        frame.Reset(line);
        var span = frame.Line.Span;
        reason = null;
        if (span.ContainsAny(Controls))
        {
            reason = "raw control character in line (escape it)";
            return RttpErrorCode.Syntax;
        }

        if (!Utf8.IsValid(span))
        {
            reason = "line is not valid UTF-8";
            return RttpErrorCode.BadUtf8;
        }

        var pos = SkipSpaces(span, 0);
        if (pos == span.Length)
        {
            return RttpErrorCode.None; // an empty line: Verb stays None and callers skip it
        }

        var end = NextSpace(span, pos);
        var verb = ParseVerb(span[pos..end]);
        if (verb == RttpVerb.None)
        {
            reason = "unknown verb";
            return RttpErrorCode.UnknownVerb;
        }

        frame.Verb = verb;
        var shape = Shape.Of(verb);
        pos = SkipSpaces(span, end);

        // Positional arguments: tokens without '=' (ERR and BYE: the first ones, then free text).
        while (pos < span.Length && frame.ArgCount < shape.MaxArgs)
        {
            end = NextSpace(span, pos);
            var token = span[pos..end];
            if (token.IndexOf((byte)'=') >= 0)
            {
                break;
            }

            if (frame.ArgCount == limits.MaxArgs)
            {
                reason = "too many arguments";
                return RttpErrorCode.Syntax;
            }

            frame.AddArg(pos, end - pos);
            pos = SkipSpaces(span, end);
        }

        if (frame.ArgCount < shape.MinArgs)
        {
            reason = shape.Usage;
            return RttpErrorCode.Syntax;
        }

        // Fields and meta attributes.
        while (pos < span.Length)
        {
            end = NextSpace(span, pos);
            var token = span[pos..end];
            var eq = token.IndexOf((byte)'=');
            if (shape.TextTail && (eq < 0 || token[0] != '@'))
            {
                frame.TextStart = pos;
                break;
            }

            if (eq < 0)
            {

                reason = frame.ArgCount >= shape.MaxArgs && !shape.Fields ? shape.Usage : "expected name=value after the arguments";
                return RttpErrorCode.Syntax;
            }

            var isMeta = token[0] == '@';
            var nameStart = isMeta ? 1 : 0;
            if (!SubjectSyntax.IsValidName(token[nameStart..eq]))
            {
                reason = "field names match [A-Za-z_][A-Za-z0-9_.-]* (at most 64 bytes)";
                return RttpErrorCode.BadField;
            }

            if (!isMeta && !shape.Fields)
            {
                reason = shape.Usage;
                return RttpErrorCode.Syntax;
            }

            if (!HasValidEscapes(token[(eq + 1)..]))
            {
                reason = "invalid escape in value (use \\\\ \\s \\n \\r \\t \\xHH)";
                return RttpErrorCode.BadEscape;
            }

            if (frame.FieldCount + frame.MetaCount == limits.MaxFields)
            {
                reason = "too many fields in one message";
                return RttpErrorCode.TooManyFields;
            }

            if (isMeta)
            {
                frame.AddMeta(pos + 1, eq - 1, pos + eq + 1, token.Length - eq - 1);
            }
            else
            {
                frame.AddField(pos, eq, pos + eq + 1, token.Length - eq - 1);
            }

            pos = SkipSpaces(span, end);
        }

        return ValidateArgs(frame, shape, out reason);
    }

    private static RttpErrorCode ValidateArgs(RttpFrame frame, Shape shape, out string? reason)
    {
        reason = null;
        if (shape.SubjectArgs)
        {
            var n = shape.MaxArgs == 1 || frame.Verb is RttpVerb.Image or RttpVerb.Update or RttpVerb.Status ? 1 : frame.ArgCount;
            for (var i = 0; i < n; i++)
            {
                if (!SubjectSyntax.IsValidSubject(frame.Arg(i)))
                {
                    var bad = frame.Arg(i);
                    reason = $"{System.Text.Encoding.UTF8.GetString(bad[..Math.Min(bad.Length, 300)])} is not a subject: subjects look like /A/B (segments of A-Z a-z 0-9 _ - . : ~ +, at most 256 bytes); nothing on the line was taken";
                    return RttpErrorCode.BadSubject;
                }
            }
        }

        if (frame.Verb is RttpVerb.Image or RttpVerb.Update && (!frame.TryGetUInt64(1, out _) || !frame.TryGetUInt64(2, out _)))
        {
            reason = "epoch and seq are unsigned decimal numbers";
            return RttpErrorCode.Syntax;
        }

        if (frame.Verb is RttpVerb.Pub or RttpVerb.Update && frame.FieldCount == 0)
        {
            reason = frame.Verb == RttpVerb.Pub ? "PUB needs at least one field: PUB <subject> <field>=<value>..." : "UPDATE needs at least one field";
            return RttpErrorCode.Syntax;
        }

        return RttpErrorCode.None;
    }

    private static bool HasValidEscapes(ReadOnlySpan<byte> value)
    {
        var i = value.IndexOf((byte)'\\');
        if (i < 0)
        {
            return true;
        }

        // Rare path: control bytes and UTF-8 were checked for the whole line already.
        return FieldEscaping.Validate(value) == RttpErrorCode.None;
    }

    private static int SkipSpaces(ReadOnlySpan<byte> s, int pos)
    {
        while (pos < s.Length && s[pos] == ' ')
        {
            pos++;
        }

        return pos;
    }

    private static int NextSpace(ReadOnlySpan<byte> s, int pos)
    {
        var i = s[pos..].IndexOf((byte)' ');
        return i < 0 ? s.Length : pos + i;
    }

    /// <summary>The verb for a token, or <see cref="RttpVerb.None"/>.</summary>
    public static RttpVerb ParseVerb(ReadOnlySpan<byte> t) => t.Length switch
    {
        3 when t.SequenceEqual("SUB"u8) => RttpVerb.Sub,
        3 when t.SequenceEqual("PUB"u8) => RttpVerb.Pub,
        3 when t.SequenceEqual("ERR"u8) => RttpVerb.Err,
        3 when t.SequenceEqual("BYE"u8) => RttpVerb.Bye,
        3 when t.SequenceEqual("ACK"u8) => RttpVerb.Ack,
        4 when t.SequenceEqual("PING"u8) => RttpVerb.Ping,
        4 when t.SequenceEqual("PONG"u8) => RttpVerb.Pong,
        4 when t.SequenceEqual("FARM"u8) => RttpVerb.Farm,
        4 when t.SequenceEqual("MOVE"u8) => RttpVerb.Move,
        4 when t.SequenceEqual("NACK"u8) => RttpVerb.Nack,
        4 when t.SequenceEqual("AUTH"u8) => RttpVerb.Auth,
        5 when t.SequenceEqual("HELLO"u8) => RttpVerb.Hello,
        5 when t.SequenceEqual("UNSUB"u8) => RttpVerb.Unsub,
        5 when t.SequenceEqual("IMAGE"u8) => RttpVerb.Image,
        6 when t.SequenceEqual("UPDATE"u8) => RttpVerb.Update,
        6 when t.SequenceEqual("STATUS"u8) => RttpVerb.Status,
        6 when t.SequenceEqual("SERVER"u8) => RttpVerb.Server,
        7 when t.SequenceEqual("WELCOME"u8) => RttpVerb.Welcome,
        7 when t.SequenceEqual("FARMDEL"u8) => RttpVerb.FarmDel,
        7 when t.SequenceEqual("STANDBY"u8) => RttpVerb.Standby,
        8 when t.SequenceEqual("PUBIMAGE"u8) => RttpVerb.PubImage,
        _ => RttpVerb.None,
    };

    private sealed record Shape(int MinArgs, int MaxArgs, bool Fields, bool SubjectArgs, bool TextTail, string Usage)
    {
        private static readonly Shape[] Table = Build();

        public static Shape Of(RttpVerb verb) => Table[(int)verb];

        private static Shape[] Build()
        {
            var t = new Shape[(int)RttpVerb.Standby + 1];
            t[(int)RttpVerb.None] = new(0, 0, false, false, false, "");
            t[(int)RttpVerb.Hello] = new(1, 1, true, false, false, "usage: HELLO <versions> [client=<name>] [token=<t> | user=<u> password=<p>]");
            t[(int)RttpVerb.Welcome] = new(1, 1, true, false, false, "usage: WELCOME <version> server=<id> ...");
            t[(int)RttpVerb.Sub] = new(1, int.MaxValue, false, true, false, "usage: SUB <subject> [<subject>...]");
            t[(int)RttpVerb.Unsub] = new(1, int.MaxValue, false, true, false, "usage: UNSUB <subject> [<subject>...]");
            t[(int)RttpVerb.Pub] = new(1, 1, true, true, false, "usage: PUB <subject> <field>=<value>...");
            t[(int)RttpVerb.PubImage] = new(1, 1, true, true, false, "usage: PUBIMAGE <subject> [<field>=<value>...]");
            t[(int)RttpVerb.Image] = new(3, 3, true, true, false, "usage: IMAGE <subject> <epoch> <seq> [<field>=<value>...]");
            t[(int)RttpVerb.Update] = new(3, 3, true, true, false, "usage: UPDATE <subject> <epoch> <seq> <field>=<value>...");
            t[(int)RttpVerb.Status] = new(2, 2, false, true, false, "usage: STATUS <subject> <state>");
            t[(int)RttpVerb.Farm] = new(0, 2, false, false, false, "usage: FARM");
            t[(int)RttpVerb.Server] = new(1, 1, true, false, false, "usage: SERVER <version> id=<id> ...");
            t[(int)RttpVerb.FarmDel] = new(2, 2, false, false, false, "usage: FARMDEL <version> <id>");
            t[(int)RttpVerb.Move] = new(1, 1, false, false, false, "usage: MOVE <reason> [@server=<id>] [@after=<ms>]");
            t[(int)RttpVerb.Ping] = new(0, 1, false, false, false, "usage: PING [<token>]");
            t[(int)RttpVerb.Pong] = new(0, 1, false, false, false, "usage: PONG [<token>]");
            t[(int)RttpVerb.Err] = new(1, 1, false, false, true, "usage: ERR <code> [text]");
            t[(int)RttpVerb.Bye] = new(0, 1, false, false, true, "usage: BYE [<reason>] [text]");
            t[(int)RttpVerb.Ack] = new(1, 1, false, false, false, "usage: ACK <id>");
            t[(int)RttpVerb.Nack] = new(2, 2, false, false, true, "usage: NACK <id> <code> [text]");
            t[(int)RttpVerb.Auth] = new(0, 1, true, false, false, "usage: AUTH token=<jwt> (client) or AUTH OK exp=<unix seconds> (server)");
            t[(int)RttpVerb.Standby] = new(1, int.MaxValue, false, true, false, "usage: STANDBY <subject> [<subject>...] (routes only)");
            return t;
        }
    }
}
