using System.Globalization;
using StreamFarm.Protocol;

namespace StreamFarm.TestKit;

/// <summary>One broken invariant: which, whose history, and what was seen.</summary>
public sealed record Violation(string Invariant, string Who, string Message)
{
    public override string ToString() => $"{Invariant} {Who}: {Message}";
}

/// <summary>
/// Checks clients' histories (<see cref="ClientEvent"/>s, the lines as they came off the wire)
/// against the farm's promises:
/// <list type="bullet">
/// <item><b>I1</b> continuity: per client connection and subject, an UPDATE continues the copy the
/// client holds: same epoch, <c>seq</c> = previous + <c>@merged</c> (1 by default). A break is
/// allowed only where the server said so: an IMAGE (a fresh copy), or a <c>STATUS STALE</c> since
/// the last message of that subject.</item>
/// <item><b>I2</b> convergence (<see cref="CheckHolds"/>): after heal and quiet, a client's copy of
/// each subject holds the last value each publisher published.</item>
/// <item><b>I3</b> no going back: a client's value of a publisher's field (<c>p&lt;k&gt;=&lt;counter&gt;</c>,
/// the counter growing with every publication) never decreases, across its reconnections too. For
/// a client that asked for stamps, checked on the values it shows (<see cref="StampedFields"/>).</item>
/// <item><b>I4</b> one history: wherever it is seen, (subject, epoch, seq) stands for one content
/// (the whole record after that message; only copies known to be complete are compared).</item>
/// </list>
/// </summary>
public sealed class HistoryChecker
{
    private readonly Dictionary<(string Subject, ulong Epoch, ulong Seq), (string Content, string Where)> _contents = [];
    private readonly List<Violation> _violations = [];

    /// <summary>Publications, to say where a value came from in I3 messages: field → value → "publisher #session@server".</summary>
    private readonly Dictionary<string, Dictionary<long, string>> _published = new(StringComparer.Ordinal);

    public IReadOnlyList<Violation> Violations => _violations;

    /// <summary>Lines on which a stamped client kept newer values than the farm sent (the farm had lost writes it showed).</summary>
    public int KeptNewer { get; private set; }

    /// <summary>Copies of (subject, epoch, seq) compared for I4.</summary>
    public int Observations { get; private set; }

    /// <summary>Notes where a publisher's values were published (for messages only).</summary>
    public void AddPublisher(string name, string field, IEnumerable<ClientEvent> events)
    {
        if (!_published.TryGetValue(field, out var values))
        {
            _published[field] = values = [];
        }

        foreach (var e in events.Where(e => e.Kind == ClientEventKind.Sent && e.Line.StartsWith("PUB ", StringComparison.Ordinal)))
        {
            foreach (var token in e.Line.Split(' ').Skip(2))
            {
                if (token.StartsWith(field + "=", StringComparison.Ordinal) && long.TryParse(token.AsSpan(field.Length + 1), CultureInfo.InvariantCulture, out var v))
                {
                    values[v] = $"{name} #{e.Session}@{e.Server} at {e.AtMs / 1000.0:0.000}s";
                }
            }
        }
    }

