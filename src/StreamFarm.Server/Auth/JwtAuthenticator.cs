using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace StreamFarm.Server.Auth;

/// <summary>What a signed token gave: the principal's permissions until <see cref="Expires"/>, or why it was refused.</summary>
internal sealed record JwtResult(Permissions? Permissions, DateTimeOffset Expires, string? Id, RttpErrorCodeReason? Refusal);

/// <summary>Why a token was refused: the error code to answer with and its text.</summary>
internal sealed record RttpErrorCodeReason(Protocol.RttpErrorCode Code, string Text);

/// <summary>
/// Verifies JWTs (<see cref="JwtOptions"/>) with Microsoft.IdentityModel's
/// <see cref="JsonWebTokenHandler"/>: signature by a key of the JWKS file (HS256, ES256 or RS256
/// only: <c>alg=none</c> and others are refused), <c>exp</c> required, <c>nbf</c>, <c>aud</c> and
/// <c>iss</c> checked, then the revocation list. Claims: <c>sub</c> is the user; <c>subscribe</c>
/// and <c>publish</c> (arrays of subject patterns) its permissions, as for configured users. The
/// JWKS and revocation files are re-read when they change (checked every 2 s): a bad file is
/// logged and the keys in use stay.
/// </summary>
internal sealed partial class JwtAuthenticator : IDisposable
{
    public const string SubscribeClaim = "subscribe";
    public const string PublishClaim = "publish";

    private static readonly TimeSpan ReloadInterval = TimeSpan.FromSeconds(2);
    private readonly JwtOptions _options;
    private readonly ILogger _log;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly ITimer _reload;
    private TokenValidationParameters _parameters;
    private HashSet<string> _revoked = new(StringComparer.Ordinal);
    private DateTime _jwksWritten;
    private DateTime _revocationWritten;

    public JwtAuthenticator(JwtOptions options, TimeProvider time, ILogger log)
    {
        _options = options;
        _log = log;
        _parameters = Parameters(LoadKeys(options.JwksFile!)); // at start, a bad file stops the node
        _jwksWritten = File.GetLastWriteTimeUtc(options.JwksFile!);
        ReloadRevocations();
        _reload = time.CreateTimer(_ => Reload(), null, ReloadInterval, ReloadInterval);
    }

    /// <summary>Keys in use (after the last good read of the JWKS file).</summary>
    public int KeyCount => Volatile.Read(ref _parameters).IssuerSigningKeys.Count();

    /// <summary>Whether <paramref name="token"/> has the shape of a JWT (three base64url parts): other tokens are configured tokens.</summary>
    public static bool LooksLikeJwt(string token) => token.Count(c => c == '.') == 2;

    public JwtResult Validate(string token)
    {
        var task = _handler.ValidateTokenAsync(token, Volatile.Read(ref _parameters));
        var result = task.IsCompleted ? task.Result : task.GetAwaiter().GetResult(); // local keys: no I/O, completes at once
        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt)
        {
            return Refused(Describe(result.Exception));
        }

        if (!string.IsNullOrEmpty(jwt.Id) && IsRevoked(jwt.Id))
        {
            return Refused(new(Protocol.RttpErrorCode.AuthFailed, "token revoked"));
        }

        if (string.IsNullOrEmpty(jwt.Subject))
        {
            return Refused(new(Protocol.RttpErrorCode.AuthFailed, "token has no sub (the user)"));
        }

        var subscribe = Patterns(jwt, SubscribeClaim);
        var publish = Patterns(jwt, PublishClaim);
        foreach (var p in (subscribe ?? []).Concat(publish ?? []))
        {
            if (!Protocol.SubjectSyntax.IsValidPattern(System.Text.Encoding.UTF8.GetBytes(p)))
            {
                return Refused(new(Protocol.RttpErrorCode.AuthFailed, $"token claim '{p}' is not a subject pattern"));
            }
        }

