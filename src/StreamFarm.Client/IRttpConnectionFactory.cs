namespace StreamFarm.Client;

/// <summary>
/// How a <see cref="FarmClient"/> opens its sessions (<see cref="FarmClientOptions.ConnectionFactory"/>):
/// the seam where tests count, delay or refuse connects, and where an application adds its own
/// socket settings.
/// </summary>
public interface IRttpConnectionFactory
{
    /// <summary>Connects to <paramref name="host"/>:<paramref name="port"/> and completes the HELLO/WELCOME; throws <see cref="RttpConnectionException"/> when unreachable or refused.</summary>
    Task<RttpConnection> ConnectAsync(string host, int port, RttpConnectionOptions options, CancellationToken cancel);
}

/// <summary>RTTP over TCP (<see cref="RttpConnection.ConnectAsync"/>).</summary>
public sealed class TcpRttpConnectionFactory : IRttpConnectionFactory
{
    /// <summary>The one instance.</summary>
    public static readonly TcpRttpConnectionFactory Instance = new();

    /// <inheritdoc />
    public Task<RttpConnection> ConnectAsync(string host, int port, RttpConnectionOptions options, CancellationToken cancel) =>
        RttpConnection.ConnectAsync(host, port, options, cancel);
}
