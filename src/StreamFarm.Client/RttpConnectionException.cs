using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>The server refused the connection or the session failed; <see cref="Code"/> says why.</summary>
public sealed class RttpConnectionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RttpConnectionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public RttpConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public RttpConnectionException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>Creates the exception for an RTTP error code.</summary>
    public RttpConnectionException(RttpErrorCode code, string message)
        : base(message) => Code = code;

    /// <summary>The server's error code, if it sent one.</summary>
    public RttpErrorCode Code { get; }
}
