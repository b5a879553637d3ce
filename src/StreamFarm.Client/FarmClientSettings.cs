using System.Net;
using Microsoft.Extensions.Logging;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;

namespace StreamFarm.Client;

/// <summary>
/// The settings of a <see cref="FarmClient"/> that configuration can hold (a section such as
/// <c>"StreamFarm": { "ServiceName": "stream.farm.test", "Dns": "127.0.0.1:5300" }</c>), bound by
/// <c>services.AddStreamFarmClient(configuration.GetSection("StreamFarm"))</c>. Code that needs more
/// (a resolver or selector of its own) builds <see cref="FarmClientOptions"/> itself.
/// </summary>
public sealed class FarmClientSettings
{
    /// <summary>The farm's common service name (required).</summary>
    public string ServiceName { get; set; } = "";

    /// <summary>RTTP port of the first server.</summary>
    public int Port { get; set; } = 7400;

    /// <summary>A DNS server to ask (<c>IP:PORT</c>); the system resolver when empty.</summary>
    public string? Dns { get; set; }

    /// <summary>Selection policy: <c>random</c>, <c>fewest</c>, <c>p2c</c> (the default), <c>weighted</c>.</summary>
    public string? Policy { get; set; }

    /// <summary>The client's group: sent in HELLO, and preferred when choosing (with spill-over).</summary>
    public string? Group { get; set; }

    /// <summary>The client name sent in HELLO.</summary>
    public string ClientName { get; set; } = "streamfarm-client";

    /// <summary>User name, if the farm requires credentials.</summary>
    public string? User { get; set; }

    /// <summary>Password of <see cref="User"/>.</summary>
    public string? Password { get; set; }

    /// <summary>Bearer token, instead of user and password.</summary>
    public string? Token { get; set; }

    /// <summary>See <see cref="FarmClientOptions.HeartbeatTimeout"/>.</summary>
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>See <see cref="FarmClientOptions.MessageBuffer"/>.</summary>
    public int MessageBuffer { get; set; } = 10_000;

    /// <summary>See <see cref="FarmClientOptions.Overflow"/>.</summary>
    public OverflowPolicy Overflow { get; set; } = OverflowPolicy.Conflate;

    /// <summary>See <see cref="FarmClientOptions.Standby"/>.</summary>
    public StandbyMode Standby { get; set; } = StandbyMode.None;

    /// <summary>See <see cref="FarmClientOptions.OneHop"/>.</summary>
    public bool OneHop { get; set; } = true;

    /// <summary>See <see cref="FarmClientOptions.Seed"/>.</summary>
    public int? Seed { get; set; }

    /// <summary>The options these settings make; throws <see cref="ArgumentException"/> naming a bad setting.</summary>
    public FarmClientOptions ToOptions(ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        if (string.IsNullOrWhiteSpace(ServiceName))
        {
            throw new ArgumentException("StreamFarm client: ServiceName is required");
        }

        IServiceResolver resolver = new SystemResolver();
        if (!string.IsNullOrEmpty(Dns))
        {
            resolver = IPEndPoint.TryParse(Dns, out var endpoint) && endpoint.Port != 0
                ? new DnsServerResolver(endpoint)
                : throw new ArgumentException($"StreamFarm client: Dns '{Dns}' is not IP:PORT");
        }

        return new FarmClientOptions
        {
            ServiceName = ServiceName,
            Port = Port,
            Resolver = resolver,
            Selector = Policy is { Length: > 0 } policy ? Selectors.Parse(policy, Group) : Selectors.Default(Group),
            HeartbeatTimeout = HeartbeatTimeout,
            MessageBuffer = MessageBuffer,
            Overflow = Overflow,
            Standby = Standby,
            OneHop = OneHop,
            Seed = Seed,
            LoggerFactory = loggerFactory,
            Time = time,
            Connection = new RttpConnectionOptions { ClientName = ClientName, Group = Group, User = User, Password = Password, Token = Token },
        };
    }
}
