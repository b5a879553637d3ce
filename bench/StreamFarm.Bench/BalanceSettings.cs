namespace StreamFarm.Bench;

/// <summary>What a balance run does (<c>./bench.sh balance</c>).</summary>
public sealed record BalanceSettings
{
    /// <summary>The ways of choosing a server: dns (DNS alone), random, fewest, p2c, weighted.</summary>
    public static IReadOnlyList<string> AllPolicies { get; } = ["dns", "random", "fewest", "p2c", "weighted"];

    /// <summary>Clients connected per policy.</summary>
    public int Clients { get; init; } = 1000;

    /// <summary>They connect in this many bursts of Clients/Bursts, all of a burst at once.</summary>
    public int Bursts { get; init; } = 10;

    /// <summary>Pause between the end of one burst and the start of the next.</summary>
    public TimeSpan BurstGap { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Policies measured, in order.</summary>
    public IReadOnlyList<string> Policies { get; init; } = AllPolicies;

    /// <summary>Servers in the farm.</summary>
    public int Servers { get; init; } = 3;

    /// <summary>After each phase, the counts must hold still this long before they are read.</summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether to kill -9 and restart the busiest server after the bursts, and measure again.</summary>
    public bool Restart { get; init; } = true;

    /// <summary>The /24 of loopback addresses: the DNS system on .1, servers on .2...</summary>
    public string Prefix { get; init; } = "127.0.7";

    /// <summary>Longest wait for every client to be connected (after the bursts, after the restart).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    public int BurstSize => Clients / Bursts;

    /// <summary>Checks the settings; throws <see cref="ArgumentException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (Clients is < 1 or > 5000)
        {
            throw new ArgumentException("clients must be between 1 and 5000 (each takes two sockets on this machine)");
        }

        if (Bursts < 1 || Clients % Bursts != 0)
        {
            throw new ArgumentException("bursts must be at least 1 and divide the number of clients");
        }

        if (BurstGap < TimeSpan.Zero || Settle < TimeSpan.Zero)
        {
            throw new ArgumentException("the burst gap and the settle time must not be negative");
        }

        if (Policies.Count == 0 || Policies.Any(p => !AllPolicies.Contains(p)))
        {
            throw new ArgumentException($"policies are {string.Join(", ", AllPolicies)}");
        }

        if (Servers is < 2 or > 8)
        {
            throw new ArgumentException("servers must be between 2 and 8");
        }

        if (!System.Net.IPAddress.TryParse(Prefix + ".1", out var ip) || !System.Net.IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"prefix '{Prefix}' must be the first three bytes of a loopback address, like 127.0.7");
        }
    }
}
