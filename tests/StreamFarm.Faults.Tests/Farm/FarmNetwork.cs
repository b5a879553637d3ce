using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;

namespace StreamFarm.Faults.Tests.Farm;

/// <summary>
/// Where a fault farm's servers run and how the test reaches them: the scenario's own loopback
/// subnet on this machine (<see cref="LoopbackNetwork"/>), or network namespaces standing in for
/// hosts (<see cref="Hosts.HostNetwork"/>).
/// </summary>
internal interface IFarmNetwork
{
    /// <summary>The farm's name (<c>--farm-name</c>): farms of different scenarios ignore each other.</summary>
    string FarmName { get; }

    /// <summary>The address server <paramref name="id"/> listens on (<c>s1</c>, <c>s2</c>, ...).</summary>
    string Address(string id);

    /// <summary>The node's options beyond the farm's own (id, address, seeds, key, preset, name).</summary>
    IEnumerable<string> NodeOptions(string id);

    /// <summary>How to run a <c>streamfarm</c> command (this build, or <paramref name="dll"/>: another build's) on server <paramref name="id"/>'s host.</summary>
    ProcessStartInfo OnHost(string id, IEnumerable<string> args, string? dll = null);

    /// <summary>A TCP socket of the test's clients (publishers and subscribers), not yet connected.</summary>
    Socket ClientSocket();

    /// <summary>An HTTP client for what the test itself asks the servers (<c>/farm</c>, <c>/metrics</c>).</summary>
    HttpClient Observer(TimeSpan timeout);
}

/// <summary>A scenario's loopback subnet on this machine: server s<i>n</i> on <c>subnet.(n+1)</c>.</summary>
internal sealed class LoopbackNetwork(string subnet) : IFarmNetwork
{
    public string FarmName => "faults-" + subnet.Replace('.', '-');

    public string Address(string id) => $"{subnet}.{int.Parse(id[1..], CultureInfo.InvariantCulture) + 1}";

    public IEnumerable<string> NodeOptions(string id) => [];

    public ProcessStartInfo OnHost(string id, IEnumerable<string> args, string? dll = null) => NodeProcess.Command(args, dll: dll);

    public Socket ClientSocket() => new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public HttpClient Observer(TimeSpan timeout) => new() { Timeout = timeout };
}
