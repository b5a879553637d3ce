namespace StreamFarm.Bench;

/// <summary>What a failover run does (<c>./bench.sh failover</c>).</summary>
public sealed record FailoverSettings
{
    /// <summary>Kills measured per system.</summary>
    public int Runs { get; init; } = 50;

    /// <summary>StreamFarm servers in the farm (the NATS cluster always has two).</summary>
    public int Servers { get; init; } = 2;

    /// <summary>The publisher sends one message to the subject this often (to every server).</summary>
    public TimeSpan PublishInterval { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Which systems to run: streamfarm, nats.</summary>
    public IReadOnlyList<string> Systems { get; init; } = ["streamfarm", "nats"];

    /// <summary>The /24 of loopback addresses: the DNS system on .1, StreamFarm servers on .2.., nats-servers on .11 and .12.</summary>
    public string Prefix { get; init; } = "127.0.7";

    /// <summary>Longest wait for the first message from the new server after a kill before the run counts as failed.</summary>
    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>The FarmClient's standby connection (<c>FarmClientOptions.Standby</c>).</summary>
    public StreamFarm.Client.StandbyMode Standby { get; init; }

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Runs is < 1 or > 1000)
        {
            throw new ArgumentException("runs must be between 1 and 1000");
        }

        if (Servers is < 2 or > 8)
        {
            throw new ArgumentException("servers must be between 2 and 8");
        }

        if (PublishInterval < TimeSpan.FromMilliseconds(1) || PublishInterval > TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException("the publish interval must be between 1 and 1000 ms");
        }

        if (Systems.Count == 0 || Systems.Any(s => s is not ("streamfarm" or "nats")))
        {
            throw new ArgumentException("systems are streamfarm and nats");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.7");
        }
    }
}
