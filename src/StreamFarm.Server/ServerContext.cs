using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StreamFarm.Membership;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server;

/// <summary>
/// What a server takes from its environment: time, chance, outbound connections, logging and,
/// optionally, the membership transport. <see cref="RttpServer(ServerOptions, ServerContext, Func{RttpServer, Farm.IFarmView}?)"/>
/// assembles a whole server from it (with <see cref="Membership"/> and a farm key: its membership
/// member, farm table, routes and status publisher), so a test can run a farm in one process on an
/// in-memory network with fake time.
/// </summary>
public sealed class ServerContext
{
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Jitter and random choices; must be safe for concurrent use (<see cref="System.Random.Shared"/> is).</summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>Opens routes to the other servers.</summary>
    public IConnectionFactory Connections { get; init; } = SocketConnectionFactory.Instance;

    public ILoggerFactory Logging { get; init; } = NullLoggerFactory.Instance;

    /// <summary>
    /// When set and the options carry a farm key, the server runs its own <see cref="MembershipNode"/>
    /// over this transport (and routes, when <c>farm.routes</c> is on); start them with <see cref="RttpServer.Start"/>.
    /// </summary>
    public IMembershipTransport? Membership { get; init; }
}
