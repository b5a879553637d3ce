namespace StreamFarm.Protocol;

/// <summary>RTTP v1 verbs. Values are stable; append only.</summary>
public enum RttpVerb : byte
{
    None = 0,
    Hello = 1,
    Welcome = 2,
    Sub = 3,
    Unsub = 4,
    Pub = 5,
    PubImage = 6,
    Image = 7,
    Update = 8,
    Status = 9,
    Farm = 10,
    Server = 11,
    FarmDel = 12,
    Move = 13,
    Ping = 14,
    Pong = 15,
    Err = 16,
    Bye = 17,

    /// <summary><c>ACK &lt;id&gt;</c>: a publication sent with <c>@ack=&lt;id&gt;</c> was applied (on routes: <c>ACK &lt;n&gt;</c>, the first n publications of the connection).</summary>
    Ack = 18,

    /// <summary><c>NACK &lt;id&gt; &lt;CODE&gt; [text]</c>: a publication sent with <c>@ack=&lt;id&gt;</c> was not applied.</summary>
    Nack = 19,

    /// <summary><c>AUTH token=&lt;jwt&gt;</c>: a client renews its credentials in the session; the server answers <c>AUTH OK exp=&lt;unix seconds&gt;</c> (or a fatal <c>ERR AUTH_FAILED</c>).</summary>
    Auth = 20,
}
