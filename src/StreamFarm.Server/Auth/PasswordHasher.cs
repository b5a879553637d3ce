using System.Security.Cryptography;
using System.Text;

namespace StreamFarm.Server.Auth;

/// <summary>
/// Password and token hashes kept in the config. Passwords: PBKDF2-SHA256 with a random salt
/// (System.Security.Cryptography); tokens are long random secrets, so one SHA-256 is enough.
/// Comparison is constant-time.
/// </summary>
public static class PasswordHasher
{
    public const int DefaultIterations = 100_000;
    private const string PasswordPrefix = "pbkdf2-sha256";
    private const string TokenPrefix = "sha256";

    public static string HashPassword(string password, int iterations = DefaultIterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        return $"{PasswordPrefix}${iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    public static bool VerifyPassword(string password, string stored)
    {
        if (!TryParse(stored, out var iterations, out var salt, out var expected))
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    public static string HashToken(string token) =>
        $"{TokenPrefix}${Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))}";

    public static bool VerifyToken(string token, string stored)
    {
        var actual = Encoding.ASCII.GetBytes(HashToken(token));
        return CryptographicOperations.FixedTimeEquals(actual, Encoding.ASCII.GetBytes(stored.ToLowerInvariant()));
    }

    public static bool IsWellFormed(string stored) => TryParse(stored, out _, out _, out _);

    public static bool IsWellFormedTokenHash(string stored) =>
        stored.StartsWith(TokenPrefix + "$", StringComparison.Ordinal) && stored.Length == TokenPrefix.Length + 1 + 64;

    private static bool TryParse(string stored, out int iterations, out byte[] salt, out byte[] hash)
    {
        iterations = 0;
        salt = hash = [];
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != PasswordPrefix || !int.TryParse(parts[1], out iterations) || iterations < 1000)
        {
            return false;
        }

        try
        {
            salt = Convert.FromBase64String(parts[2]);
            hash = Convert.FromBase64String(parts[3]);
        }
        catch (FormatException)
        {
            return false;
        }

        return salt.Length >= 8 && hash.Length >= 16;
    }
}
