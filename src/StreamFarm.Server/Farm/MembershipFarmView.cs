using StreamFarm.Membership;
using StreamFarm.Protocol;

namespace StreamFarm.Server.Farm;

/// <summary>The farm table from the membership layer, as the server and its clients see it.</summary>
internal sealed class MembershipFarmView : IFarmView
{
    private readonly MembershipNode _node;

    public MembershipFarmView(MembershipNode node)
    {
        _node = node;
        node.Changed += (before, after) => Changed?.Invoke(before, after);
    }

    public FarmSnapshot Current => _node.Snapshot;

    public event Action<FarmSnapshot, FarmSnapshot>? Changed;
}
