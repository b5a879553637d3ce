using System.Net;
using DnsClient;

namespace StreamFarm.Client.Discovery;

/// <summary>Resolves the common service name to the addresses of first servers.</summary>
public interface IServiceResolver
{
    /// <summary>Addresses for <paramref name="name"/>, in the order the DNS system gave them.</summary>
    Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel);
}

/// <summary>The operating system's resolver (default).</summary>
public sealed class SystemResolver : IServiceResolver
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel) =>
        await System.Net.Dns.GetHostAddressesAsync(name, cancel);
}

/// <summary>
/// Asks a given DNS server directly (DnsClient.NET), without caching, so every round of discovery
/// sees the farm's current answer. The server may be one of the farm's responders or a recursive
/// resolver that the farm's zone is delegated to (unbound, a site's resolver): queries ask for
/// recursion, which a recursive resolver needs (it refuses a query without it for a name it has not
/// cached) and an authoritative responder ignores.
/// </summary>
public sealed class DnsServerResolver : IServiceResolver
{
    private readonly LookupClient _client;

    /// <summary>Creates a resolver that asks <paramref name="server"/>.</summary>
    public DnsServerResolver(IPEndPoint server, TimeSpan? timeout = null)
    {
        _client = new LookupClient(new LookupClientOptions(server)
        {
            UseCache = false,
            Recursion = true,
            Timeout = timeout ?? TimeSpan.FromSeconds(2),
            Retries = 1,
            UseTcpFallback = true,
            ThrowDnsErrors = false,
        });
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel)
    {
        var a = await _client.QueryAsync(name, QueryType.A, QueryClass.IN, cancel);
        var addresses = a.Answers.ARecords().Select(r => r.Address).ToList();
        if (addresses.Count == 0)
        {
            var aaaa = await _client.QueryAsync(name, QueryType.AAAA, QueryClass.IN, cancel);
            addresses.AddRange(aaaa.Answers.AaaaRecords().Select(r => r.Address));
        }

        return addresses;
    }
}