    /// <summary>I1, I3 and I4 over one client's history; returns its copy of every subject at the end of its last connection.</summary>
    public IReadOnlyDictionary<string, SubjectCopy> Check(string who, IEnumerable<ClientEvent> events)
    {
        var copies = new Dictionary<string, SubjectCopy>(StringComparer.Ordinal);
        var shown = new Dictionary<string, StampedFields>(StringComparer.Ordinal); // a stamped client's copies: kept across connections
        var highest = new Dictionary<(string Subject, string Field), (long Value, string At)>();
        foreach (var e in events)
        {
            if (e.Kind == ClientEventKind.Connected)
            {
                copies.Clear(); // a new connection: copies start again from the new server's images
                continue;
            }

            if (e.Kind != ClientEventKind.Received)
            {
                continue;
            }

            var t = e.Line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (t[0])
            {
                case "IMAGE" or "UPDATE":
                    if (t.Length < 4 || !ulong.TryParse(t[2], CultureInfo.InvariantCulture, out var epoch) || !ulong.TryParse(t[3], CultureInfo.InvariantCulture, out var seq))
                    {
                        Add("I1", who, e, "malformed line");
                        break;
                    }

                    var subject = t[1];
                    var merged = 1UL;
                    string? clr = null, fts = null, ts = null;
                    var fields = new List<(string Name, string Value)>();
                    foreach (var token in t.Skip(4))
                    {
                        var eq = token.IndexOf('=', StringComparison.Ordinal);
                        if (eq <= 0)
                        {
                            continue;
                        }

                        if (token[0] == '@')
                        {
                            if (token.StartsWith("@merged=", StringComparison.Ordinal))
                            {
                                _ = ulong.TryParse(token.AsSpan(8), CultureInfo.InvariantCulture, out merged);
                            }
                            else if (token.StartsWith("@clr=", StringComparison.Ordinal))
                            {
                                clr = token[5..];
                            }
                            else if (token.StartsWith("@fts=", StringComparison.Ordinal))
                            {
                                fts = token[5..];
                            }
                            else if (token.StartsWith("@ts=", StringComparison.Ordinal))
                            {
                                ts = token[4..];
                            }

                            continue;
                        }

                        fields.Add((token[..eq], token[(eq + 1)..]));
                    }

                    if (!copies.TryGetValue(subject, out var copy))
                    {
                        copies[subject] = copy = new SubjectCopy();
                    }

                    if (t[0] == "IMAGE")
                    {
                        copy.Fields.Clear();
                        copy.Complete = true;
                    }
                    else if (!copy.HasData)
                    {
                        if (copy.StaleSinceLast)
                        {
                            copy.Complete = false;
                        }
                        else
                        {
                            Add("I1", who, e, "UPDATE before any IMAGE on this connection");
                            copy.Complete = false;
                        }
                    }
                    else if (epoch != copy.Epoch || seq != copy.Seq + merged)
                    {
                        var what = epoch != copy.Epoch ? $"epoch {epoch} after {copy.Epoch}" : $"seq {seq} after {copy.Seq}{(merged > 1 ? $" (@merged={merged})" : "")}";
                        var backwards = epoch == copy.Epoch && seq <= copy.Seq;
                        if (copy.StaleSinceLast && !backwards)
                        {
                            copy.Complete = false; // a gap the server signalled: allowed, but this copy is no longer known complete
                        }
                        else
                        {
                            Add("I1", who, e, $"UPDATE out of line: {what}{(copy.StaleSinceLast ? " (STALE was signalled, but seq went back)" : "")}");
                            copy.Complete = false;
                        }
                    }

                    // A client that asked for stamps shows what StampedFields keeps: I3 is checked on
                    // that (the rule a client follows to refuse to go back, docs/protocol.md 4a).
                    var values = fields;
                    if (clr is not null || fts is not null || ts is not null)
                    {
                        if (!shown.TryGetValue(subject, out var guard))
                        {
                            shown[subject] = guard = new StampedFields();
                        }

                        var (clear, stamps) = StampedFields.ReadStamps(clr, fts, ts, fields.Count);
                        if (guard.Apply(t[0] == "IMAGE", clear, [.. fields.Select((f, i) => (f.Name, f.Value, stamps[i]))]).Kept > 0)
                        {
                            KeptNewer++;
                        }

                        values = [.. fields.Select(f => (f.Name, guard[f.Name] ?? f.Value))];
                    }

                    foreach (var (name, value) in fields)
                    {
                        copy.Fields[name] = value;
                    }

                    foreach (var (name, value) in values)
                    {
                        if (long.TryParse(value, CultureInfo.InvariantCulture, out var v))
                        {
                            var at = $"#{e.Session}@{e.Server} {e.AtMs / 1000.0:0.000}s";
                            if (highest.TryGetValue((subject, name), out var h) && v < h.Value)
                            {
                                Add("I3", who, e, $"{subject} {name} went back from {h.Value} ({h.At}{From(name, h.Value)}) to {v} ({at}{From(name, v)}){Connections(name, h.Value, v)}");
                            }

                            if (!highest.TryGetValue((subject, name), out h) || v > h.Value)
                            {
                                highest[(subject, name)] = (v, at);
                            }
                        }
                    }

                    copy.HasData = true;
                    copy.Epoch = epoch;
                    copy.Seq = seq;
                    copy.StaleSinceLast = false;
                    if (copy.Complete)
                    {
                        var content = string.Join(' ', copy.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));
                        var where = $"{who} #{e.Session}@{e.Server} {e.AtMs / 1000.0:0.000}s";
                        Observations++;
                        if (_contents.TryGetValue((subject, epoch, seq), out var seen))
                        {
                            if (seen.Content != content)
                            {
                                Add("I4", who, e, $"{subject} epoch {epoch} seq {seq} is [{content}] at {where} but [{seen.Content}] at {seen.Where}");
                            }
                        }
                        else
                        {
                            _contents[(subject, epoch, seq)] = (content, where);
                        }
                    }

                    break;
                case "STATUS" when t.Length >= 3:
                    if (!copies.TryGetValue(t[1], out var c))
                    {
                        copies[t[1]] = c = new SubjectCopy();
                    }

                    c.LastStatus = t[2];
                    if (t[2] == "STALE")
                    {
                        c.StaleSinceLast = true;
                    }

                    break;
                default:
                    break;
            }
        }

