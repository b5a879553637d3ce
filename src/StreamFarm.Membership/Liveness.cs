namespace StreamFarm.Membership;

/// <summary>What the farm believes about a member's process. Wire values: append only.</summary>
public enum Liveness : byte
{
    Alive = 0,
    Suspect = 1,
    Dead = 2,
    Left = 3,
}
