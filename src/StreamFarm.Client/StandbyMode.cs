namespace StreamFarm.Client;

/// <summary>Whether a <see cref="FarmClient"/> keeps a second connection ready for failover (<see cref="FarmClientOptions.Standby"/>).</summary>
public enum StandbyMode
{
    /// <summary>No standby: after a loss the client connects anew (the default).</summary>
    None,

    /// <summary>A second session (HELLO done, table kept, nothing subscribed): failover skips the connects; the subjects are subscribed after the loss.</summary>
    Warm,

    /// <summary>
    /// A second session subscribed to the same subjects: the client keeps each subject's record
    /// from it (nothing is delivered to the application) and, after a loss, hands the application an
    /// image of that record at once, then the standby's live updates. Costs a second subscription per
    /// subject on another server.
    /// </summary>
    Hot,
}
