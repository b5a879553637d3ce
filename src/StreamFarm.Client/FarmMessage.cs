namespace StreamFarm.Client;

/// <summary>How an IMAGE continues a subscription's stream across a move.</summary>
public enum Continuity
{
    /// <summary>An update, or the first image of a subscription.</summary>
    Continuous,

    /// <summary>After a move: the new server is at the same epoch and sequence: nothing was missed.</summary>
    Resumed,

    /// <summary>After a move: same epoch, later sequence: updates were missed; this image holds the current state.</summary>
    Gap,

    /// <summary>After a move: another epoch (the source restarted): a fresh history begins with this image.</summary>
    Fresh,
}

/// <summary>A message for the application: what the server sent, which server, and how it continues the stream.</summary>
/// <param name="Message">The message, values unescaped.</param>
/// <param name="Server">The id of the server it came from.</param>
/// <param name="Continuity">For images after a move: resumed, gap or fresh.</param>
public sealed record FarmMessage(RttpMessage Message, string Server, Continuity Continuity);

/// <summary>The steps of the two-step connect and of failover (claims 1, 12, 13, 14).</summary>
public enum StepKind
{
    /// <summary>The service name was resolved.</summary>
    Resolved,

    /// <summary>Connected to the first server DNS gave.</summary>
    FirstServer,

    /// <summary>The farm table arrived from the first server.</summary>
    TableReceived,

    /// <summary>The selection policy chose a server (with the reason).</summary>
    Chosen,

    /// <summary>Connected to the chosen server; the previous connection is closed.</summary>
    Moved,

    /// <summary>Subscriptions restored.</summary>
    Subscribed,

    /// <summary>The connection was lost or the server hung or asked to move.</summary>
    Lost,

    /// <summary>Trying the same server once more (claim 13).</summary>
    Retried,

    /// <summary>Asking for the service again from the start (claim 14).</summary>
    Rediscovered,

    /// <summary>A step failed (the text says what).</summary>
    Failed,

    /// <summary>A publish-only connection to a subject's owner opened (one hop).</summary>
    OwnerConnected,

    /// <summary>A publish-only connection to a subject's owner closed (idle, hung, moved or lost).</summary>
    OwnerClosed,

    /// <summary>Publications whose connection ended unanswered were sent again (the latest value of their subject).</summary>
    Republished,

    /// <summary>A publication was refused (<c>NACK</c>; the text has the code).</summary>
    Refused,

    /// <summary>The farm dropped a fire-and-forget publication (<c>ERR UNAVAILABLE</c>, not fatal; publish again later).</summary>
    Unavailable,

    /// <summary>The application fell behind and the message buffer overflowed (the text says what the overflow policy did).</summary>
    Overflowed,

    /// <summary>The DNS answer named only servers lost moments ago: passed over, the client chooses from the farm table it holds.</summary>
    PassedOver,

    /// <summary>A standby connection to a second server opened (<see cref="FarmClientOptions.Standby"/>).</summary>
    StandbyReady,
}

/// <summary>One step, for logs and <c>streamfarm sub -v</c>.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Text">Details, e.g. the chosen server and why.</param>
/// <param name="At">When.</param>
public sealed record ConnectionStep(StepKind Kind, string Text, DateTimeOffset At);
