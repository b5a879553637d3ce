using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>An acknowledged publication did not succeed: refused (<see cref="PublishRejectedException"/>) or its outcome is unknown (<see cref="PublishOutcomeUnknownException"/>).</summary>
public class PublishException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PublishException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public PublishException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public PublishException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception for a subject.</summary>
    public PublishException(string subject, string message, Exception? inner = null)
        : base(message, inner) => Subject = subject;

    /// <summary>The subject of the publication.</summary>
    public string Subject { get; } = "";
}

/// <summary>
/// The server answered <c>NACK id CODE [@after=ms] text</c>: the publication was not applied.
/// <c>DENIED</c>: the user may not publish to the subject; <c>UNAVAILABLE</c>: the subject's owner
/// could not be reached in time (publish again after <see cref="RetryAfter"/>).
/// </summary>
public sealed class PublishRejectedException : PublishException
{
    /// <summary>Creates the exception.</summary>
    public PublishRejectedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public PublishRejectedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public PublishRejectedException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception from a NACK.</summary>
    public PublishRejectedException(string subject, RttpErrorCode code, string codeName, string text, TimeSpan? retryAfter)
        : base(subject, $"{subject}: {codeName} {text}".TrimEnd())
    {
        Code = code;
        CodeName = codeName;
        Text = text;
        RetryAfter = retryAfter;
    }

    /// <summary>The code (<see cref="RttpErrorCode.Denied"/>, <see cref="RttpErrorCode.Unavailable"/>...).</summary>
    public RttpErrorCode Code { get; }

    /// <summary>The code as the server sent it (<c>DENIED</c>, <c>UNAVAILABLE</c>...).</summary>
    public string CodeName { get; } = "";

    /// <summary>The server's text.</summary>
    public string Text { get; } = "";

    /// <summary>When to publish again (<c>@after</c>), if the server said.</summary>
    public TimeSpan? RetryAfter { get; }
}

/// <summary>
/// The connection ended after the publication was sent and before its <c>ACK</c> or <c>NACK</c>:
/// it may or may not have been applied.
/// </summary>
public sealed class PublishOutcomeUnknownException : PublishException
{
    /// <summary>Creates the exception.</summary>
    public PublishOutcomeUnknownException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public PublishOutcomeUnknownException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public PublishOutcomeUnknownException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception for a subject.</summary>
    public PublishOutcomeUnknownException(string subject, string message, Exception? inner = null)
        : base(subject, message, inner)
    {
    }
}
