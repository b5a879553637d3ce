using System.Net;

namespace StreamFarm.Dns;

/// <summary>How a farm's DNS responder answers (docs/operations.md, "DNS").</summary>
public sealed class DnsOptions
{
    /// <summary>The farm's zone, for example <c>farm.test</c>.</summary>
    public string Zone { get; set; } = "farm.test";

    /// <summary>The service label: <c>stream</c> makes <c>stream.farm.test</c> the common service name.</summary>
    public string Service { get; set; } = "stream";

    /// <summary>TTL of answers; low so that a dead server leaves resolvers' caches quickly.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>TTL of negative answers (NXDOMAIN, NODATA; the SOA minimum).</summary>
    public TimeSpan NegativeTtl { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Addresses per answer: 1 is a pure choice, more is a list in balanced order.</summary>
    public int AnswerCount { get; set; } = 1;

    public BalanceMethod Method { get; set; } = BalanceMethod.RoundRobin;

    /// <summary>For <see cref="BalanceMethod.Group"/>: client networks (CIDR) per group, e.g. <c>eu: [10.1.0.0/16]</c>.</summary>
    public Dictionary<string, List<string>> GroupNetworks { get; set; } = [];

    /// <summary>Responses per second per client network (/24 or /56) over UDP before rate limiting; 0 turns it off.</summary>
    public int RateLimit { get; set; } = 500;

    /// <summary>Of the responses over the limit, every n-th is sent truncated (so a real client retries over TCP); the rest are dropped.</summary>
    public int Slip { get; set; } = 2;

    /// <summary>
    /// UDP receive loops (0: one for every two cores, at least one). Each reads and answers
    /// datagrams in batches; the kernel's own receive and send work needs the other cores. On this
    /// project's 2-core benchmark machine one loop used 0.72-0.88x Knot's CPU per query and two
    /// loops 1.02-1.26x, at the same or lower throughput (docs/benchmarks.md, "DNS").
    /// </summary>
    public int UdpThreads { get; set; }

    /// <summary>The UDP receive loops this server runs (<see cref="UdpThreads"/>, or its default).</summary>
    public int UdpLoops => UdpThreads > 0 ? UdpThreads : Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>
    /// DNS over TCP: a connection on which no whole query has arrived for this long is closed (RFC
    /// 7766 section 6.2.3 lets a server close idle connections). The answer must be taken within it
    /// too, so a client that sends slowly or does not read is cut as well.
    /// </summary>
    public TimeSpan TcpIdleTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Open DNS TCP connections per client (an IPv4 address, or an IPv6 /64); more are closed at once.</summary>
    public int TcpConnectionsPerClient { get; set; } = 16;

    /// <summary>Open DNS TCP connections in all; when full, a new connection takes the place of an idle one of the client that holds the most.</summary>
    public int TcpMaxConnections { get; set; } = 256;

    /// <summary>The address the responder publishes as the zone's name server (<c>ns1.&lt;zone&gt;</c>).</summary>
    public string? NameServerAddress { get; set; }

    public void Validate()
    {
        if (DnsNames.ToWire(Zone) is null || DnsNames.ToWire($"{Service}.{Zone}") is null)
        {
            throw new ArgumentException($"'{Service}.{Zone}' is not a valid DNS name");
        }

        if (AnswerCount is < 1 or > 32)
        {
            throw new ArgumentException("dns.answerCount must be between 1 and 32");
        }

        if (Ttl < TimeSpan.Zero || NegativeTtl < TimeSpan.Zero || RateLimit < 0 || Slip < 0 || UdpThreads < 0)
        {
            throw new ArgumentException("dns TTLs, rateLimit, slip and udpThreads must not be negative");
        }

        if (TcpIdleTimeout <= TimeSpan.Zero || TcpConnectionsPerClient < 1 || TcpMaxConnections < TcpConnectionsPerClient)
        {
            throw new ArgumentException("dns.tcpIdleTimeout must be positive, dns.tcpConnectionsPerClient at least 1, and dns.tcpMaxConnections at least dns.tcpConnectionsPerClient");
        }

        foreach (var (group, networks) in GroupNetworks)
        {
            foreach (var n in networks)
            {
                if (!IPNetwork.TryParse(n, out _))
                {
                    throw new ArgumentException($"dns.groupNetworks.{group}: '{n}' is not a network like 10.1.0.0/16");
                }
            }
        }

        if (NameServerAddress is not null && !IPAddress.TryParse(NameServerAddress, out _))
        {
            throw new ArgumentException($"dns.nameServerAddress '{NameServerAddress}' is not an IP address");
        }
    }
}

/// <summary>Load-balancing methods of the service name.</summary>
public enum BalanceMethod
{
    /// <summary>Rotate through the healthy servers (claim 8's DNS round robin).</summary>
    RoundRobin,

    /// <summary>Pick at random.</summary>
    Random,

    /// <summary>The servers with the fewest users relative to capacity.</summary>
    FewestUsers,

    /// <summary>At random, weighted by free capacity.</summary>
    Weighted,

    /// <summary>Servers of the client's group (by source network), round robin; all healthy servers when the group has none.</summary>
    Group,
}