        return copies;
    }

    /// <summary>
    /// I2: <paramref name="copies"/> (a client's copies at the end, from <see cref="Check"/>) hold
    /// <paramref name="expected"/> (subject → field → the last value published). Returns the number of
    /// subjects that do not (violations are added).
    /// </summary>
    public int CheckHolds(string who, IReadOnlyDictionary<string, SubjectCopy> copies, IReadOnlyDictionary<string, IReadOnlyDictionary<string, long>> expected, bool record = true)
    {
        var wrong = 0;
        foreach (var (subject, fields) in expected)
        {
            copies.TryGetValue(subject, out var copy);
            var missing = fields.Where(f => copy is null || !copy.Fields.TryGetValue(f.Key, out var v) || v != f.Value.ToString(CultureInfo.InvariantCulture)).ToList();
            if (missing.Count == 0)
            {
                continue;
            }

            wrong++;
            if (record)
            {
                var have = copy is null ? "nothing" : $"epoch {copy.Epoch} seq {copy.Seq} [{string.Join(' ', copy.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"))}]{(copy.LastStatus is { } st ? $" last STATUS {st}" : "")}";
                _violations.Add(new Violation("I2", who, $"{subject}: expected {string.Join(' ', missing.Select(f => $"{f.Key}={f.Value}"))}, holds {have}"));
            }
        }

        return wrong;
    }

    /// <summary>Whether the publisher sent both values on one connection (a plain regression) or on two (it moved between them: the farm promises no order across a publisher's connections).</summary>
    private string Connections(string field, long a, long b) =>
        _published.TryGetValue(field, out var values) && values.TryGetValue(a, out var wa) && values.TryGetValue(b, out var wb)
            ? ConnectionOf(wa) == ConnectionOf(wb) ? " [one publisher connection]" : " [two publisher connections]"
            : "";

    private static string ConnectionOf(string where) => where[..where.IndexOf(" at ", StringComparison.Ordinal)];

    private string From(string field, long value) =>
        _published.TryGetValue(field, out var values) && values.TryGetValue(value, out var where) ? $", published by {where}" : "";

    private void Add(string invariant, string who, ClientEvent e, string message) =>
        _violations.Add(new Violation(invariant, who, $"{message} | line {e}"));
}

/// <summary>A client's copy of one subject, rebuilt from the lines it received.</summary>
public sealed class SubjectCopy
{
    public Dictionary<string, string> Fields { get; } = new(StringComparer.Ordinal);

    public bool HasData { get; set; }

    public ulong Epoch { get; set; }

    public ulong Seq { get; set; }

    /// <summary>Rebuilt from an IMAGE and consecutive UPDATEs only (so it is the record at (epoch, seq)).</summary>
    public bool Complete { get; set; }

    public bool StaleSinceLast { get; set; }

    public string? LastStatus { get; set; }
}
