namespace StreamFarm.Client.Tests.Kit;

/// <summary>Parsed RTTP messages built in memory, for tests of the client's buffers and records (epoch 7).</summary>
internal static class Lines
{
    public static RttpMessage Update(string subject, ulong seq, params (string Name, string Value)[] fields) => new()
    {
        Kind = RttpMessageKind.Update,
        Subject = subject,
        Epoch = 7,
        Seq = seq,
        Fields = [.. fields.Select(f => KeyValuePair.Create(f.Name, f.Value))],
    };

    public static RttpMessage Image(string subject, ulong seq, params (string Name, string Value)[] fields) => Update(subject, seq, fields) with { Kind = RttpMessageKind.Image };
}
