namespace StreamFarm.Client;

/// <summary>Options of one <see cref="RttpConnection"/>.</summary>
public sealed record RttpConnectionOptions
{
    /// <summary>The client name sent in HELLO.</summary>
    public string ClientName { get; init; } = "streamfarm-client";

    /// <summary>
    /// The client's group, sent in HELLO (<c>group=</c>). A server that serves its own group only
    /// refuses a client of another group with <c>ERR WRONG_GROUP</c>; null sends none.
    /// </summary>
    public string? Group { get; init; }

    /// <summary>User name (with <see cref="Password"/>), if the server requires credentials.</summary>
    public string? User { get; init; }

    /// <summary>Password of <see cref="User"/>.</summary>
    public string? Password { get; init; }

    /// <summary>Bearer token, instead of user and password.</summary>
    public string? Token { get; init; }

    /// <summary>
    /// Where a signed token (JWT) comes from, asked at each connect and again before the token in
    /// use expires (<see cref="TokenRenewBefore"/>): the connection then renews it in the session
    /// (<c>AUTH token=</c>), so a server of a farm with <c>auth.jwt</c> does not close it with
    /// <c>AUTH_EXPIRED</c>. Takes the place of <see cref="Token"/>.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; init; }

    /// <summary>How long before its <c>exp</c> a token from <see cref="TokenProvider"/> is renewed (at most half its remaining life).</summary>
    public TimeSpan TokenRenewBefore { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Speak TLS (the server's RTTP-over-TLS port, 7443 by default; with a <see cref="FarmClient"/>,
    /// the farm table's <c>tls</c> addresses). TLS 1.2 or 1.3; the server's certificate must be valid
    /// for the host connected to (or <see cref="TlsServerName"/>).
    /// </summary>
    public bool UseTls { get; init; }

    /// <summary>With TLS: the certificate authorities trusted for the server's certificate (its chain must end at one of them); null trusts the system's roots.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? TrustedCertificates { get; init; }

    /// <summary>With TLS: the name the server's certificate must carry, when it is not the host connected to.</summary>
    public string? TlsServerName { get; init; }

    /// <summary>
    /// The keep-alive interval asked of the server in HELLO (<c>ping=</c>, docs/protocol.md
    /// "Keep-alive"): how often the server PINGs this connection when it has nothing else to send.
    /// Null: the server's own (1 s by default). The server grants at least its own interval and at
    /// most 5 minutes, scales its idle timeout with it, and says what it granted in WELCOME
    /// (<see cref="RttpConnection.PingInterval"/>). A longer interval costs both sides less at rest
    /// and makes a frozen server take longer to notice. <see cref="FarmClient"/> asks for its
    /// heartbeat period (<see cref="FarmClientOptions.HeartbeatTimeout"/> / <see cref="FarmClientOptions.MaxPingsOut"/>)
    /// when that is longer than a second.
    /// </summary>
    public TimeSpan? KeepAlive { get; init; }

    /// <summary>
    /// Ask for the writes' stamps on record lines (<c>HELLO ... stamps=1</c>; docs/protocol.md 4a,
    /// "Refusing to go back"). <see cref="FarmClient"/> then keeps each subject's record by them: a
    /// field never shows an older value than one it showed, across moves too, and a record holding
    /// writes the farm lost names those fields (<see cref="SubjectRecord.Behind"/>). Off by default
    /// (the lines are longer by the stamps); the browser client has it on by default.
    /// </summary>
    public bool Stamps { get; init; }

    /// <summary>Time allowed for TCP connect plus HELLO/WELCOME.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest line accepted from the server.</summary>
    public int MaxLineBytes { get; init; } = 1024 * 1024;

    /// <summary>Clock for silence detection (tests inject a fake one).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Messages buffered for the application; beyond that <see cref="Overflow"/> decides.</summary>
    public int MessageBuffer { get; init; } = 10_000;

    /// <summary>What a full buffer does with the next message: conflate per subject (default), drop the oldest, or wait.</summary>
    public OverflowPolicy Overflow { get; init; } = OverflowPolicy.Conflate;

    /// <summary>Called (on the thread pool, once per episode) when the buffer overflows.</summary>
    public Action<OverflowEventArgs>? Overflowed { get; init; }

    /// <summary>
    /// The window of acknowledged publications: at most this many are sent and unanswered; more
    /// wait (in call order) until an ACK or NACK frees a slot.
    /// </summary>
    public int MaxUnacknowledged { get; init; } = 1_000;
}
