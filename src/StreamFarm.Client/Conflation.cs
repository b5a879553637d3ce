namespace StreamFarm.Client;

/// <summary>
/// How received messages merge when the application falls behind (<see cref="OverflowPolicy.Conflate"/>),
/// as the server conflates: an update folded into a waiting update or image of the same history
/// keeps the latest value of every field and the latest <c>seq</c>; a new image replaces what waits.
/// </summary>
internal sealed class Conflation : IConflation<RttpMessage>, IConflation<FarmMessage>, IConflation<SubjectMessage>, IConflation<SubjectData>
{
    public static readonly Conflation Instance = new();

    public (string? Subject, bool Data) Classify(RttpMessage item) => item.Kind switch
    {
        RttpMessageKind.Image or RttpMessageKind.Update => (item.Subject, true),
        RttpMessageKind.Status => (item.Subject, false),
        _ => (null, false),
    };

    public (string? Subject, bool Data) Classify(FarmMessage item) => Classify(item.Message);

    public RttpMessage? Merge(RttpMessage older, RttpMessage newer)
    {
        if (newer.Kind == RttpMessageKind.Image)
        {
            return newer; // every field: nothing of the waiting one is needed
        }

        if (newer.Kind != RttpMessageKind.Update || older.Epoch != newer.Epoch || newer.Seq <= older.Seq)
        {
            return null;
        }

        return older with
        {
            Seq = newer.Seq,
            Merged = older.Kind == RttpMessageKind.Update ? older.Merged + newer.Merged : older.Merged,
            Fields = MergeFields(older.Fields, newer.Fields),
        };
    }

    public FarmMessage? Merge(FarmMessage older, FarmMessage newer)
    {
        if (older.Server != newer.Server || Merge(older.Message, newer.Message) is not { } merged)
        {
            return null;
        }

        // An image after a move says how it continues the stream: that stays with what replaces it.
        return new FarmMessage(merged, newer.Server, older.Continuity != Continuity.Continuous ? older.Continuity : newer.Continuity);
    }

    public (string? Subject, bool Data) Classify(SubjectMessage item) => (item.Subject, item is SubjectImage or SubjectUpdate);

    /// <summary>As for <see cref="FarmMessage"/>s: same server only; an image replaces what waits (keeping a move's continuity); an update of the same history with a later <c>seq</c> folds into a waiting image or update.</summary>
    public SubjectMessage? Merge(SubjectMessage older, SubjectMessage newer)
    {
        if (older.Server != newer.Server)
        {
            return null;
        }

        return (older, newer) switch
        {
            (SubjectImage { Continuity: not Continuity.Continuous } o, SubjectImage n) => n with { Continuity = o.Continuity },
            (_, SubjectImage n) => n,
            (SubjectImage o, SubjectUpdate n) when o.Epoch == n.Epoch && n.Seq > o.Seq => o with { Seq = n.Seq, Fields = MergeFields(o.Fields, n.Fields) },
            (SubjectUpdate o, SubjectUpdate n) when o.Epoch == n.Epoch && n.Seq > o.Seq => o with { Seq = n.Seq, Merged = o.Merged + n.Merged, Fields = MergeFields(o.Fields, n.Fields) },
            _ => null,
        };
    }

    public (string? Subject, bool Data) Classify(SubjectData item) => (item.Subject, item.Kind is RttpMessageKind.Image or RttpMessageKind.Update);

    /// <summary>
    /// As for <see cref="SubjectMessage"/>s, in place: an image replaces what waits (taking a
    /// move's continuity); an update of the same history with a later <c>seq</c> folds into the
    /// waiting image or update, whose buffer takes its fields. The one let go returns to its pool
    /// (<see cref="Discard(SubjectData)"/>, called by the queue).
    /// </summary>
    public SubjectData? Merge(SubjectData older, SubjectData newer)
    {
        if (!string.Equals(older.Server, newer.Server, StringComparison.Ordinal))
        {
            return null;
        }

        if (newer.Kind == RttpMessageKind.Image)
        {
            if (older.Kind == RttpMessageKind.Image && older.Continuity != Continuity.Continuous)
            {
                newer.Continuity = older.Continuity;
            }

            return newer;
        }

        if (newer.Kind != RttpMessageKind.Update || older.Epoch != newer.Epoch || newer.Seq <= older.Seq)
        {
            return null;
        }

        older.Seq = newer.Seq;
        if (older.Kind == RttpMessageKind.Update)
        {
            older.Merged += newer.Merged;
        }

        older.MergeFieldsFrom(newer);
        return older;
    }

    public void Discard(SubjectData item) => item.Return();

    private static KeyValuePair<string, string>[] MergeFields(IReadOnlyList<KeyValuePair<string, string>> older, IReadOnlyList<KeyValuePair<string, string>> newer)
    {
        var fields = new List<KeyValuePair<string, string>>(older.Count + newer.Count);
        fields.AddRange(older);
        foreach (var field in newer)
        {
            var i = fields.FindIndex(f => string.Equals(f.Key, field.Key, StringComparison.Ordinal));
            if (i >= 0)
            {
                fields[i] = field;
            }
            else
            {
                fields.Add(field);
            }
        }

        return [.. fields];
    }
}
