namespace StreamFarm.Client;

/// <summary>How a publication is sent.</summary>
public sealed record PublishOptions
{
    /// <summary>Fire and forget, changing fields (<c>PUB</c>): what <c>PublishAsync(subject, fields)</c> does.</summary>
    public static PublishOptions Default { get; } = new();

    /// <summary>Changing fields, acknowledged (<c>PUB ... @ack=id</c>): returns once the subject's owner applied it.</summary>
    public static PublishOptions Acknowledged { get; } = new() { Acknowledge = true };

    /// <summary>Replace the whole record (<c>PUBIMAGE</c>) instead of changing fields.</summary>
    public bool Replace { get; init; }

    /// <summary>
    /// Ask for an acknowledgement (<c>@ack=id</c>) and wait for it: the publish completes on
    /// <c>ACK</c> (the subject's owner applied it, or a newer write of every field it carries had
    /// already superseded it) and throws <see cref="PublishRejectedException"/> on <c>NACK</c>.
    /// </summary>
    public bool Acknowledge { get; init; }
}

/// <summary>
/// A publication sent with <c>@ack=id</c> by <see cref="RttpConnection.BeginPublish"/>: the line is
/// queued in call order; <see cref="Sent"/> completes once it is written (after waiting for a slot
/// of the connection's window of unacknowledged publications), <see cref="Acknowledged"/> on the
/// server's answer.
/// </summary>
public sealed class PublishReceipt
{
    internal PublishReceipt(string subject, Task sent, Task acknowledged)
    {
        Subject = subject;
        Sent = sent;
        Acknowledged = acknowledged;
    }

    /// <summary>The subject published to.</summary>
    public string Subject { get; }

    /// <summary>
    /// Completes when the line is written to the socket; fails with
    /// <see cref="RttpConnectionException"/> if the connection ended before it could be.
    /// </summary>
    public Task Sent { get; }

    /// <summary>
    /// Completes on <c>ACK</c>; throws <see cref="PublishRejectedException"/> on <c>NACK</c>,
    /// <see cref="PublishOutcomeUnknownException"/> when the connection ended after the line was
    /// queued and before the answer (it may or may not have been applied), and
    /// <see cref="RttpConnectionException"/> when it was never sent.
    /// </summary>
    public Task Acknowledged { get; }
}
