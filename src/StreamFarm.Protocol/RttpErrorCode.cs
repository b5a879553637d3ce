namespace StreamFarm.Protocol;

/// <summary>RTTP error codes (the word after <c>ERR</c>). Values are stable; append only.</summary>
public enum RttpErrorCode : byte
{
    None = 0,
    Syntax = 1,
    UnknownVerb = 2,
    BadSubject = 3,
    BadField = 4,
    BadEscape = 5,
    BadUtf8 = 6,
    TooManyFields = 7,
    TooManySubs = 8,
    Denied = 9,
    DuplicateHello = 10,
    LineTooLong = 11,
    HelloRequired = 12,
    HelloTimeout = 13,
    Version = 14,
    AuthFailed = 15,
    Full = 16,
    SlowConsumer = 17,
    Idle = 18,
    Binary = 19,
    Internal = 20,
    Draining = 21,

    /// <summary>The server serves clients of its own group only, and the client named another (fatal).</summary>
    WrongGroup = 22,

    /// <summary>A publication the farm could not apply (its subject's owner unreachable too long, a buffer full); not fatal. <c>@after</c> suggests when to retry.</summary>
    Unavailable = 23,

    /// <summary>A publication that would make its subject's record longer than the server's record limit (its image would not fit in a line); not fatal, nothing applied.</summary>
    TooLarge = 24,

    /// <summary>The session's token expired and no <c>AUTH</c> renewed it (fatal).</summary>
    AuthExpired = 25,
}
