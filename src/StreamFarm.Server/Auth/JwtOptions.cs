namespace StreamFarm.Server.Auth;

/// <summary>
/// Signed tokens (<c>auth.jwt</c>): a client sends a JWT as <c>token=</c> in <c>HELLO</c> (and
/// renews it with <c>AUTH token=</c>); any server with the same keys admits it, without a shared
/// user list. See docs/operations.md, "Signed tokens".
/// </summary>
public sealed class JwtOptions
{
    /// <summary>A JWKS file (<c>{"keys": [...]}</c>): HS256 (<c>kty: oct</c>), ES256 (<c>EC</c>, P-256) and RS256 (<c>RSA</c>) keys, told apart by <c>kid</c>. Re-read when it changes (key rotation).</summary>
    public string? JwksFile { get; set; }

    /// <summary>The <c>iss</c> a token must carry (unset: any).</summary>
    public string? Issuer { get; set; }

    /// <summary>The <c>aud</c> a token must carry. Required: a token made for another service is refused.</summary>
    public string? Audience { get; set; }

    /// <summary>A file of revoked token ids (<c>jti</c>), one per line; re-read when it changes. Sessions holding a revoked token are closed.</summary>
    public string? RevocationFile { get; set; }

    /// <summary>Tolerated difference between clocks for <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    public bool Enabled => !string.IsNullOrEmpty(JwksFile);

    public void Validate()
    {
        if (!Enabled)
        {
            return;
        }

        if (string.IsNullOrEmpty(Audience))
        {
            throw new ArgumentException("auth.jwt.audience is required with auth.jwt.jwksFile (a token made for another service must not be taken)");
        }

        if (ClockSkew < TimeSpan.Zero || ClockSkew > TimeSpan.FromMinutes(5))
        {
            throw new ArgumentException("auth.jwt.clockSkew must be between 0 and 5 minutes");
        }
    }
}
