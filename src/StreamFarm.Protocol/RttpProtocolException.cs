namespace StreamFarm.Protocol;

/// <summary>A transport-level protocol violation (for example a binary WebSocket message) to report with an RTTP error code.</summary>
public sealed class RttpProtocolException : Exception
{
    /// <summary>A violation reported as <see cref="RttpErrorCode.Syntax"/>, with the default message.</summary>
    public RttpProtocolException()
    {
    }

    /// <summary>A violation reported as <see cref="RttpErrorCode.Syntax"/>.</summary>
    /// <param name="message">What was wrong, for the log and the error's text.</param>
    public RttpProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>A violation reported as <see cref="RttpErrorCode.Syntax"/>, caused by <paramref name="inner"/>.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="inner">The exception that revealed it.</param>
    public RttpProtocolException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>A violation reported with <paramref name="code"/>.</summary>
    /// <param name="code">The error code to send (<c>ERR CODE text</c>); fatal codes close the connection.</param>
    /// <param name="message">What was wrong.</param>
    public RttpProtocolException(RttpErrorCode code, string message)
        : base(message) => Code = code;

    /// <summary>The RTTP error code to report; <see cref="RttpErrorCode.Syntax"/> unless given.</summary>
    public RttpErrorCode Code { get; } = RttpErrorCode.Syntax;
}
