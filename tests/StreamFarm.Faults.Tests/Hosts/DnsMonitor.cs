using System.Globalization;
using StreamFarm.Faults.Tests.Checking;
using StreamFarm.Faults.Tests.Farm;

namespace StreamFarm.Faults.Tests.Hosts;

/// <summary>
/// Asks the resolver for the service name from the clients' host about three times a second for
/// the whole scenario, puts every change of the answer on the timeline, and judges the answers:
/// <list type="bullet">
/// <item><see cref="UntilAsync"/>: the answer becomes exactly the expected servers (all healthy
/// ones, no other) within a patience (the farm's verdict plus the answers' 5 s TTL in caches);</item>
/// <item><see cref="KeepOut"/> / <see cref="KeepIn"/>: from then on, until <see cref="Release"/>, a
/// server does not come back into (or does not drop out of) any answer.</item>
/// </list>
/// What breaks these is a violation of <see cref="Invariant"/>, reported with the history's.
/// </summary>
internal sealed class DnsMonitor : IAsyncDisposable
{
    public const string Invariant = "D1 DNS through the delegated resolver";
    private readonly Unbound _unbound;
    private readonly FaultFarm _farm;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<Violation> _violations = [];
    private readonly Dictionary<string, (bool In, string Why)> _rules = new(StringComparer.Ordinal);
    private readonly Task _loop;
    private (DateTime At, string Answer, IReadOnlyList<string> Servers) _last = (DateTime.MinValue, "", []);

    public DnsMonitor(Unbound unbound, FaultFarm farm)
    {
        _unbound = unbound;
        _farm = farm;
        _loop = Task.Run(LoopAsync);
    }

    public IReadOnlyList<Violation> Violations()
    {
        lock (_lock)
        {
            return [.. _violations];
        }
    }

    /// <summary>From now on, until released, no answer may name the server.</summary>
    public void KeepOut(string id, string why) => Rule(id, false, why);

    /// <summary>From now on, until released, every answer must name the server.</summary>
    public void KeepIn(string id, string why) => Rule(id, true, why);

    public void Release(string id)
    {
        lock (_lock)
        {
            _rules.Remove(id);
        }
    }

    private void Rule(string id, bool keepIn, string why)
    {
        lock (_lock)
        {
            _rules[id] = (keepIn, why);
        }
    }

    /// <summary>Waits until an answer names exactly these servers; a violation (and false) if none did within the patience.</summary>
    public async Task<bool> UntilAsync(IReadOnlyCollection<string> expected, string why, TimeSpan patience)
    {
        var from = DateTime.UtcNow;
        var want = string.Join(",", expected.Order(StringComparer.Ordinal));
        while (true)
        {
            var (status, servers) = await AskAsync();
            var got = string.Join(",", servers);
            if (status == "NOERROR" && got == want)
            {
                _farm.Note(string.Create(CultureInfo.InvariantCulture, $"DNS through unbound: {why}: answer {got} after {(DateTime.UtcNow - from).TotalSeconds:0.0} s"));
                return true;
            }

            if (DateTime.UtcNow - from > patience)
            {
                Violate(why, $"expected the answer {want} within {patience.TotalSeconds} s; the last was {status ?? "no answer"} {got}");
                return false;
            }

            await Task.Delay(250);
        }
    }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var (status, servers) = await AskAsync();
            lock (_lock)
            {
                foreach (var (id, (keepIn, why)) in _rules.Where(r => status == "NOERROR" && servers.Contains(r.Key) != r.Value.In).ToList())
                {
                    // The first time only: the timeline shows the answers that followed.
                    _violations.Add(new(Invariant, Unbound.ServiceName, "dig@clients", $"{why}: {id} {(keepIn ? "missing from" : "in")} the answer {string.Join(",", servers)}", [Stamp()]));
                    _rules.Remove(id);
                }
            }

            try
            {
                await Task.Delay(300, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<(string? Status, IReadOnlyList<string> Servers)> AskAsync()
    {
        var (status, addresses) = await _unbound.ResolveAsync(Unbound.ServiceName);
        IReadOnlyList<string> servers = [.. _unbound.Servers(addresses, _farm.Ids).Order(StringComparer.Ordinal)];
        var answer = $"{status ?? "no answer"} {string.Join(",", servers)}";
        lock (_lock)
        {
            if (answer != _last.Answer)
            {
                _last = (DateTime.UtcNow, answer, servers);
                _farm.Note($"DNS through unbound now answers: {answer}");
            }
        }

        return (status, servers);
    }

    private string Stamp() => string.Create(CultureInfo.InvariantCulture, $"+{(DateTime.UtcNow - _farm.Start).TotalSeconds:0.000}s");

    private void Violate(string why, string what)
    {
        lock (_lock)
        {
            _violations.Add(new(Invariant, Unbound.ServiceName, "dig@clients", $"{why}: {what}", [Stamp()]));
        }

        _farm.Note($"DNS through unbound: {why}: {what}");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
