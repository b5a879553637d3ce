using System.Globalization;
using System.Text;

namespace StreamFarm.Faults.Tests.Checking;

/// <summary>
/// One RTTP line as the fault suite reads it, parsed here from the text (docs/protocol.md, section 1)
/// and not with the product's parser, so that the judge does not share the code it judges.
/// </summary>
public sealed class WireLine
{
    private WireLine(string text, string verb)
    {
        Text = text;
        Verb = verb;
    }

    /// <summary>The line as received, without its terminator.</summary>
    public string Text { get; }

    public string Verb { get; }

    /// <summary>Positional arguments (for IMAGE and UPDATE: subject, epoch, seq).</summary>
    public List<string> Args { get; } = [];

    /// <summary>Fields, unescaped, in order.</summary>
    public List<KeyValuePair<string, string>> Fields { get; } = [];

    /// <summary>Meta attributes (<c>@name=value</c>), without the <c>@</c>.</summary>
    public Dictionary<string, string> Meta { get; } = new(StringComparer.Ordinal);

    /// <summary>The free text of ERR, NACK and BYE.</summary>
    public string Rest { get; private set; } = "";

    public string Subject => Args.Count > 0 ? Args[0] : "";

    public ulong Epoch => ulong.Parse(Args[1], CultureInfo.InvariantCulture);

    public ulong Seq => ulong.Parse(Args[2], CultureInfo.InvariantCulture);

    /// <summary><c>@merged=n</c> of a conflated UPDATE, 1 otherwise.</summary>
    public ulong Merged => Meta.TryGetValue("merged", out var m) && ulong.TryParse(m, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 1;

    /// <summary>For STATUS: OK, STALE, NOT_FOUND, DENIED.</summary>
    public string Status => Args.Count > 1 ? Args[1] : "";

    /// <summary>Parses a line; a line that does not follow the framing gives a verb of <c>?</c>.</summary>
    public static WireLine Parse(string text)
    {
        var tokens = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length == 0)
        {
            return new WireLine(text, "?");
        }

        var line = new WireLine(text, tokens[0]);

        // ERR <code>, NACK <id> <code>, BYE <reason>: then meta attributes, then free text.
        var textAfter = line.Verb switch { "ERR" or "BYE" => 1, "NACK" => 2, _ => -1 };
        var i = 1;
        if (textAfter >= 0)
        {
            for (; i < tokens.Length && i <= textAfter; i++)
            {
                line.Args.Add(tokens[i]);
            }

            for (; i < tokens.Length && tokens[i].StartsWith('@') && tokens[i].Contains('=', StringComparison.Ordinal); i++)
            {
                var eq = tokens[i].IndexOf('=', StringComparison.Ordinal);
                line.Meta[tokens[i][1..eq]] = Unescape(tokens[i][(eq + 1)..]);
            }

            line.Rest = string.Join(' ', tokens.Skip(i));
            return line;
        }

        for (; i < tokens.Length; i++)
        {
            var eq = tokens[i].IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                line.Args.Add(tokens[i]);
            }
            else if (tokens[i][0] == '@')
            {
                line.Meta[tokens[i][1..eq]] = Unescape(tokens[i][(eq + 1)..]);
            }
            else
            {
                line.Fields.Add(KeyValuePair.Create(tokens[i][..eq], Unescape(tokens[i][(eq + 1)..])));
            }
        }

        return line;
    }

    /// <summary>Undoes the protocol's escapes: <c>\\ \s \n \r \t \xHH</c>.</summary>
    public static string Unescape(string value)
    {
        if (!value.Contains('\\', StringComparison.Ordinal))
        {
            return value;
        }

        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] != '\\' || i + 1 >= value.Length)
            {
                sb.Append(value[i]);
                continue;
            }

            var c = value[++i];
            switch (c)
            {
                case '\\': sb.Append('\\'); break;
                case 's': sb.Append(' '); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'x' when i + 2 < value.Length:
                    sb.Append((char)int.Parse(value.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 2;
                    break;
                default: sb.Append('\\').Append(c); break;
            }
        }

        return sb.ToString();
    }
}
