namespace StreamFarm.Protocol;

/// <summary>RTTP error codes (the word after <c>ERR</c>). Values are stable; append only.</summary>
public enum RttpErrorCode : byte
{
    /// <summary>No error: what the parser and the validators return for a valid line.</summary>
    None = 0,

    /// <summary>A malformed line: wrong number of arguments, a raw control byte, a token out of place (not fatal).</summary>
    Syntax = 1,

    /// <summary>A verb this protocol version does not define (not fatal).</summary>
    UnknownVerb = 2,

    /// <summary>A subject that breaks the subject syntax or its length limit (not fatal).</summary>
    BadSubject = 3,

    /// <summary>A field or meta attribute name that breaks the name syntax or its length limit (not fatal).</summary>
    BadField = 4,

    /// <summary>An invalid escape sequence in a field value (not fatal).</summary>
    BadEscape = 5,

    /// <summary>A value that is not valid UTF-8 once unescaped (not fatal).</summary>
    BadUtf8 = 6,

    /// <summary>More fields in one line than the limit (<see cref="RttpLimits.MaxFields"/>); not fatal.</summary>
    TooManyFields = 7,

    /// <summary>More subscriptions on the connection than the server allows; <c>@subject</c> names the first refused (not fatal).</summary>
    TooManySubs = 8,

    /// <summary>The user may not publish to that subject (a refused subscription gets <c>STATUS ... DENIED</c> instead); not fatal.</summary>
    Denied = 9,

    /// <summary>A second <c>HELLO</c> in one session (not fatal).</summary>
    DuplicateHello = 10,

    /// <summary>A line longer than the session's <c>maxline</c> (fatal). The first fatal code: <see cref="RttpErrors.IsFatal"/>.</summary>
    LineTooLong = 11,

    /// <summary>A first line other than <c>HELLO</c> (fatal).</summary>
    HelloRequired = 12,

    /// <summary>No <c>HELLO</c> within the server's time (fatal).</summary>
    HelloTimeout = 13,

    /// <summary>Client and server share no protocol version (fatal).</summary>
    Version = 14,

    /// <summary>Missing or wrong credentials, or a token that is not (or no longer) valid (fatal).</summary>
    AuthFailed = 15,

    /// <summary>The server is at its connection limit; <c>@after</c> suggests when to retry (fatal: connect to another server).</summary>
    Full = 16,

    /// <summary>The connection's outbound buffer stayed over its limit too long (fatal).</summary>
    SlowConsumer = 17,

    /// <summary>Nothing received for the session's <c>idle</c> time (fatal).</summary>
    Idle = 18,

    /// <summary>A binary WebSocket message; RTTP over WebSocket is text only (fatal).</summary>
    Binary = 19,

    /// <summary>A fault in the server itself, a bug to report (fatal).</summary>
    Internal = 20,

    /// <summary>The server is draining (lame duck) and takes no new sessions: connect to another server of the farm (fatal).</summary>
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
