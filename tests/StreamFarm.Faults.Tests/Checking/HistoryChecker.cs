using System.Globalization;
using System.Text;

namespace StreamFarm.Faults.Tests.Checking;

/// <summary>One broken invariant, with the lines that show it.</summary>
public sealed record Violation(string Invariant, string Subject, string Who, string What, IReadOnlyList<string> Evidence);

/// <summary>
/// Judges what the clients of a scenario saw. Pure: a function of the <see cref="History"/>.
/// <list type="bullet">
/// <item>I1 no silent gap: per subscriber session and subject, an UPDATE continues the last IMAGE's
/// epoch at seq = previous seq + merged (merged 1 by default), unless an explicit signal came
/// first (a new IMAGE, or STATUS STALE); and between contiguous seqs of one epoch (not merged) a
/// publisher's field never skips a value that was ACKed.</item>
/// <item>I2 convergence: at the end every observer holds, for every subject and publisher field,
/// a value between the publisher's last ACKed and last sent values (exactly the last sent one if
/// it was ACKed), and all observers hold the same.</item>
/// <item>I3 no going back: per logical subscriber (across its sessions), subject and publisher
/// field, the value never decreases nor vanishes; an IMAGE never goes back within an epoch.</item>
/// <item>I4 one history per (subject, epoch): the same (subject, epoch, seq) has the same content
/// everywhere: the full record (images, and a session's record while it follows without a
/// gap) and the fields of each non-merged UPDATE.</item>
/// <item>I5 every publication is answered (ACK or NACK) unless its connection was lost, and no
/// answer comes twice or for nothing.</item>
/// </list>
/// </summary>
public static class HistoryChecker
{
    public const string I1 = "I1 no silent gap";
    public const string I2 = "I2 convergence";
    public const string I3 = "I3 no going back";
    public const string I4 = "I4 one history per (subject, epoch)";
    public const string I5 = "I5 every publication answered";

    /// <summary>I1, I3, I4 and I5 over the whole history; I2 too when <paramref name="finalObservers"/> names the subscribers whose final state counts.</summary>
    public static List<Violation> Check(History h, IReadOnlyCollection<string>? finalObservers = null)
    {
        var acked = AckedValues(h);
        var violations = new List<Violation>();
        var histories = new Dictionary<(string Subject, ulong Epoch, ulong Seq, bool Update), (string Content, string Evidence)>();
        foreach (var lines in BySubscriber(h))
        {
            var replay = new Replay(h, acked, histories, violations);
            replay.Run(lines);
        }

        violations.AddRange(Answers(h));
        if (finalObservers is not null)
        {
            violations.AddRange(Convergence(h, finalObservers));
        }

        return violations;
    }

