namespace StreamFarm.Faults.Tests.Farm;

/// <summary>A fault in place until it is healed (a scenario heals what is left before its checks).</summary>
internal interface IHealable
{
    void Heal();
}

/// <summary>
/// Network partitions between servers with nftables: a table of this test process's own
/// (<c>inet streamfarm_faults_&lt;pid&gt;</c>) whose rules name only addresses of the test's own
/// subnet. Healing deletes the table; so does dispose, always.
/// </summary>
internal sealed class Partition : IHealable, IDisposable
{
    private readonly string _nft;
    private readonly FaultFarm _farm;
    private bool _active;

    public Partition(FaultFarm farm)
    {
        _nft = Binary ?? throw new InvalidOperationException("nft is not installed");
        _farm = farm;
        Run($"delete table inet {Table}", check: false);
    }

    public static string Table { get; } = $"streamfarm_faults_{Environment.ProcessId}";

    public static string? Binary { get; } = new[] { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" }.FirstOrDefault(File.Exists);

    /// <summary>Null when partitions can be made here; otherwise why not (nft missing, or not permitted).</summary>
    public static string? Unavailable { get; } = Probe();

    /// <summary>Cuts a server off from the other servers: both ways, or only its packets to them (one way).</summary>
    public void Cut(string id, bool bothWays)
    {
        var others = string.Join(", ", _farm.Ids.Where(o => o != id).Select(_farm.Address));
        Drop(_farm.Address(id), $"{{ {others} }}", bothWays, bothWays ? $"partition: {id} cut off from {others} both ways" : $"partition: {id}'s packets to {others} dropped (one way)");
    }

    /// <summary>Cuts two servers off from each other, both ways or only <paramref name="a"/>'s packets to <paramref name="b"/>; each still reaches every other server (so the farm keeps both alive).</summary>
    public void CutBetween(string a, string b, bool bothWays = true) =>
        Drop(_farm.Address(a), _farm.Address(b), bothWays, bothWays ? $"partition: {a} and {b} cut off from each other (both reach the others)" : $"partition: {a}'s packets to {b} dropped (one way; both reach the others)");

    /// <summary>Drops packets from <paramref name="from"/> to <paramref name="to"/> (an address or an nft set), and back when <paramref name="bothWays"/>.</summary>
    private void Drop(string from, string to, bool bothWays, string note)
    {
        Run($"add table inet {Table}");
        Run($"add chain inet {Table} out {{ type filter hook output priority 0 ; }}");
        Run($"add rule inet {Table} out ip saddr {from} ip daddr {to} drop");
        if (bothWays)
        {
            Run($"add rule inet {Table} out ip saddr {to} ip daddr {from} drop");
        }

        _active = true;
        _farm.PartitionStarted();
        _farm.Note(note);
    }

    public void Heal()
    {
        if (_active)
        {
            Run($"delete table inet {Table}", check: false);
            _active = false;
            _farm.PartitionHealed();
            _farm.Note("partition healed");
        }
    }

    public void Dispose()
    {
        Heal();
        Run($"delete table inet {Table}", check: false);
    }

    private void Run(string args, bool check = true) => Exec(_nft, args, check);

    private static (int Code, string Error) Exec(string file, string args, bool check)
    {
        var (code, _, err) = Shell.Run(file, args.Split(' ', StringSplitOptions.RemoveEmptyEntries), check);
        return (code, err);
    }

    private static string? Probe()
    {
        if (Binary is null)
        {
            return "nft is not installed (apt-get install nftables; scripts/setup.sh installs it)";
        }

        var probe = $"streamfarm_faults_probe_{Environment.ProcessId}";
        var (code, err) = Exec(Binary, $"add table inet {probe}", check: false);
        Exec(Binary, $"delete table inet {probe}", check: false);
        return code == 0 ? null : $"nft is not permitted here (needs CAP_NET_ADMIN): {err.Trim()}";
    }
}

/// <summary>A test that needs nftables: skipped, with the reason, where nft is missing or not permitted.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NftFactAttribute : FactAttribute
{
    public NftFactAttribute()
    {
        if (Partition.Unavailable is { } why)
        {
            Skip = why;
        }
    }
}
