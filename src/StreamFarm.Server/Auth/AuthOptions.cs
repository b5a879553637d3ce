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

    public List<string> AnonymousSubscribe { get; set; } = ["/>"];

    public List<string> AnonymousPublish { get; set; } = ["/>"];

    public bool AnonymousAllowed => AllowAnonymous ?? (Users.Count == 0 && Tokens.Count == 0);

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
    }

    private static void CheckPatterns(string who, List<string> patterns)
    {
        foreach (var p in patterns)
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

    public List<string> Subscribe { get; set; } = ["/>"];

    public List<string> Publish { get; set; } = [];
}

/// <summary>A bearer token (stored as its SHA-256) with permissions.</summary>
public sealed class TokenEntry
{
    public string Name { get; set; } = "token";

    /// <summary><c>sha256$hex</c>, from <c>streamfarm hash-password --token</c>.</summary>
    public string TokenHash { get; set; } = "";

    public List<string> Subscribe { get; set; } = ["/>"];

    public List<string> Publish { get; set; } = [];
}
