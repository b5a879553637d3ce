using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using StreamFarm.Server.Auth;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// Signed tokens (auth.jwt) against a real node: what is admitted with which permissions, what is
/// refused with which code, expiry and renewal in the session, revocation and key rotation.
/// Tokens are made here with Microsoft.IdentityModel, as an identity provider would.
/// </summary>
public sealed class JwtTests : IDisposable
{
    private const string Audience = "streamfarm-test";
    private const string Issuer = "https://idp.test";
    private readonly string _dir = Directory.CreateTempSubdirectory("sf-jwt-").FullName;
    private readonly byte[] _hmac = RandomNumberGenerator.GetBytes(32);
    private readonly ECDsa _ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    private string JwksPath => Path.Combine(_dir, "jwks.json");

    private string RevokedPath => Path.Combine(_dir, "revoked.txt");

    public void Dispose()
    {
        _ec.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private void WriteJwks(params string[] keys) => File.WriteAllText(JwksPath, "{\"keys\":[" + string.Join(",", keys) + "]}");

    private string HmacJwk(string kid = "h1", byte[]? secret = null) =>
        $"{{\"kty\":\"oct\",\"kid\":\"{kid}\",\"alg\":\"HS256\",\"k\":\"{Base64UrlEncoder.Encode(secret ?? _hmac)}\"}}";

    private string EcJwk(string kid = "e1")
    {
        var q = _ec.ExportParameters(false).Q;
        return $"{{\"kty\":\"EC\",\"kid\":\"{kid}\",\"alg\":\"ES256\",\"use\":\"sig\",\"crv\":\"P-256\",\"x\":\"{Base64UrlEncoder.Encode(q.X)}\",\"y\":\"{Base64UrlEncoder.Encode(q.Y)}\"}}";
    }

    private string Token(string sub = "alice", TimeSpan? lifetime = null, DateTime? notBefore = null, string audience = Audience, SigningCredentials? signing = null, string? id = null, string[]? subscribe = null, string[]? publish = null)
    {
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object> { ["sub"] = sub };
        if (subscribe is not null)
        {
            claims[JwtAuthenticator.SubscribeClaim] = subscribe;
        }

        if (publish is not null)
        {
            claims[JwtAuthenticator.PublishClaim] = publish;
        }

        if (id is not null)
        {
            claims["jti"] = id;
        }

        var start = notBefore ?? now.AddMinutes(-1);
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            Claims = claims,
            NotBefore = start,
            IssuedAt = start,
            Expires = now + (lifetime ?? TimeSpan.FromHours(1)),
            SigningCredentials = signing ?? new SigningCredentials(new SymmetricSecurityKey(_hmac) { KeyId = "h1" }, SecurityAlgorithms.HmacSha256),
        });
    }

    private Task<StreamFarmNode> StartAsync(TimeSpan? skew = null) => TestNode.StartAsync(o =>
    {
        o.Auth.Jwt = new JwtOptions { JwksFile = JwksPath, Audience = Audience, Issuer = Issuer, RevocationFile = RevokedPath, ClockSkew = skew ?? TimeSpan.FromSeconds(30) };
        o.Auth.MaxFailuresPerAddress = 0; // these tests fail logins on purpose
    });

    private static async Task<string?> HelloAsync(LineClient c, string token)
    {
        await c.SendAsync("HELLO 1 client=jwt token=" + token);
        return await c.NextAsync();
    }

    [Fact]
    public async Task ValidTokens_HmacOrEcKeys_AdmitTheUserWithTheTokensPermissions()
    {
        WriteJwks(HmacJwk(), EcJwk());
        await using var node = await StartAsync();
        await using var c = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.StartsWith("WELCOME ", await HelloAsync(c, Token(subscribe: ["/FX/>"], publish: ["/FX/GBPUSD"])), StringComparison.Ordinal);
        await c.SendAsync("SUB /FX/EURUSD /EQ/VOD");
        Assert.Equal("STATUS /FX/EURUSD NOT_FOUND", await c.ExpectAsync("STATUS /FX/EURUSD"));
        Assert.Equal("STATUS /EQ/VOD DENIED", await c.ExpectAsync("STATUS /EQ/VOD"));
        await c.SendAsync("PUB /FX/EURUSD bid=1");
        Assert.StartsWith("ERR DENIED alice may not publish", await c.NextAsync(), StringComparison.Ordinal);

        // The second key of the set (ES256, another kid): any of them signs.
        var ec = new SigningCredentials(new ECDsaSecurityKey(_ec) { KeyId = "e1" }, SecurityAlgorithms.EcdsaSha256);
        await using var d = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.StartsWith("WELCOME ", await HelloAsync(d, Token(sub: "bob", signing: ec)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("expired", "ERR AUTH_EXPIRED token expired at ")]
    [InlineData("not-yet-valid", "ERR AUTH_FAILED token not valid before ")]
    [InlineData("wrong-key", "ERR AUTH_FAILED token signature does not verify")]
    [InlineData("unknown-kid", "ERR AUTH_FAILED token sign")]
    [InlineData("alg-none", "ERR AUTH_FAILED ")]
    [InlineData("wrong-audience", "ERR AUTH_FAILED token made for another audience")]
    [InlineData("not-a-jwt", "ERR AUTH_FAILED ")]
    public async Task BadTokens_AreRefusedWithTheirReason_AndTheSessionCloses(string kind, string expected)
    {
        WriteJwks(HmacJwk());
        await using var node = await StartAsync(skew: TimeSpan.Zero);
        var token = kind switch
        {
            "expired" => Token(lifetime: TimeSpan.FromMinutes(-1), notBefore: DateTime.UtcNow.AddMinutes(-5)),
            "not-yet-valid" => Token(notBefore: DateTime.UtcNow.AddMinutes(10), lifetime: TimeSpan.FromMinutes(20)),
            "wrong-key" => Token(signing: new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)) { KeyId = "h1" }, SecurityAlgorithms.HmacSha256)),
            "unknown-kid" => Token(signing: new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)) { KeyId = "other" }, SecurityAlgorithms.HmacSha256)),
            "alg-none" => Base64UrlEncoder.Encode("{\"alg\":\"none\",\"typ\":\"JWT\"}") + "." + Base64UrlEncoder.Encode($"{{\"sub\":\"mallory\",\"aud\":\"{Audience}\",\"iss\":\"{Issuer}\",\"exp\":{DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds()}}}") + ".",
            "wrong-audience" => Token(audience: "another-service"),
            _ => "a.b.c",
        };
        await using var c = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.StartsWith(expected, await HelloAsync(c, token), StringComparison.Ordinal);
        Assert.Null(await c.NextAsync()); // fatal: closed
    }

    [Fact]
    public async Task ExpiringToken_ClosesTheSessionWithAuthExpired_UnlessRenewedInTheSession()
    {
        WriteJwks(HmacJwk());
        await using var node = await StartAsync(skew: TimeSpan.Zero);
        await using var lapsing = await LineClient.ConnectAsync(node.TcpEndPoint);
        // Both first tokens last 5 s: room for the steps before the renewal on a loaded machine; the
        // renewing session then outlives its own first token, not just the other one.
        Assert.StartsWith("WELCOME ", await HelloAsync(lapsing, Token(lifetime: TimeSpan.FromSeconds(5))), StringComparison.Ordinal);
        await using var renewing = await LineClient.ConnectAsync(node.TcpEndPoint);
        var renewingStarted = DateTime.UtcNow;
        Assert.StartsWith("WELCOME ", await HelloAsync(renewing, Token(lifetime: TimeSpan.FromSeconds(5), subscribe: ["/A/>", "/B/>"])), StringComparison.Ordinal);
        await renewing.SendAsync("SUB /A/x /B/y");
        Assert.Equal("STATUS /A/x NOT_FOUND", await renewing.NextAsync());
        Assert.Equal("STATUS /B/y NOT_FOUND", await renewing.NextAsync());

        // The renewal narrows the permissions: the subscription it no longer allows ends.
        await renewing.SendAsync("AUTH token=" + Token(lifetime: TimeSpan.FromHours(1), subscribe: ["/A/>"]));
        Assert.Equal("STATUS /B/y DENIED", await renewing.NextAsync());
        Assert.Matches(@"^AUTH OK exp=\d+$", await renewing.NextAsync());

        var closing = await lapsing.NextAsync(); // the server pings meanwhile; noise is skipped
        Assert.StartsWith("ERR AUTH_EXPIRED token expired at ", closing, StringComparison.Ordinal);
        while (DateTime.UtcNow - renewingStarted < TimeSpan.FromSeconds(6))
        {
            await Task.Delay(250); // past the renewing session's first token, whatever the machine's speed
        }

        await renewing.SendAsync("PING still-here");
        Assert.Equal("PONG still-here", await renewing.NextAsync());

        // Renewing as someone else is refused.
        await renewing.SendAsync("AUTH token=" + Token(sub: "mallory"));
        Assert.StartsWith("ERR AUTH_FAILED a renewed token must name the same user (alice)", await renewing.NextAsync(), StringComparison.Ordinal);
    }

    /// <summary>The .NET client asks its token provider again before the token expires and renews in the session: it outlives its first token.</summary>
    [Fact]
    public async Task DotNetClient_WithATokenProvider_RenewsBeforeExpiry_AndOutlivesItsFirstToken()
    {
        WriteJwks(HmacJwk());
        await using var node = await StartAsync(skew: TimeSpan.Zero);
        var issued = 0;
        var options = new StreamFarm.Client.RttpConnectionOptions
        {
            TokenProvider = _ =>
            {
                Interlocked.Increment(ref issued);
                return ValueTask.FromResult(Token(lifetime: TimeSpan.FromSeconds(6), subscribe: ["/>"]));
            },
            TokenRenewBefore = TimeSpan.FromSeconds(3), // renewed 3 s before its end: room for a slow round trip
        };
        await using var client = await StreamFarm.Client.RttpConnection.ConnectAsync("127.0.0.1", node.TcpEndPoint.Port, options);
        var first = DateTime.UtcNow;
        await Eventually.TrueAsync(() => client.TokenRenewals >= 3, "three renewals, the last well past the first token's expiry");
        Assert.True(DateTime.UtcNow - first > TimeSpan.FromSeconds(6));
        await client.PingAsync(); // still connected: no AUTH_EXPIRED
        Assert.True(issued >= 4);
    }

    [Fact]
    public async Task RevokedToken_ClosesItsSessions_AndIsRefusedAfterwards()
    {
        WriteJwks(HmacJwk());
        File.WriteAllText(RevokedPath, "# revoked token ids\n");
        await using var node = await StartAsync();
        var token = Token(id: "t-42");
        await using var c = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.StartsWith("WELCOME ", await HelloAsync(c, token), StringComparison.Ordinal);
        File.AppendAllText(RevokedPath, "t-42\n");
        File.SetLastWriteTimeUtc(RevokedPath, DateTime.UtcNow.AddSeconds(1)); // a new mtime even within the file system's granularity
        Assert.Equal("ERR AUTH_FAILED token revoked", await c.NextAsync());
        await using var again = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.Equal("ERR AUTH_FAILED token revoked", await HelloAsync(again, token));
    }

    [Fact]
    public async Task KeyAddedToTheJwksFile_SignsTokensAfterTheReload()
    {
        WriteJwks(HmacJwk());
        await using var node = await StartAsync();
        var next = RandomNumberGenerator.GetBytes(32);
        var token = Token(signing: new SigningCredentials(new SymmetricSecurityKey(next) { KeyId = "h2" }, SecurityAlgorithms.HmacSha256));
        await using (var before = await LineClient.ConnectAsync(node.TcpEndPoint))
        {
            Assert.StartsWith("ERR AUTH_FAILED token signed with an unknown key", await HelloAsync(before, token), StringComparison.Ordinal);
        }

        WriteJwks(HmacJwk(), HmacJwk("h2", next));
        File.SetLastWriteTimeUtc(JwksPath, DateTime.UtcNow.AddSeconds(1));
        await Eventually.TrueAsync(() => node.Server.Jwt!.KeyCount == 2, "the JWKS file is read again");
        await using var after = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.StartsWith("WELCOME ", await HelloAsync(after, token), StringComparison.Ordinal);
    }
}
