using StreamFarm.Protocol;

namespace StreamFarm.Server.Auth;

/// <summary>
/// Who may connect and what they may do. With no users and no tokens configured the server admits
/// anonymous clients (with <see cref="AnonymousSubscribe"/> and <see cref="AnonymousPublish"/>).
/// </summary>
public sealed class AuthOptions
{
    public List<UserEntry> Users { get; set; } = [];

    public List<TokenEntry> Tokens { get; set; } = [];

    /// <summary>Admit clients without credentials. Default: only when no users or tokens are configured.</summary>
    public bool? AllowAnonymous { get; set; }

    // Lists default to null, not to a value: configuration binding adds to an existing list, so a
    // default of ["/>"] could never be narrowed by a config file. The defaults apply when unset.

    /// <summary>Patterns anonymous clients may subscribe to; unset means every subject (<c>/&gt;</c>).</summary>
    public List<string>? AnonymousSubscribe { get; set; }

    /// <summary>Patterns anonymous clients may publish to; unset means every subject (<c>/&gt;</c>).</summary>
    public List<string>? AnonymousPublish { get; set; }

    internal static readonly IReadOnlyList<string> Everything = ["/>"];

    public bool AnonymousAllowed => AllowAnonymous ?? (Users.Count == 0 && Tokens.Count == 0 && !Jwt.Enabled);

    /// <summary>Signed tokens (JWT): see <see cref="JwtOptions"/>.</summary>
    public JwtOptions Jwt { get; set; } = new();

    /// <summary>
    /// Failed logins one client address may make within <see cref="FailureWindow"/>; after that its
    /// credentials are refused unchecked until the window ends (0: no limit). A password check is
    /// a PBKDF2 derivation (tens of ms of CPU): without this, one client could keep a core busy.
    /// </summary>
    public int MaxFailuresPerAddress { get; set; } = 10;

    /// <summary>The window of <see cref="MaxFailuresPerAddress"/>, from an address's first failure in it.</summary>
    public TimeSpan FailureWindow { get; set; } = TimeSpan.FromMinutes(1);

    public void Validate()
    {
        foreach (var u in Users)
        {
            if (string.IsNullOrEmpty(u.Name) || !PasswordHasher.IsWellFormed(u.PasswordHash))
            {
                throw new ArgumentException($"auth user '{u.Name}': passwordHash must come from 'streamfarm hash-password'");
            }

            CheckPatterns(u.Name, u.Subscribe);
            CheckPatterns(u.Name, u.Publish);
        }

        foreach (var t in Tokens)
        {
            if (!PasswordHasher.IsWellFormedTokenHash(t.TokenHash))
            {
                throw new ArgumentException($"auth token '{t.Name}': tokenHash must come from 'streamfarm hash-password --token'");
            }

            CheckPatterns(t.Name, t.Subscribe);
            CheckPatterns(t.Name, t.Publish);
        }

        CheckPatterns("anonymous", AnonymousSubscribe);
        CheckPatterns("anonymous", AnonymousPublish);
        Jwt.Validate();
        if (MaxFailuresPerAddress < 0 || FailureWindow <= TimeSpan.Zero)
        {
            throw new ArgumentException("auth.maxFailuresPerAddress must be 0 (no limit) or more, and auth.failureWindow longer than 0");
        }
    }

    private static void CheckPatterns(string who, List<string>? patterns)
    {
        foreach (var p in patterns ?? [])
        {
            if (!SubjectSyntax.IsValidPattern(System.Text.Encoding.UTF8.GetBytes(p)))
            {
                throw new ArgumentException($"auth '{who}': '{p}' is not a subject pattern (like /FX/* or /FX/>)");
            }
        }
    }
}

/// <summary>A user with a hashed password and permissions by subject pattern.</summary>
public sealed class UserEntry
{
    public string Name { get; set; } = "";

    /// <summary><c>pbkdf2-sha256$iterations$salt$hash</c>, from <c>streamfarm hash-password</c>.</summary>
    public string PasswordHash { get; set; } = "";

    /// <summary>Patterns this user may subscribe to; unset means every subject.</summary>
    public List<string>? Subscribe { get; set; }

    /// <summary>Patterns this user may publish to; unset means none.</summary>
    public List<string>? Publish { get; set; }
}

/// <summary>A bearer token (stored as its SHA-256) with permissions.</summary>
public sealed class TokenEntry
{
    public string Name { get; set; } = "token";

    /// <summary><c>sha256$hex</c>, from <c>streamfarm hash-password --token</c>.</summary>
    public string TokenHash { get; set; } = "";

    /// <summary>Patterns this token may subscribe to; unset means every subject.</summary>
    public List<string>? Subscribe { get; set; }

    /// <summary>Patterns this token may publish to; unset means none.</summary>
    public List<string>? Publish { get; set; }
}
