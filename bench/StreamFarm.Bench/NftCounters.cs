using System.Globalization;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>
/// Counts, in the kernel, the gossip packets and bytes a farm's members send, the same way for every
/// system: an nftables table <c>inet streamfarm_membership_bench</c> with an output-hook chain and
/// counter rules for the farm's /24: UDP from its gossip port, TCP from its gossip port (answers of
/// full-state exchanges) and TCP to its gossip port (the side that connects: its source address is
/// whatever the kernel picks, 127.0.0.1 on loopback, so it is matched by destination). Bytes are
/// whole IP packets (IP and UDP/TCP headers included), TCP handshakes and acks included. The table is
/// deleted on dispose.
/// </summary>
internal sealed class NftCounters : IAsyncDisposable
{
    /// <summary>The table's name when none is given.</summary>
    public const string DefaultTable = "streamfarm_membership_bench";
    private static readonly string[] Locations = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];
    private static readonly (string Address, string Proto, string Field, string Name)[] Rules =
        [("saddr", "udp", "sport", "udp"), ("saddr", "tcp", "sport", "tcp-server"), ("daddr", "tcp", "dport", "tcp-client")];

    private readonly string _nft;
    private readonly string _table;

    private NftCounters(string nft, string table) => (_nft, _table) = (nft, table);

    /// <summary>Creates the table (replacing a stale one from an interrupted run); null with a reason when nft is not usable.</summary>
    public static async Task<(NftCounters? Counters, string? Problem)> CreateAsync(CancellationToken cancel, string table = DefaultTable)
    {
        var nft = Locations.FirstOrDefault(File.Exists);
        if (nft is null)
        {
            return (null, "nft not found (apt-get install nftables): packets at rest were not counted in the kernel");
        }

        var counters = new NftCounters(nft, table);
        await counters.RunAsync(["delete", "table", "inet", table], cancel, mayFail: true);
        var (ok, output) = await counters.RunAsync(["add", "table", "inet", table], cancel);
        if (ok)
        {
            (ok, output) = await counters.RunAsync(["add", "chain", "inet", table, "out", "{ type filter hook output priority 0; policy accept; }"], cancel);
        }

        return ok ? (counters, null) : (null, $"nft could not create its table ({output.Trim()}): packets at rest were not counted in the kernel");
    }

    /// <summary>Adds the counter rules of one farm: its addresses (<c>127.0.X.0/24</c>) and gossip port.</summary>
    public async Task AddAsync(string subnet, int port, CancellationToken cancel)
    {
        var p = port.ToString(CultureInfo.InvariantCulture);
        foreach (var (address, proto, field, name) in Rules)
        {
            var (ok, output) = await RunAsync(["add", "rule", "inet", _table, "out", "ip", address, subnet, proto, field, p, "counter", "comment", $"\"{name}\""], cancel);
            if (!ok)
            {
                throw new BenchException($"nft add rule failed: {output.Trim()}");
            }
        }
    }

    /// <summary>The counters so far, all rules of the table summed by protocol.</summary>
    public async Task<Traffic> ReadAsync(CancellationToken cancel)
    {
        var (ok, output) = await RunAsync(["-j", "list", "table", "inet", _table], cancel);
        if (!ok)
        {
            throw new BenchException($"nft list failed: {output.Trim()}");
        }

        var t = default(Traffic);
        using var doc = JsonDocument.Parse(output);
        foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (!item.TryGetProperty("rule", out var rule) || !rule.TryGetProperty("comment", out var comment))
            {
                continue;
            }

            foreach (var expr in rule.GetProperty("expr").EnumerateArray())
            {
                if (expr.TryGetProperty("counter", out var counter))
                {
                    var packets = counter.GetProperty("packets").GetInt64();
                    var bytes = counter.GetProperty("bytes").GetInt64();
                    t = comment.GetString() == "udp"
                        ? t with { UdpPackets = t.UdpPackets + packets, UdpBytes = t.UdpBytes + bytes }
                        : t with { TcpPackets = t.TcpPackets + packets, TcpBytes = t.TcpBytes + bytes };
                }
            }
        }

        return t;
    }

    public async ValueTask DisposeAsync() => await RunAsync(["delete", "table", "inet", _table], CancellationToken.None, mayFail: true);

    private async Task<(bool Ok, string Output)> RunAsync(string[] args, CancellationToken cancel, bool mayFail = false)
    {
        try
        {
            var run = await ChildProcess.RunToEndAsync(_nft, args, TimeSpan.FromSeconds(10), cancel);
            return (run.Succeeded, run.Succeeded ? run.Output : run.Errors);
        }
        catch (BenchException e) when (mayFail)
        {
            return (false, e.Message);
        }
    }

    /// <summary>Packets and bytes a member sent on its gossip port.</summary>
    internal readonly record struct Traffic(long UdpPackets, long UdpBytes, long TcpPackets, long TcpBytes)
    {
        public static Traffic operator -(Traffic a, Traffic b) => new(a.UdpPackets - b.UdpPackets, a.UdpBytes - b.UdpBytes, a.TcpPackets - b.TcpPackets, a.TcpBytes - b.TcpBytes);
    }
}