    /// <summary>I2 only: whether these subscribers hold what the publishers published (polled until true at the end of a scenario).</summary>
    public static List<Violation> Convergence(History h, IReadOnlyCollection<string> observers)
    {
        var violations = new List<Violation>();
        var finals = new Dictionary<string, Dictionary<string, SessionSubject>>(StringComparer.Ordinal);
        foreach (var lines in BySubscriber(h).Where(l => observers.Contains(l[0].Subscriber)))
        {
            var replay = new Replay(h, AckedValues(h), [], []);
            replay.Run(lines);
            finals[lines[0].Subscriber] = replay.Current;
        }

        foreach (var observer in observers.Where(o => !finals.ContainsKey(o)))
        {
            violations.Add(new(I2, "*", observer, "received nothing", []));
        }

        foreach (var subject in h.Subjects)
        {
            foreach (var (field, pubs) in h.Publications.Where(p => p.Subject == subject).GroupBy(p => p.Field).Select(g => (g.Key, g.OrderBy(p => p.SentAt).ToList())))
            {
                var lastSent = pubs.Max(p => p.Value);
                var ackedValues = pubs.Where(p => p.Outcome == PubOutcome.Acked).Select(p => p.Value).ToList();
                long? lastAcked = ackedValues.Count > 0 ? ackedValues.Max() : null;
                var last = pubs[^1];
                var exact = last.Outcome == PubOutcome.Acked;
                var expect = exact ? $"exactly {last.Value} (its last publication, ACKed)" : $"between {(lastAcked is { } a ? $"{a} (last ACKed)" : "nothing (none ACKed)")} and {lastSent} (last sent)";
                var held = new Dictionary<string, string?>(StringComparer.Ordinal);
                foreach (var (observer, state) in finals)
                {
                    var v = state.TryGetValue(subject, out var s) && s.Anchored ? s.Value(field) : null;
                    held[observer] = v?.ToString(CultureInfo.InvariantCulture) ?? (s is { Anchored: true } ? "absent" : "no image");
                    var ok = v is null
                        ? lastAcked is null
                        : v <= lastSent && (lastAcked is null || v >= lastAcked) && (!exact || v == last.Value);
                    if (!ok)
                    {
                        violations.Add(new(I2, subject, observer, $"{field} is {held[observer]}, expected {expect}", s?.Evidence() ?? []));
                    }
                }

                if (held.Values.Distinct().Count() > 1)
                {
                    violations.Add(new(I2, subject, "*", $"observers disagree on {field}: {string.Join(", ", held.Select(kv => $"{kv.Key}={kv.Value}"))}", []));
                }
            }
        }

        return violations;
    }

