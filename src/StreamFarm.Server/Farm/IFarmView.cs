using StreamFarm.Protocol;

namespace StreamFarm.Server.Farm;

/// <summary>
/// The farm table as a server sees it: immutable, versioned snapshots. A single server publishes a
/// farm of one; the membership layer (issue 3) provides the real table through the same seam.
/// </summary>
public interface IFarmView
{
    FarmSnapshot Current { get; }

    /// <summary>Raised with (previous, current) after every change of the table.</summary>
    event Action<FarmSnapshot, FarmSnapshot>? Changed;
}
