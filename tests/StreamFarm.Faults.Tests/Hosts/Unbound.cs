using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using StreamFarm.Faults.Tests.Farm;

namespace StreamFarm.Faults.Tests.Hosts;

/// <summary>
/// A real recursive resolver (Debian's <c>unbound</c>) on the clients' host, port 53, that delegates
/// the farm's zone to the servers' DNS responders (a stub zone listing each of them, as NS and glue
/// records in a parent zone would: docs/operations.md, section 14) and answers the clients. Its
/// config is written to the scenario's directory; it runs in the foreground (<c>-d</c>), not as a
/// service; dispose stops it. <see cref="ResolveAsync"/> asks it as a client on that host does
/// (<c>dig</c>, recursion desired).
/// </summary>
internal sealed partial class Unbound : IAsyncDisposable
{
    public const string Zone = "farm.test";
    public const string ServiceName = "stream." + Zone;
    private readonly HostNetwork _net;
    private readonly NodeProcess _process;

    private Unbound(HostNetwork net, NodeProcess process)
    {
        _net = net;
        _process = process;
    }

    /// <summary>The resolver's address, for clients' <c>--dns</c>.</summary>
    public string EndPoint => $"{_net.ClientAddress}:{HostNetwork.DnsPort}";

    public static async Task<Unbound> StartAsync(HostNetwork net, IEnumerable<string> servers, string dir)
    {
        var config = Path.Combine(dir, "unbound.conf");
        File.WriteAllText(config, $"""
            server:
              interface: {net.ClientAddress}
              port: {HostNetwork.DnsPort}
              do-ip6: no
              access-control: {HostNetwork.Subnet}.0/24 allow
              username: ""
              chroot: ""
              directory: "{dir}"
              use-syslog: no
              logfile: ""
              verbosity: 1
              num-threads: 1
              # no DNSSEC validation: the farm's zone is not signed (and has no parent here)
              module-config: "iterator"
              domain-insecure: "{Zone}."
              # unbound answers names under .test itself (RFC 6761) unless told not to
              local-zone: "test." nodefault
            stub-zone:
              name: "{Zone}."
            {string.Concat(servers.Select(id => $"  stub-addr: {net.Address(id)}@{HostNetwork.DnsPort}\n"))}
            """);
        var process = NodeProcess.Start(net.OnClientHost("unbound", ["-d", "-p", "-c", config]), Path.Combine(dir, "unbound.log"));
        var unbound = new Unbound(net, process);
        try
        {
            // Up when it answers a name it serves itself (the farm may not be up yet).
            await Poll.UntilAsync(async () => (await unbound.ResolveAsync("localhost.")).Status == "NOERROR", "unbound answers", TimeSpan.FromSeconds(15));
            return unbound;
        }
        catch
        {
            await unbound.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Asks the resolver for the A records of a name from the clients' host; the response code
    /// (null when no answer came within a second) and the addresses.
    /// </summary>
    public Task<(string? Status, IReadOnlyList<IPAddress> Addresses)> ResolveAsync(string name) => Task.Run<(string?, IReadOnlyList<IPAddress>)>(() =>
    {
        var (_, output, _) = Shell.Run("ip", ["netns", "exec", _net.Namespace(_net.ClientHost), "dig", "+time=1", "+tries=1", "+noall", "+comments", "+answer", $"@{_net.ClientAddress}", name, "A"], check: false);
        var status = StatusLine().Match(output) is { Success: true } m ? m.Groups[1].Value : null;
        var addresses = output.Split('\n')
            .Where(l => !l.StartsWith(';') && l.Contains("\tA\t", StringComparison.Ordinal))
            .Select(l => IPAddress.TryParse(l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1].Trim(), out var a) ? a : null)
            .OfType<IPAddress>()
            .OrderBy(a => a.ToString(), StringComparer.Ordinal)
            .ToList();
        return (status, addresses);
    });

    /// <summary>The servers (ids) among the addresses.</summary>
    public IReadOnlyList<string> Servers(IEnumerable<IPAddress> addresses, IEnumerable<string> ids) =>
        [.. addresses.Select(a => ids.FirstOrDefault(id => _net.Address(id) == a.ToString()) ?? a.ToString())];

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    [GeneratedRegex(@"status: (\w+)")]
    private static partial Regex StatusLine();

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"unbound at {EndPoint}");
}