    /// <summary>A readable report: the scenario and its seed, the invariants broken (first few cases of each, with their lines), the clients' counts and the fault timeline.</summary>
    public static string Report(History h, IReadOnlyList<Violation> violations, int perInvariant = 6)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"scenario {h.Scenario}, seed {h.Seed} (replay: FAULTS_SEED={h.Seed})");
        foreach (var group in violations.GroupBy(v => v.Invariant).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var subjects = group.Select(v => v.Subject).Distinct().Count();
            sb.AppendLine(CultureInfo.InvariantCulture, $"FAILED {group.Key}: {group.Count()} violation(s) over {subjects} subject(s)");
            foreach (var v in group.Take(perInvariant))
            {
                sb.AppendLine(CultureInfo.InvariantCulture, $"  {v.Subject} {v.Who}: {v.What}");
                foreach (var e in v.Evidence)
                {
                    sb.AppendLine(CultureInfo.InvariantCulture, $"      {e}");
                }
            }
        }

        if (violations.Count == 0)
        {
            sb.AppendLine("all invariants hold");
        }

        sb.AppendLine("publications:");
        foreach (var g in h.Publications.GroupBy(p => p.Publisher))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {g.Key}: sent {g.Count()}, acked {g.Count(p => p.Outcome == PubOutcome.Acked)}, nacked {g.Count(p => p.Outcome == PubOutcome.Nacked)}, unknown {g.Count(p => p.Outcome == PubOutcome.Unknown)}, unanswered {g.Count(p => p.Outcome == PubOutcome.Pending)}; connections {g.Select(p => p.Connection).Distinct().Count()}; NACK codes: {string.Join(", ", g.Where(p => p.Outcome == PubOutcome.Nacked).GroupBy(p => p.Answer?.Split(' ').ElementAtOrDefault(2) ?? "?").Select(c => $"{c.Key} x{c.Count()}"))}");
        }

        sb.AppendLine("subscribers:");
        foreach (var g in h.Lines.GroupBy(l => l.Subscriber))
        {
            var images = g.Where(l => l.Text.StartsWith("IMAGE ", StringComparison.Ordinal)).ToList();
            var repeated = images.Count - images.Select(l => (l.Session, l.Text)).Distinct().Count();
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {g.Key}: {g.Count()} lines, sessions at {string.Join(" ", g.GroupBy(l => l.Session).Select(s => $"#{s.Key}@{s.First().Server}"))}; STALE {g.Count(l => l.Text.EndsWith(" STALE", StringComparison.Ordinal))}, images {images.Count} (of which {repeated} repeat an image the session already had, same epoch, seq and fields)");
        }

        foreach (var a in h.Anomalies.Take(10))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"anomaly {Stamp(h, a.At)} {a.Who}: {a.Text}");
        }

        sb.AppendLine("timeline:");
        foreach (var t in h.Timeline)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {t}");
        }

        return sb.ToString();
    }

    internal static string Stamp(History h, DateTime at) => string.Create(CultureInfo.InvariantCulture, $"+{(at - h.Start).TotalSeconds:0.000}s");

    private static IEnumerable<List<SubLine>> BySubscriber(History h) =>
        h.Lines.GroupBy(l => l.Subscriber, StringComparer.Ordinal).Select(g => g.ToList());

    /// <summary>
    /// True when the publication was acknowledged by the server its publisher was on, that server
    /// owned the subject, and it was killed within a second after the acknowledgement: the value
    /// may have been applied there only (an acknowledgement is not a replication), and so may be
    /// missing from every later history without a violation of what is promised.
    /// </summary>
    private static bool DiedWithItsOwner(History h, PubRecord p) =>
        p.AnsweredAt is { } acked && h.OwnerOf?.Invoke(p.Subject) == p.Server
        && h.Kills.Any(k => k.Server == p.Server && k.At >= acked && k.At - acked < TimeSpan.FromSeconds(1));

    /// <summary>
    /// True when the publication was acknowledged while the farm was split: from a cut until every
    /// server saw every other alive again with its routes up (<see cref="History.Partitions"/>,
    /// measured after the heal), and for <see cref="HandOverSlack"/> after, the hand-overs that the
    /// joined tables set off being on their way. Such a value may belong to one side's history only,
    /// superseded on the other side before the two merged (protocol.md 4a).
    /// </summary>
    private static bool DuringAPartition(History h, PubRecord p) =>
        p.AnsweredAt is { } acked && h.Partitions.Any(c => acked >= c.From && (c.Until == DateTime.MaxValue || acked <= c.Until + HandOverSlack));

    /// <summary>Time for the hand-overs sent when the tables joined to arrive (one route hop; generous for a loaded machine).</summary>
    private static readonly TimeSpan HandOverSlack = TimeSpan.FromSeconds(2);

    private static Dictionary<(string Field, string Subject), SortedSet<long>> AckedValues(History h)
    {
        var acked = new Dictionary<(string, string), SortedSet<long>>();
        foreach (var p in h.Publications.Where(p => p.Outcome == PubOutcome.Acked && !DiedWithItsOwner(h, p) && !DuringAPartition(h, p)))
        {
            if (!acked.TryGetValue((p.Field, p.Subject), out var set))
            {
                acked[(p.Field, p.Subject)] = set = [];
            }

            set.Add(p.Value);
        }

        return acked;
    }

    private static IEnumerable<Violation> Answers(History h)
    {
        foreach (var p in h.Publications.Where(p => p.Outcome == PubOutcome.Pending))
        {
            yield return new(I5, p.Subject, p.Publisher, $"no ACK or NACK for @ack={p.AckId} ({p.Field}={p.Value}) on connection #{p.Connection} to {p.Server}, which stayed open",
                [$"{Stamp(h, p.SentAt)} sent PUB {p.Subject} @ack={p.AckId} {p.Field}={p.Value}"]);
        }

        foreach (var a in h.Anomalies)
        {
            yield return new(I5, "*", a.Who, a.Text, [Stamp(h, a.At)]);
        }
    }

    /// <summary>A subject's record as one session of a subscriber holds it.</summary>
    internal sealed class SessionSubject
    {
        public bool Anchored { get; set; }

        public ulong Epoch { get; set; }

        public ulong Seq { get; set; }

        public bool Stale { get; set; }

        /// <summary>True while the record is known whole: since an IMAGE, through contiguous updates.</summary>
        public bool Whole { get; set; }

        public Dictionary<string, string> Fields { get; } = new(StringComparer.Ordinal);

        public List<string> Recent { get; } = [];

        public long? Value(string field) => Fields.TryGetValue(field, out var v) && long.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : null;

        public IReadOnlyList<string> Evidence() => [.. Recent];

        public void Remember(string line)
        {
            Recent.Add(line);
            if (Recent.Count > 4)
            {
                Recent.RemoveAt(0);
            }
        }
    }

    /// <summary>Replays one logical subscriber's lines (all its sessions, in order).</summary>
    private sealed class Replay(
        History h,
        Dictionary<(string Field, string Subject), SortedSet<long>> acked,
        Dictionary<(string Subject, ulong Epoch, ulong Seq, bool Update), (string Content, string Evidence)> histories,
        List<Violation> violations)
    {
        private readonly Dictionary<(string Subject, string Field), (long Value, string Line)> _highest = [];
        private readonly Dictionary<(string Subject, ulong Epoch), (ulong Seq, string Line)> _highestSeq = [];
        private int _session = -1;

        /// <summary>The last session's records, by subject.</summary>
        public Dictionary<string, SessionSubject> Current { get; private set; } = new(StringComparer.Ordinal);

        public void Run(List<SubLine> lines)
        {
            foreach (var l in lines)
            {
                if (l.Session != _session)
                {
                    _session = l.Session;
                    Current = new(StringComparer.Ordinal);
                }

                var w = WireLine.Parse(l.Text);
                if (w.Verb is not ("IMAGE" or "UPDATE" or "STATUS") || w.Args.Count < 2)
                {
                    continue;
                }

                var who = $"{l.Subscriber} (session #{l.Session} at {l.Server})";
                var shown = $"{Stamp(h, l.At)} {l.Subscriber}#{l.Session}@{l.Server} {l.Text}";
                if (!Current.TryGetValue(w.Subject, out var s))
                {
                    Current[w.Subject] = s = new SessionSubject();
                }

                switch (w.Verb)
                {
                    case "STATUS":
                        if (w.Status == "STALE")
                        {
                            s.Stale = true;
                        }
                        else if (w.Status == "NOT_FOUND")
                        {
                            foreach (var ((subject, field), high) in _highest.Where(kv => kv.Key.Subject == w.Subject))
                            {
                                violations.Add(new(I3, w.Subject, who, $"NOT_FOUND after {field}={high.Value} was seen", [high.Line, shown]));
                            }

                            s.Anchored = false;
                            s.Whole = false;
                            s.Fields.Clear();
                        }

                        break;
                    case "IMAGE" when w.Args.Count >= 3:
                        Image(w, s, who, shown);
                        break;
                    case "UPDATE" when w.Args.Count >= 3:
                        Update(w, s, who, shown);
                        break;
                    default:
                        break;
                }

                s.Remember(shown);
            }
        }

        private void Image(WireLine w, SessionSubject s, string who, string shown)
        {
            if (_highestSeq.TryGetValue((w.Subject, w.Epoch), out var hs) && w.Seq < hs.Seq)
            {
                violations.Add(new(I3, w.Subject, who, $"image of epoch {w.Epoch} at seq {w.Seq}, after seq {hs.Seq} of that epoch was seen", [hs.Line, shown]));
            }

            var fields = w.Fields.Where(f => IsCounter(f.Key)).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
            foreach (var ((subject, field), high) in _highest.Where(kv => kv.Key.Subject == w.Subject))
            {
                if (!fields.ContainsKey(field))
                {
                    violations.Add(new(I3, w.Subject, who, $"{field} vanished (was {high.Value})", [high.Line, shown]));
                }
            }

            s.Anchored = true;
            s.Epoch = w.Epoch;
            s.Seq = w.Seq;
            s.Stale = false;
            s.Whole = true;
            s.Fields.Clear();
            foreach (var f in w.Fields)
            {
                s.Fields[f.Key] = f.Value;
            }

            Values(w, who, shown);
            Record(w.Subject, w.Epoch, w.Seq, false, Content(s.Fields), shown, "image/record");
        }

        private void Update(WireLine w, SessionSubject s, string who, string shown)
        {
            var contiguous = s.Anchored && w.Epoch == s.Epoch && w.Seq == s.Seq + w.Merged;
            if (contiguous && w.Merged == 1)
            {
                foreach (var f in w.Fields.Where(f => IsCounter(f.Key)))
                {
                    if (s.Value(f.Key) is { } before && long.TryParse(f.Value, CultureInfo.InvariantCulture, out var after) && after > before + 1
                        && acked.TryGetValue((f.Key, w.Subject), out var set) && set.GetViewBetween(before + 1, after - 1) is { Count: > 0 } skipped)
                    {
                        violations.Add(new(I1, w.Subject, who, $"{f.Key} went from {before} to {after} between contiguous seqs, skipping ACKed value(s) {string.Join(",", skipped.Take(5))}", [.. s.Recent.TakeLast(2), shown]));
                    }
                }
            }
            else if (!contiguous)
            {
                if (!s.Stale)
                {
                    var at = s.Anchored ? $"epoch {s.Epoch} seq {s.Seq}" : "no image in this session";
                    violations.Add(new(I1, w.Subject, who, $"UPDATE {w.Epoch}/{w.Seq} (merged {w.Merged}) after {at}, with no IMAGE or STATUS STALE between", [.. s.Recent.TakeLast(2), shown]));
                }

                s.Whole = false;
                s.Stale = false;
            }

            s.Anchored = true;
            s.Epoch = w.Epoch;
            s.Seq = w.Seq;
            foreach (var f in w.Fields)
            {
                s.Fields[f.Key] = f.Value;
            }

            Values(w, who, shown);
            if (w.Merged == 1)
            {
                Record(w.Subject, w.Epoch, w.Seq, true, Content(w.Fields), shown, "update");
            }

            if (s.Whole)
            {
                Record(w.Subject, w.Epoch, w.Seq, false, Content(s.Fields), shown, "image/record");
            }
        }

        private void Values(WireLine w, string who, string shown)
        {
            foreach (var f in w.Fields.Where(f => IsCounter(f.Key)))
            {
                if (!long.TryParse(f.Value, CultureInfo.InvariantCulture, out var v))
                {
                    continue;
                }

                if (_highest.TryGetValue((w.Subject, f.Key), out var high) && v < high.Value)
                {
                    violations.Add(new(I3, w.Subject, who, $"{f.Key} went back from {high.Value} to {v}", [high.Line, shown]));
                    continue;
                }

                _highest[(w.Subject, f.Key)] = (v, shown);
            }

            if (!_highestSeq.TryGetValue((w.Subject, w.Epoch), out var hs) || w.Seq > hs.Seq)
            {
                _highestSeq[(w.Subject, w.Epoch)] = (w.Seq, shown);
            }
        }

        private void Record(string subject, ulong epoch, ulong seq, bool update, string content, string shown, string what)
        {
            if (!histories.TryGetValue((subject, epoch, seq, update), out var seen))
            {
                histories[(subject, epoch, seq, update)] = (content, shown);
            }
            else if (seen.Content != content)
            {
                violations.Add(new(I4, subject, shown.Split(' ')[1], $"{what} at epoch {epoch} seq {seq} is '{content}' here but '{seen.Content}' elsewhere", [seen.Evidence, shown]));
            }
        }

        private static string Content(IEnumerable<KeyValuePair<string, string>> fields) =>
            string.Join(' ', fields.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));
    }

    /// <summary>Publisher fields are <c>p&lt;k&gt;</c>; others are not counters.</summary>
    public static bool IsCounter(string field) => field.Length > 1 && field[0] == 'p' && field.AsSpan(1).IndexOfAnyExceptInRange('0', '9') < 0;
}
