namespace StreamFarm.Dns.Sync;

/// <summary>A TSIG key (RFC 8945) shared with the authoritative server: name, HMAC algorithm, secret.</summary>
public sealed record TsigKey(string Name, string Algorithm, byte[] Secret)
{
    private static readonly string[] Algorithms = ["hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

    /// <summary>
    /// Parses <c>NAME:ALG:SECRET</c>, for example <c>sync-key:hmac-sha256:Zm9v...</c> (the secret in
    /// base64, as in knot.conf, named.conf or <c>tsig-keygen</c>'s output; the <c>hmac-</c> prefix may
    /// be left out). <c>ALG:NAME:SECRET</c>, the order of <c>keymgr -t</c> and <c>knsupdate -y</c>, is
    /// read too.
    /// </summary>
    public static TsigKey Parse(string text)
    {
        var parts = text.Split(':', 3);
        if (parts.Length != 3 || parts[0].Length == 0)
        {
            throw new ArgumentException("a TSIG key is NAME:ALGORITHM:SECRET, for example sync-key:hmac-sha256:<base64 secret>");
        }

        if (IsAlgorithm(parts[0]) && !IsAlgorithm(parts[1]))
        {
            (parts[0], parts[1]) = (parts[1], parts[0]); // ALG:NAME:SECRET, as keymgr -t and knsupdate -y write it
        }

        var algorithm = Normalize(parts[1]);
        if (!Algorithms.Contains(algorithm))
        {
            throw new ArgumentException($"TSIG algorithm '{parts[1]}' is not one of {string.Join(", ", Algorithms)}");
        }

        if (DnsNames.ToWire(parts[0]) is null)
        {
            throw new ArgumentException($"TSIG key name '{parts[0]}' is not a valid DNS name");
        }

        byte[] secret;
        try
        {
            secret = Convert.FromBase64String(parts[2].Trim());
        }
        catch (FormatException)
        {
            throw new ArgumentException("the TSIG secret must be base64");
        }

        return secret.Length == 0 ? throw new ArgumentException("the TSIG secret is empty") : new TsigKey(parts[0].TrimEnd('.').ToLowerInvariant(), algorithm, secret);
    }

    private static string Normalize(string algorithm)
    {
        algorithm = algorithm.ToLowerInvariant();
        return algorithm.StartsWith("hmac-", StringComparison.Ordinal) ? algorithm : $"hmac-{algorithm}";
    }

    private static bool IsAlgorithm(string text) => Algorithms.Contains(Normalize(text));

    /// <summary>Never prints the secret.</summary>
    public override string ToString() => $"{Name} ({Algorithm})";
}
