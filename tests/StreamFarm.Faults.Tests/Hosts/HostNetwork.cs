using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using StreamFarm.Faults.Tests.Farm;

namespace StreamFarm.Faults.Tests.Hosts;

/// <summary>
/// Network namespaces standing in for hosts. Server s<i>n</i> runs on host h<i>n</i> (namespace
/// <c>sfh-&lt;pid&gt;-h&lt;n&gt;</c>, address <c>10.77.0.&lt;n&gt;</c> on its <c>eth0</c>); the
/// clients and their resolver are on the next host; every host's <c>eth0</c> is one end of a veth
/// pair whose other end is a port of a bridge in a namespace of its own (<c>sfh-&lt;pid&gt;-br</c>).
/// Nothing outside these namespaces is touched: this machine gets no address, route, link or rule.
/// Each host has its own loopback, its own ports (every server on 7400, DNS on 53) and its own
/// firewall (a cut is a table in the host's namespace). Dispose kills what runs in them and deletes
/// them; a new network first removes what a crashed run left (namespaces of a process that is gone).
/// </summary>
internal sealed partial class HostNetwork : IFarmNetwork, IDisposable
{
    public const string Subnet = "10.77.0";
    public const int DnsPort = 53;
    private const string Prefix = "sfh-";
    private const string CutTable = "streamfarm_cut";
    private readonly string _name = $"{Prefix}{Environment.ProcessId}";
    private readonly Dictionary<string, NetNamespace> _sockets = new(StringComparer.Ordinal);
    private readonly string _clockFile;
    private readonly List<string> _made = [];

    private HostNetwork(int servers, string dir, string clockServer)
    {
        Servers = servers;
        ClockServer = clockServer;
        _clockFile = Path.Combine(dir, $"clock-{clockServer}.faketime");
        File.WriteAllText(_clockFile, "+0\n");
    }

    /// <summary>How many hosts run servers (the clients' host comes after them).</summary>
    public int Servers { get; }

    /// <summary>The server whose processes run under libfaketime, so that its clock can be stepped (<see cref="StepClock"/>).</summary>
    public string ClockServer { get; }

    /// <summary>The host of the clients and their resolver.</summary>
    public string ClientHost => $"h{Servers + 1}";

    public string ClientAddress => $"{Subnet}.{Servers + 1}";

    public string FarmName => "hosts";

    /// <summary>The namespace of a host (<c>h1</c>...).</summary>
    public string Namespace(string host) => $"{_name}-{host}";

    public static string HostOf(string id) => "h" + id[1..];

    public string Address(string id) => $"{Subnet}.{int.Parse(id[1..], CultureInfo.InvariantCulture)}";

    /// <summary>Every server answers the farm's zone on port 53 of its host, all healthy servers in one answer.</summary>
    public IEnumerable<string> NodeOptions(string id) =>
        ["--dns", $"{Address(id)}:{DnsPort}", "--dns-answers", Servers.ToString(CultureInfo.InvariantCulture)];

