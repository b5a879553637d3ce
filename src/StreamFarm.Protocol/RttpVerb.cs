namespace StreamFarm.Protocol;

/// <summary>RTTP v1 verbs. Values are stable; append only.</summary>
public enum RttpVerb : byte
{
    /// <summary>Not a verb: what <see cref="RttpParser.ParseVerb"/> returns for an unknown token.</summary>
    None = 0,

    /// <summary><c>HELLO &lt;versions&gt; [client=..] [group=..] [token=..] [user=.. password=..]</c>: the client's first line, opening a session.</summary>
    Hello = 1,

    /// <summary><c>WELCOME &lt;version&gt; server=.. session=.. maxline=.. ping=.. idle=..</c>: the server accepts the session and states its limits.</summary>
    Welcome = 2,

    /// <summary><c>SUB &lt;subject&gt;...</c>: subscribe; the server answers with an <c>IMAGE</c> or a <c>STATUS</c> per subject.</summary>
    Sub = 3,

    /// <summary><c>UNSUB &lt;subject&gt;...</c>: end subscriptions.</summary>
    Unsub = 4,

    /// <summary><c>PUB &lt;subject&gt; [@ack=&lt;id&gt;] &lt;field&gt;=&lt;value&gt;...</c>: publish changed fields; they merge into the subject's record.</summary>
    Pub = 5,

    /// <summary><c>PUBIMAGE &lt;subject&gt; [&lt;field&gt;=&lt;value&gt;...]</c>: publish a whole record, replacing every field.</summary>
    PubImage = 6,

    /// <summary><c>IMAGE &lt;subject&gt; &lt;epoch&gt; &lt;seq&gt; &lt;field&gt;=&lt;value&gt;...</c>: every field of a subject's record, the first message of a subscription.</summary>
    Image = 7,

    /// <summary><c>UPDATE &lt;subject&gt; &lt;epoch&gt; &lt;seq&gt; [@merged=n] &lt;field&gt;=&lt;value&gt;...</c>: the fields that changed; <c>@merged</c> counts conflated updates.</summary>
    Update = 8,

    /// <summary><c>STATUS &lt;subject&gt; &lt;state&gt;</c>: a subscription's state changed (<see cref="SubjectStatus"/>).</summary>
    Status = 9,

    /// <summary><c>FARM &lt;version&gt; &lt;count&gt;</c> (server): the farm table follows as <c>SERVER</c> lines; <c>FARM</c> alone (client) asks for it again.</summary>
    Farm = 10,

    /// <summary><c>SERVER &lt;version&gt; id=.. group=.. state=.. liveness=.. users=.. capacity=.. tcp=.. ...</c>: one server of the farm table (<see cref="FarmCodec.ReadServer"/>).</summary>
    Server = 11,

    /// <summary><c>FARMDEL &lt;version&gt; &lt;id&gt;</c>: a server left the farm table.</summary>
    FarmDel = 12,

    /// <summary><c>MOVE &lt;reason&gt; [@server=&lt;id&gt;] [@after=&lt;ms&gt;]</c>: the server asks the client to move to another server.</summary>
    Move = 13,

    /// <summary><c>PING [&lt;token&gt;]</c>: either side checks the other is alive; answered by <c>PONG</c> with the same token.</summary>
    Ping = 14,

    /// <summary><c>PONG [&lt;token&gt;]</c>: the answer to <c>PING</c>.</summary>
    Pong = 15,

    /// <summary><c>ERR &lt;CODE&gt; [@meta...] [text]</c>: an error (<see cref="RttpErrorCode"/>); after a fatal one the server closes the connection.</summary>
    Err = 16,

    /// <summary><c>BYE [&lt;reason&gt;] [text]</c>: the sender closes the session.</summary>
    Bye = 17,

    /// <summary><c>ACK &lt;id&gt;</c>: a publication sent with <c>@ack=&lt;id&gt;</c> was applied (on routes: <c>ACK &lt;n&gt;</c>, the first n publications of the connection).</summary>
    Ack = 18,

    /// <summary><c>NACK &lt;id&gt; &lt;CODE&gt; [text]</c>: a publication sent with <c>@ack=&lt;id&gt;</c> was not applied.</summary>
    Nack = 19,

    /// <summary><c>AUTH token=&lt;jwt&gt;</c>: a client renews its credentials in the session; the server answers <c>AUTH OK exp=&lt;unix seconds&gt;</c> (or a fatal <c>ERR AUTH_FAILED</c>).</summary>
    Auth = 20,

    /// <summary><c>STANDBY &lt;subject&gt;...</c> (routes only): the sender owns these subjects and the receiver is next in line; it keeps a copy of each (subscribes as if a client of its own did), so that it takes them over with the owner's last writes.</summary>
    Standby = 21,
}
