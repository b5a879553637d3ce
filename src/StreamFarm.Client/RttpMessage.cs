using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>The kinds of message a client receives.</summary>
public enum RttpMessageKind
{
    /// <summary>Every current field of a subject.</summary>
    Image,

    /// <summary>Changed fields of a subject.</summary>
    Update,

    /// <summary>The state of a subscription (OK, STALE, NOT_FOUND, DENIED).</summary>
    Status,

    /// <summary>The farm table changed (full table or delta applied).</summary>
    Farm,

    /// <summary>The server asks the client to move.</summary>
    Move,

    /// <summary>An error line from the server.</summary>
    Error,

    /// <summary>The server closes the session.</summary>
    Bye,
}

/// <summary>One message from the server, with values unescaped.</summary>
public sealed record RttpMessage
{
    /// <summary>What this message is.</summary>
    public required RttpMessageKind Kind { get; init; }

    /// <summary>The subject (image, update, status; an error's <c>@subject</c>).</summary>
    public string Subject { get; init; } = "";

    /// <summary>The record's epoch (image, update).</summary>
    public ulong Epoch { get; init; }

    /// <summary>The record's sequence number (image, update).</summary>
    public ulong Seq { get; init; }

    /// <summary>How many updates this one stands for (more than 1 when the server conflated).</summary>
    public int Merged { get; init; } = 1;

    /// <summary>Fields in the order received, values unescaped.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Fields { get; init; } = [];

    /// <summary>With <see cref="RttpConnectionOptions.Stamps"/>: the stamp of each field's write, in field order (null when the line had none).</summary>
    internal ulong[]? FieldStamps { get; init; }

    /// <summary>With stamps: an image's <c>@clr</c>.</summary>
    internal ulong Clear { get; init; }

    /// <summary>The subscription state (status messages).</summary>
    public SubjectStatus Status { get; init; }

    /// <summary>The error code (error messages).</summary>
    public RttpErrorCode Error { get; init; }

    /// <summary>The error or goodbye reason code as sent, and the human text.</summary>
    public string Code { get; init; } = "";

    /// <summary>Free text of ERR and BYE.</summary>
    public string Text { get; init; } = "";

    /// <summary>When to try again (<c>@after</c> of an error such as <c>ERR UNAVAILABLE</c>), if the server said.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>The farm table after this message (farm messages).</summary>
    public FarmSnapshot? Farm { get; init; }
}
