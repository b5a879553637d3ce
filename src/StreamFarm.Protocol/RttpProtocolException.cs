namespace StreamFarm.Protocol;

/// <summary>A transport-level protocol violation (for example a binary WebSocket message) to report with an RTTP error code.</summary>
public sealed class RttpProtocolException : Exception
{
    public RttpProtocolException()
    {
    }

    public RttpProtocolException(string message)
        : base(message)
    {
    }

    public RttpProtocolException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public RttpProtocolException(RttpErrorCode code, string message)
        : base(message) => Code = code;

    public RttpErrorCode Code { get; } = RttpErrorCode.Syntax;
}
