using System.Net;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>Asks the farm's DNS, then puts <paramref name="first"/> at the front of the answer when the DNS gave it.</summary>
internal sealed class FirstAddressResolver(IServiceResolver dns, IPAddress first) : IServiceResolver
{
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel)
    {
        var answer = await dns.ResolveAsync(name, cancel);
        return [.. answer.Where(a => a.Equals(first)), .. answer.Where(a => !a.Equals(first))];
    }
}

/// <summary>
/// A DNS system that still hands out a dead server: the first <paramref name="staleAnswers"/> answers
/// hold only <paramref name="dead"/>; later ones hold it first, then the farm's real answer.
/// </summary>
internal sealed class StaleResolver(IServiceResolver dns, IPAddress dead, int staleAnswers) : IServiceResolver
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel)
    {
        if (Interlocked.Increment(ref _calls) <= staleAnswers)
        {
            return [dead];
        }

        return [dead, .. await dns.ResolveAsync(name, cancel)];
    }
}

/// <summary>A selector that remembers what it was given and what it chose.</summary>
internal sealed class RecordingSelector(IServerSelector inner) : IServerSelector
{
    private readonly List<(IReadOnlyList<FarmMember> Candidates, ServerChoice? Choice)> _calls = [];

    public IReadOnlyList<(IReadOnlyList<FarmMember> Candidates, ServerChoice? Choice)> Calls
    {
        get
        {
            lock (_calls)
            {
                return [.. _calls];
            }
        }
    }

    public ServerChoice? Select(IReadOnlyList<FarmMember> candidates, SelectionContext context)
    {
        var choice = inner.Select(candidates, context);
        lock (_calls)
        {
            _calls.Add(([.. candidates], choice));
        }

        return choice;
    }
}

/// <summary>Picks the first of <paramref name="order"/> among the candidates, whatever its state (to reach a server that will refuse).</summary>
internal sealed class OrderSelector(params string[] order) : IServerSelector
{
    public ServerChoice? Select(IReadOnlyList<FarmMember> candidates, SelectionContext context) =>
        order.Select(id => candidates.FirstOrDefault(m => m.Id == id)).FirstOrDefault(m => m is not null) is { } m
            ? new ServerChoice(m, $"{m.Id}: group {m.Group}, {m.Users}/{m.Capacity} users, table v{context.TableVersion} (first of {string.Join(' ', order)})")
            : null;
}

/// <summary>Resolves every name to one address.</summary>
internal sealed class FixedResolver(IPAddress address) : IServiceResolver
{
    public Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel) => Task.FromResult<IReadOnlyList<IPAddress>>([address]);
}
