using System.Net;
using StreamFarm.Membership;

namespace StreamFarm.Server;

/// <summary>
/// How a server joins its farm. Membership runs when a gossip key is configured; without one the
/// server is a farm of one. Gossip is always encrypted and authenticated: there is no plain mode.
/// </summary>
public sealed class FarmOptions
{
    /// <summary>
    /// Members to join through, <c>IP[:PORT]</c> or <c>HOST[:PORT]</c> (port 7401 by default); one
    /// reachable seed is enough. A host name is resolved at each join attempt and stands for every
    /// address it resolves to (a Kubernetes headless Service's name names every pod).
    /// </summary>
    public List<string> Seeds { get; set; } = [];

    /// <summary>UDP and TCP port of the membership protocol.</summary>
    public int GossipPort { get; set; } = 7401;

    /// <summary>The farm's name; members of another farm are ignored (it is authenticated with the key).</summary>
    public string Name { get; set; } = "streamfarm";

    /// <summary>Base64 AES keys (16, 24 or 32 bytes), the first one primary. Generate with <c>streamfarm keygen</c>.</summary>
    public List<string> GossipKeys { get; set; } = [];

    /// <summary><c>lan</c> (default) or <c>local</c> (faster timers, for one machine or a fast LAN).</summary>
    public string Preset { get; set; } = "lan";

    public bool Enabled => GossipKeys.Count > 0;

    /// <summary>
    /// Routes between the servers (on by default in a farm): a publication at any server reaches
    /// subscribers at every server, each subject in one order. Off, every server serves only what is
    /// published to it.
    /// </summary>
    public bool Routes { get; set; } = true;

    /// <summary>
    /// Standby copies (on by default with routes): each subject's successor (the server that would
    /// own it if its owner died) keeps a copy, as if a client of its own subscribed, so that it takes
    /// the subject over with the owner's last writes rather than from whatever other servers held.
    /// Costs one route subscription per subject with data (its updates cross one more route) and a
    /// second copy of each record in the farm. Off: only servers with subscribers hold copies.
    /// </summary>
    public bool StandbyCopies { get; set; } = true;

    /// <summary>TCP port on which this server takes routes from the other servers (on the <c>listen</c> address).</summary>
    public int RoutePort { get; set; } = 7402;

    /// <summary>
    /// How often, at most, a change of the servers' user counts alone is sent to this server's
    /// clients (<c>SERVER</c> lines of the farm table). Every other change (a server's state, liveness,
    /// addresses; a server added or removed) is sent at once, with the counts as they are then. Every
    /// user who connects or leaves changes a count: sent to every client each time, a farm's clients
    /// would get lines in proportion to clients × changes. Zero: every change at once.
    /// </summary>
    public TimeSpan ClientUsersInterval { get; set; } = TimeSpan.FromSeconds(5);

    public MembershipOptions MembershipOptions => (Preset.ToLowerInvariant() switch
    {
        "local" => MembershipOptions.Local,
        _ => MembershipOptions.Lan,
    }) with { FarmName = Name };

    /// <summary>Seeds as <c>ip:port</c>, or <c>host:port</c> for a seed given by name.</summary>
    public IReadOnlyList<string> SeedAddresses => SeedList(Seeds, GossipPort);

    /// <summary>
    /// Seeds (items that may hold comma-separated lists) as <c>ip:port</c> or <c>host:port</c>, a
    /// seed without a port taking <paramref name="defaultPort"/>. Not validated: see <see cref="IsSeedAddress"/>.
    /// </summary>
    public static IReadOnlyList<string> SeedList(IEnumerable<string> seeds, int defaultPort) =>
        [.. seeds.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(s =>
            IPEndPoint.TryParse(s, out var ep) ? (ep.Port != 0 ? ep : new IPEndPoint(ep.Address, defaultPort)).ToString() // [v6]:port, as gossip addresses are written
            : s.Contains(':', StringComparison.Ordinal) ? s : $"{s}:{defaultPort}")];

    /// <summary>Whether a seed of <see cref="SeedList"/> is <c>ip:port</c>, or <c>host:port</c> with a DNS name and a port from 1 to 65535 (as the gossip transport resolves it).</summary>
    public static bool IsSeedAddress(string seed)
    {
        if (IPEndPoint.TryParse(seed, out _))
        {
            return true;
        }

        var colon = seed.LastIndexOf(':');
        return colon > 0 && Uri.CheckHostName(seed[..colon]) == UriHostNameType.Dns
            && int.TryParse(seed.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            && port is > 0 and <= 65535;
    }

    public Keyring Keyring() => Membership.Keyring.FromBase64(GossipKeys);

    public void Validate()
    {
        if (Seeds.Count > 0 && !Enabled)
        {
            throw new ArgumentException("farm.seeds needs farm.gossipKeys (the farm's shared key; generate one with 'streamfarm keygen')");
        }

        foreach (var seed in SeedAddresses)
        {
            if (!IsSeedAddress(seed))
            {
                throw new ArgumentException($"seed '{seed}' is not IP[:PORT] or HOST[:PORT]");
            }
        }

        if (GossipPort is < 0 or > 65535)
        {
            throw new ArgumentException("farm.gossipPort must be between 0 and 65535");
        }

        if (RoutePort is < 0 or > 65535)
        {
            throw new ArgumentException("farm.routePort must be between 0 and 65535");
        }

        if (ClientUsersInterval < TimeSpan.Zero)
        {
            throw new ArgumentException("farm.clientUsersInterval must not be negative");
        }

        if (Preset.ToLowerInvariant() is not ("lan" or "local"))
        {
            throw new ArgumentException("farm.preset is 'lan' or 'local'");
        }

        if (Enabled)
        {
            _ = Keyring(); // throws ArgumentException naming the problem
            MembershipOptions.Validate();
        }
    }
}
