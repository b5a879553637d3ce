namespace StreamFarm.Server.Http;

/// <summary>
/// Who may use the HTTP side (<c>http.*</c>): which web pages may open a WebSocket to the server,
/// what the administrative endpoints require, and which read-only endpoints are restricted the same
/// way. See docs/operations.md, "The HTTP side".
/// </summary>
public sealed class HttpOptions
{
    /// <summary>
    /// Origins (<c>https://app.example.com</c>) whose pages may open a WebSocket to <c>/rttp</c>. A
    /// request without an <c>Origin</c> header (not a browser) and a page served by this server
    /// itself are always allowed. Empty: every origin (RTTP credentials still apply).
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// SHA-256 of the administrative token (<c>sha256$hex</c>, from <c>streamfarm hash-password
    /// --token</c>). With it, <c>POST /admin/...</c> (and the restricted paths) need
    /// <c>Authorization: Bearer &lt;token&gt;</c>, from any address; without it, they are taken from
    /// loopback only.
    /// </summary>
    public string? AdminTokenHash { get; set; }

    /// <summary>Read-only paths that need the administrative credential too (any of <c>/metrics</c>, <c>/farm</c>, <c>/status</c>). Default: none.</summary>
    public List<string> Restricted { get; set; } = [];

    public static readonly string[] RestrictablePaths = ["/metrics", "/farm", "/status"];

    public void Validate()
    {
        foreach (var origin in AllowedOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/" || origin.EndsWith('/'))
            {
                throw new ArgumentException($"http.allowedOrigins: '{origin}' is not an origin (scheme://host[:port], no path)");
            }
        }

        if (AdminTokenHash is not null && !Auth.PasswordHasher.IsWellFormedTokenHash(AdminTokenHash))
        {
            throw new ArgumentException("http.adminTokenHash must come from 'streamfarm hash-password --token'");
        }

        foreach (var path in Restricted)
        {
            if (!RestrictablePaths.Contains(path, StringComparer.Ordinal))
            {
                throw new ArgumentException($"http.restricted: '{path}' is not one of {string.Join(", ", RestrictablePaths)}");
            }
        }
    }
}
