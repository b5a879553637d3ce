using System.Globalization;

namespace StreamFarm.Cli;

/// <summary>A <c>HOST:PORT</c> argument.</summary>
internal readonly record struct HostPort(string Host, int Port)
{
    public static bool TryParse(string? text, int defaultPort, out HostPort value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var colon = text.LastIndexOf(':');
        if (colon < 0)
        {
            value = new HostPort(text, defaultPort);
            return true;
        }

        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return false;
        }

        value = new HostPort(text[..colon].Trim('[', ']'), port);
        return value.Host.Length > 0;
    }

    public override string ToString() => $"{Host}:{Port}";
}
