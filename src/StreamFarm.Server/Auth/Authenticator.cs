namespace StreamFarm.Server.Auth;

/// <summary>Checks HELLO credentials against <see cref="AuthOptions"/>.</summary>
public sealed class Authenticator(AuthOptions options)
{
    // Verified against for unknown users, so that a wrong user name costs as much as a wrong password
    // and response times do not tell which user names exist.
    private static readonly string DummyHash = PasswordHasher.HashPassword("unknown-user", PasswordHasher.DefaultIterations);

    /// <summary>The principal's permissions, or null when the credentials are missing or wrong.</summary>
    public Permissions? Authenticate(string? user, string? password, string? token)
    {
        if (token is not null)
        {
            foreach (var t in options.Tokens)
            {
                if (PasswordHasher.VerifyToken(token, t.TokenHash))
                {
                    return new Permissions(t.Name, t.Subscribe ?? AuthOptions.Everything, t.Publish ?? []);
                }
            }

            return null;
        }

        if (user is not null)
        {
            foreach (var u in options.Users)
            {
                if (u.Name == user)
                {
                    return password is not null && PasswordHasher.VerifyPassword(password, u.PasswordHash)
                        ? new Permissions(u.Name, u.Subscribe ?? AuthOptions.Everything, u.Publish ?? [])
                        : null;
                }
            }

            _ = PasswordHasher.VerifyPassword(password ?? "", DummyHash);
            return null;
        }

        return options.AnonymousAllowed
            ? new Permissions("anonymous", options.AnonymousSubscribe ?? AuthOptions.Everything, options.AnonymousPublish ?? AuthOptions.Everything,
                systemReadable: options.Users.Count == 0 && options.Tokens.Count == 0 && !options.Jwt.Enabled) // no authentication: the dashboard is open
            : null;
    }
}