        var expires = new DateTimeOffset(DateTime.SpecifyKind(jwt.ValidTo, DateTimeKind.Utc));
        return new JwtResult(new Permissions(jwt.Subject, subscribe ?? AuthOptions.Everything, publish ?? []), expires, jwt.Id, null);
    }

    public bool IsRevoked(string id) => Volatile.Read(ref _revoked).Contains(id);

    private static JwtResult Refused(RttpErrorCodeReason why) => new(null, default, null, why);

    private static RttpErrorCodeReason Describe(Exception? e) => e switch
    {
        SecurityTokenExpiredException x => new(Protocol.RttpErrorCode.AuthExpired, $"token expired at {x.Expires:yyyy-MM-ddTHH:mm:ssZ}"),
        SecurityTokenNotYetValidException x => new(Protocol.RttpErrorCode.AuthFailed, $"token not valid before {x.NotBefore:yyyy-MM-ddTHH:mm:ssZ}"),
        SecurityTokenInvalidAudienceException => new(Protocol.RttpErrorCode.AuthFailed, "token made for another audience"),
        SecurityTokenInvalidIssuerException => new(Protocol.RttpErrorCode.AuthFailed, "token from another issuer"),
        SecurityTokenInvalidAlgorithmException => new(Protocol.RttpErrorCode.AuthFailed, "token algorithm not allowed (HS256, ES256, RS256)"),
        SecurityTokenNoExpirationException => new(Protocol.RttpErrorCode.AuthFailed, "token has no exp"),
        SecurityTokenSignatureKeyNotFoundException => new(Protocol.RttpErrorCode.AuthFailed, "token signed with an unknown key"),
        SecurityTokenInvalidSignatureException => new(Protocol.RttpErrorCode.AuthFailed, "token signature does not verify"),
        SecurityTokenMalformedException => new(Protocol.RttpErrorCode.AuthFailed, "token is not a well-formed JWT"),
        _ => new(Protocol.RttpErrorCode.AuthFailed, "token refused"),
    };

    private static List<string>? Patterns(JsonWebToken jwt, string claim)
    {
        if (jwt.TryGetPayloadValue<string[]>(claim, out var many) && many is not null)
        {
            return [.. many];
        }

        return jwt.TryGetPayloadValue<string>(claim, out var one) && one is not null ? [one] : null;
    }

    private TokenValidationParameters Parameters(IList<SecurityKey> keys) => new()
    {
        IssuerSigningKeys = keys,
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256, SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256],
        ValidAudience = _options.Audience,
        ValidateAudience = true,
        ValidIssuer = _options.Issuer,
        ValidateIssuer = !string.IsNullOrEmpty(_options.Issuer),
        ValidateLifetime = true,
        RequireExpirationTime = true,
        RequireSignedTokens = true,
        ValidateIssuerSigningKey = true,
        ClockSkew = _options.ClockSkew,
    };

    private static List<SecurityKey> LoadKeys(string path)
    {
        // A JsonWebKey is itself a SecurityKey, and the library signs and verifies with oct (HS256),
        // EC and RSA ones directly; keys marked for encryption only ("use": "enc") are left out.
        var set = new JsonWebKeySet(File.ReadAllText(path));
        var keys = set.Keys.Where(k => k.Use is null or "" or JsonWebKeyUseNames.Sig).Cast<SecurityKey>().ToList();
        if (keys.Count == 0)
        {
            throw new InvalidDataException($"{path}: no usable signing key (HS256 oct, ES256 EC P-256 or RS256 RSA keys with a kid)");
        }

        return keys;
    }

    private void Reload()
    {
        try
        {
            var written = File.GetLastWriteTimeUtc(_options.JwksFile!);
            if (written != _jwksWritten)
            {
                var keys = LoadKeys(_options.JwksFile!);
                Volatile.Write(ref _parameters, Parameters(keys));
                _jwksWritten = written;
                Log.KeysReloaded(_log, _options.JwksFile!, keys.Count);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            Log.KeysNotReloaded(_log, _options.JwksFile!, ex.Message);
        }

        ReloadRevocations();
    }

    private void ReloadRevocations()
    {
        if (string.IsNullOrEmpty(_options.RevocationFile))
        {
            return;
        }

        try
        {
            var written = File.Exists(_options.RevocationFile) ? File.GetLastWriteTimeUtc(_options.RevocationFile) : DateTime.MinValue;
            if (written == _revocationWritten)
            {
                return;
            }

            var ids = written == DateTime.MinValue ? [] : File.ReadAllLines(_options.RevocationFile).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));
            Volatile.Write(ref _revoked, new HashSet<string>(ids, StringComparer.Ordinal));
            _revocationWritten = written;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.KeysNotReloaded(_log, _options.RevocationFile!, ex.Message);
        }
    }

    public void Dispose() => _reload.Dispose();

    private static partial class Log
    {
        [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "token keys reloaded from {File}: {Count} key(s)")]
        public static partial void KeysReloaded(ILogger logger, string file, int count);

        [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "{File} not reloaded ({Why}): the keys and revocations in use stay")]
        public static partial void KeysNotReloaded(ILogger logger, string file, string why);
    }
}