    public ProcessStartInfo OnHost(string id, IEnumerable<string> args, string? dll = null)
    {
        var info = NodeProcess.Command(args, ["ip", "netns", "exec", Namespace(HostOf(id))], dll);
        if (id == ClockServer)
        {
            // libfaketime (LD_PRELOAD) offsets the wall clock (CLOCK_REALTIME, time(), gettimeofday())
            // by what the file says, read again every second: "+0" until StepClock writes the step.
            // CLOCK_MONOTONIC stays real, as it does when a host's clock is stepped (timers, timeouts
            // and elapsed times do not jump); FAKETIME_FORCE_MONOTONIC_FIX=0 keeps libfaketime's
            // pthread_cond_timedwait from spinning on the runtime's monotonic waits (a node spun one
            // core without it).
            info.Environment.Remove("FAKETIME");
            info.Environment["LD_PRELOAD"] = FakeTimeLibrary;
            info.Environment["FAKETIME_TIMESTAMP_FILE"] = _clockFile;
            info.Environment["FAKETIME_CACHE_DURATION"] = "1";
            info.Environment["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
            info.Environment["FAKETIME_FORCE_MONOTONIC_FIX"] = "0";
        }

        return info;
    }

    /// <summary>How to run a program on the clients' host.</summary>
    public ProcessStartInfo OnClientHost(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", Namespace(ClientHost), file, .. args])
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }

    /// <summary>How to run a <c>streamfarm</c> command on the clients' host.</summary>
    public ProcessStartInfo StreamfarmOnClientHost(IEnumerable<string> args) =>
        NodeProcess.Command(args, ["ip", "netns", "exec", Namespace(ClientHost)]);

    public Socket ClientSocket() => Sockets(ClientHost).Tcp();

    /// <summary>
    /// The test's own look at a server (<c>/farm</c>, <c>/metrics</c>, the clock) is taken from the
    /// server's host, over its loopback: a cut host is still seen (its view of the farm is what
    /// tells when the farm is whole again). Other addresses are asked from the clients' host.
    /// </summary>
    public HttpClient Observer(TimeSpan timeout) => new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromSeconds(2),
        ConnectCallback = async (context, cancel) =>
        {
            var server = Enumerable.Range(1, Servers).Select(n => $"s{n}").FirstOrDefault(id => Address(id) == context.DnsEndPoint.Host);
            var socket = Sockets(server is null ? ClientHost : HostOf(server)).Tcp();
            try
            {
                socket.NoDelay = true;
                await socket.ConnectAsync(context.DnsEndPoint, cancel);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { Timeout = timeout };

    private NetNamespace Sockets(string host)
    {
        lock (_sockets)
        {
            if (!_sockets.TryGetValue(host, out var ns))
            {
                _sockets[host] = ns = new NetNamespace(Namespace(host));
            }

            return ns;
        }
    }

    /// <summary>Makes the hosts and the bridge (after removing what a crashed run left).</summary>
    public static HostNetwork Create(int servers, string dir, string clockServer)
    {
        RemoveLeftovers();
        var net = new HostNetwork(servers, dir, clockServer);
        try
        {
            var bridge = net.Namespace("br");
            net.Add(bridge);
            Ip("-n", bridge, "link", "add", "br0", "type", "bridge");
            Ip("-n", bridge, "link", "set", "br0", "up");
            for (var n = 1; n <= servers + 1; n++)
            {
                var host = net.Namespace($"h{n}");
                net.Add(host);
                Ip("-n", bridge, "link", "add", $"v{n}", "type", "veth", "peer", "name", "eth0", "netns", host);
                Ip("-n", bridge, "link", "set", $"v{n}", "master", "br0", "up");
                Ip("-n", host, "addr", "add", $"{Subnet}.{n}/24", "dev", "eth0");
                Ip("-n", host, "link", "set", "eth0", "up");
                Ip("-n", host, "link", "set", "lo", "up");
            }

            return net;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private void Add(string ns)
    {
        Ip("netns", "add", ns);
        _made.Add(ns);
    }

    /// <summary>Cuts a host off: its firewall drops every packet in and out of <c>eth0</c> (to and from the bridge); loopback stays.</summary>
    public void Isolate(string id) => Shell.Run("ip", ["netns", "exec", Namespace(HostOf(id)), "nft", "-f", "-"], input: $$"""
        table inet {{CutTable}} {
          chain in { type filter hook input priority 0; policy accept; iifname != "lo" drop; }
          chain out { type filter hook output priority 0; policy accept; oifname != "lo" drop; }
        }
        """);

    /// <summary>Undoes <see cref="Isolate"/>.</summary>
    public void Reconnect(string id) => Shell.Run("ip", ["netns", "exec", Namespace(HostOf(id)), "nft", "delete", "table", "inet", CutTable], check: false);

    /// <summary>Steps the wall clock of <see cref="ClockServer"/>'s processes by this much (it takes effect within about a second).</summary>
    public void StepClock(TimeSpan by)
    {
        var next = _clockFile + ".next";
        File.WriteAllText(next, string.Create(CultureInfo.InvariantCulture, $"{(by >= TimeSpan.Zero ? "+" : "-")}{(long)by.Duration().TotalSeconds}s\n"));
        File.Move(next, _clockFile, overwrite: true); // libfaketime never reads half a file
    }

    public void Dispose()
    {
        lock (_sockets)
        {
            foreach (var ns in _sockets.Values)
            {
                ns.Dispose();
            }

            _sockets.Clear();
        }

        foreach (var ns in Enumerable.Reverse(_made))
        {
            Remove(ns);
        }

        _made.Clear();
    }

    /// <summary>Removes the namespaces of earlier runs whose process is gone, and what still runs in them.</summary>
    public static void RemoveLeftovers()
    {
        foreach (var ns in Names())
        {
            var m = LeftoverName().Match(ns);
            if (m.Success && int.TryParse(m.Groups[1].Value, CultureInfo.InvariantCulture, out var pid) && (pid == Environment.ProcessId || !Directory.Exists($"/proc/{pid}")))
            {
                Remove(ns);
            }
        }
    }

    private static IEnumerable<string> Names() =>
        Shell.Run("ip", ["netns", "list"], check: false).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]);

    /// <summary>Kills what runs in the namespace (the processes this test started there), then deletes it.</summary>
    private static void Remove(string ns)
    {
        foreach (var pid in Shell.Run("ip", ["netns", "pids", ns], check: false).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                // Not waited for: the namespace outlives its name until they are gone, and a new
                // network's namespaces are others (an orphan's zombie may wait long for its reaper).
                using var p = Process.GetProcessById(int.Parse(pid, CultureInfo.InvariantCulture));
                p.Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or System.ComponentModel.Win32Exception)
            {
                // gone already
            }
        }

        Shell.Run("ip", ["netns", "delete", ns], check: false);
    }

    private static void Ip(params string[] args) => Shell.Run("ip", args);

    [GeneratedRegex(@"^sfh-(\d+)-")]
    private static partial Regex LeftoverName();

    /// <summary>libfaketime's library, where Debian puts it.</summary>
    public static string FakeTimeLibrary { get; } =
        new[] { "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib" }
            .Select(d => Path.Combine(d, "faketime", "libfaketime.so.1")).FirstOrDefault(File.Exists) ?? "";

    /// <summary>Null when hosts can be made here; otherwise why not.</summary>
    public static string? Unavailable { get; } = Probe();

    private static string? Probe()
    {
        var missing = new[] { ("ip", "iproute2"), ("nft", "nftables"), ("unbound", "unbound"), ("dig", "dnsutils") }
            .Where(t => !new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Any(d => File.Exists(Path.Combine(d, t.Item1))))
            .Select(t => $"{t.Item1} ({t.Item2})").ToList();
        if (FakeTimeLibrary.Length == 0)
        {
            missing.Add("libfaketime (faketime)");
        }

        if (missing.Count > 0)
        {
            return $"not installed: {string.Join(", ", missing)} (scripts/setup.sh installs them)";
        }

        var probe = $"{Prefix}probe-{Environment.ProcessId}";
        try
        {
            var (code, _, err) = Shell.Run("ip", ["netns", "add", probe], check: false);
            return code == 0 ? null : $"cannot make network namespaces here (needs root, CAP_SYS_ADMIN): {err.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"cannot run ip: {e.Message}";
        }
        finally
        {
            Shell.Run("ip", ["netns", "delete", probe], check: false);
        }
    }
}

/// <summary>A test that needs hosts made of network namespaces: skipped, with the reason, where they cannot be made.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class HostsFactAttribute : FactAttribute
{
    public HostsFactAttribute()
    {
        if (HostNetwork.Unavailable is { } why)
        {
            Skip = why;
        }
    }
}
