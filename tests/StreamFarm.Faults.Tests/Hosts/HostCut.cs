using StreamFarm.Faults.Tests.Farm;

namespace StreamFarm.Faults.Tests.Hosts;

/// <summary>
/// A host cut off from the network (its own firewall drops everything to and from the bridge:
/// servers, clients and the resolver alike), and healed; both on the farm's timeline, and the split
/// on its record of partitions (the checker allows what a partition may do: protocol.md 4a).
/// </summary>
internal sealed class HostCut(HostNetwork net, FaultFarm farm) : IHealable, IDisposable
{
    private string? _cut;

    public void Cut(string id)
    {
        net.Isolate(id);
        _cut = id;
        farm.PartitionStarted();
        farm.Note($"host {HostNetwork.HostOf(id)} ({id}, {net.Address(id)}) cut off: its firewall drops everything to and from the bridge");
    }

    public void Heal()
    {
        if (_cut is { } id)
        {
            net.Reconnect(id);
            _cut = null;
            farm.PartitionHealed();
            farm.Note($"host {HostNetwork.HostOf(id)} ({id}) connected again");
        }
    }

    public void Dispose() => Heal();
}
