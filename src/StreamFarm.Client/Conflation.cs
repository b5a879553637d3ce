namespace StreamFarm.Client;

/// <summary>
/// How received messages merge when the application falls behind (<see cref="OverflowPolicy.Conflate"/>),
/// as the server conflates: an update folded into a waiting update or image of the same history
/// keeps the latest value of every field and the latest <c>seq</c>; a new image replaces what waits.
/// </summary>
internal sealed class Conflation : IConflation<RttpMessage>, IConflation<FarmMessage>
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
