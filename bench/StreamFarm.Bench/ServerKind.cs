namespace StreamFarm.Bench;

/// <summary>The servers the harness compares.</summary>
public enum ServerKind
{
    StreamFarm,
    Nats,
}

/// <summary>Display names of <see cref="ServerKind"/>.</summary>
public static class ServerKindNames
{
    public static string Name(this ServerKind kind) => kind switch
    {
        ServerKind.StreamFarm => "StreamFarm",
        ServerKind.Nats => "NATS",
        _ => kind.ToString(),
    };
}
