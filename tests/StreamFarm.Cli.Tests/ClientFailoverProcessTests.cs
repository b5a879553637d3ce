using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using StreamFarm.Client.Discovery;
using StreamFarm.Tests.Shared;
using Xunit.Abstractions;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// <c>streamfarm sub --service stream --dns ... -v --json</c> as a real process against three
/// server processes and the farm's DNS system as its own process (<c>streamfarm dns</c>). The
/// server the subscriber chose is killed (kill -9) or frozen (SIGSTOP); its connection steps on
/// standard error must show the failover (lost, retried, rediscovered, resolved, ... subscribed on
/// another server) and its standard output must keep receiving. Every server gets the same
/// updates from the test (routes between servers do not exist yet). The DNS system goes on handing
/// out the lost server until membership has noticed; the client recovers anyway. Outcomes are
/// polled with a generous deadline; nothing asserts on speed.
/// </summary>
public sealed partial class ClientFailoverProcessTests(ITestOutputHelper output)
{
    // `sub --service` reaches the first server at the DNS address and the default RTTP port (it has
    // no option for another port), so these servers keep 7400, on addresses of their own: 127.0.6.x
    // and 127.0.8.x (127.0.7.x belongs to the client benchmarks).
    private const int RttpPort = 7400;
    private const int GossipPort = 17401;
    private const int DnsPort = 15300;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(90, 32).Select(i => (byte)i).ToArray());

    [Fact]
    public async Task Kill9TheChosenServer_SubscriberRetriesRediscoversAndKeepsReceiving()
    {
        await using var farm = await ProcessFarm.StartAsync("127.0.6");
        await using var publisher = await Publisher.StartAsync(farm, "/FAIL/KILL");
        await using var sub = StartSubscriber(farm, "/FAIL/KILL");
        var chosen = await FirstServerAsync(sub);
        var stepsBefore = Steps(sub.Stderr).Count;
        var linesBefore = Lines(sub.Stdout).Count;

        farm.Servers[chosen].Signal(9);
        await farm.Servers[chosen].WaitForExitAsync();
        output.WriteLine($"killed {chosen}; DNS answers right after: {await farm.SampleDnsAsync()}");

        var failover = await StepsInOrderAsync(sub, stepsBefore,
            ("lost", t => t.StartsWith($"server {chosen} at {farm.Address(chosen)}:{RttpPort}: ", StringComparison.Ordinal)),
            ("retried", t => t == $"trying {farm.Address(chosen)}:{RttpPort} once more"),
            ("failed", t => t.Contains($"{farm.Address(chosen)}:{RttpPort}", StringComparison.Ordinal)),
            ("rediscovered", null),
            ("resolved", t => t.StartsWith("stream.farm.test -> ", StringComparison.Ordinal)),
            ("chosen", null),
            ("moved", null),
            ("subscribed", t => !t.EndsWith($" on {chosen}", StringComparison.Ordinal)));
        var now = failover[^1].Text.Split(' ')[^1];
        Assert.NotEqual(chosen, now);
        Assert.Contains(now, farm.Servers.Keys);
        // From a live first server's fresh table, or (DNS naming only the server just lost) from the table held.
        Assert.Contains(Steps(sub.Stderr).Skip(stepsBefore), s => s.Kind is "firstserver" or "passedover");
        var handedOutDead = Steps(sub.Stderr).Skip(stepsBefore).Count(s => s.Kind == "resolved" && s.Text.Contains(farm.Address(chosen), StringComparison.Ordinal));
        output.WriteLine($"after the kill the DNS system handed out the dead {chosen} {handedOutDead} time(s); recovered on {now}");

        await KeepsReceivingAsync(sub, linesBefore, now);
        output.WriteLine(sub.Stderr);
    }

    [Fact]
    public async Task SigstopTheChosenServer_SubscriberDetectsTheHangAndMovesOn()
    {
        await using var farm = await ProcessFarm.StartAsync("127.0.8");
        await using var publisher = await Publisher.StartAsync(farm, "/FAIL/HANG");
        await using var sub = StartSubscriber(farm, "/FAIL/HANG");
        var chosen = await FirstServerAsync(sub);
        var stepsBefore = Steps(sub.Stderr).Count;
        var linesBefore = Lines(sub.Stdout).Count;

        farm.Servers[chosen].Signal(19); // SIGSTOP: the connection stays open, nothing comes
        farm.Frozen.Add(chosen);
        var failover = await StepsInOrderAsync(sub, stepsBefore,
            ("lost", t => t.StartsWith($"server {chosen} at ", StringComparison.Ordinal) && t.EndsWith(": hung", StringComparison.Ordinal)),
            ("retried", t => t == $"trying {farm.Address(chosen)}:{RttpPort} once more"),
            ("failed", null),
            ("rediscovered", null),
            ("resolved", null),
            ("subscribed", t => !t.EndsWith($" on {chosen}", StringComparison.Ordinal)));
        var now = failover[^1].Text.Split(' ')[^1];
        Assert.NotEqual(chosen, now);
        Assert.Contains(now, farm.Servers.Keys);
        output.WriteLine($"froze {chosen}; moved to {now}; DNS answers now: {await farm.SampleDnsAsync()}");

        await KeepsReceivingAsync(sub, linesBefore, now);
        output.WriteLine(sub.Stderr);
    }

    private static CliProcess StartSubscriber(ProcessFarm farm, string subject) => CliProcess.Start(
        ["sub", subject, "--service", "stream", "--dns", $"{farm.Subnet}.1:{DnsPort}", "-v", "--json"],
        new Dictionary<string, string> { ["STREAMFARM_ZONE"] = "farm.test" });

    /// <summary>Waits for the subscriber's first connect and a few updates; returns the server it chose.</summary>
    private static async Task<string> FirstServerAsync(CliProcess sub)
    {
        var steps = await StepsInOrderAsync(sub, 0,
            ("resolved", null), ("first server", null), ("table received", null), ("chosen", null), ("moved", null), ("subscribed", null));
        var chosen = steps[^1].Text.Split(' ')[^1];
        await EventuallyAsync(() => Updates(sub.Stdout, 0, chosen).Count >= 3, () => $"3 updates from {chosen}", sub);
        return chosen;
    }

    /// <summary>After the failover the stream goes on from <paramref name="server"/>: an image that says how it continues, then updates.</summary>
    private static async Task KeepsReceivingAsync(CliProcess sub, int linesBefore, string server)
    {
        await EventuallyAsync(() => Updates(sub.Stdout, linesBefore, server).Count >= 5, () => $"5 updates from {server} after the failover", sub);
        var image = Lines(sub.Stdout).Skip(linesBefore).Select(Parse).FirstOrDefault(j => j.GetProperty("type").GetString() == "image" && j.GetProperty("server").GetString() == server);
        Assert.True(image.ValueKind == JsonValueKind.Object, $"an image from {server} after the failover; stdout:\n{sub.Stdout}");

        // Each server's record is its own (its own epoch): a fresh history, labelled so.
        Assert.True(image.TryGetProperty("continuity", out var continuity), image.ToString());
        Assert.Contains(continuity.GetString(), new[] { "fresh", "resumed", "gap" });
        var seqs = Updates(sub.Stdout, linesBefore, server).Select(u => u.GetProperty("seq").GetUInt64()).ToList();
        Assert.True(seqs.Zip(seqs.Skip(1)).All(p => p.Second > p.First), $"sequence numbers increase: {string.Join(' ', seqs)}");
    }

    private static List<string> Lines(string text) => [.. text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0)];

    private static JsonElement Parse(string line)
    {
        using var doc = JsonDocument.Parse(line);
        return doc.RootElement.Clone();
    }

    private static List<JsonElement> Updates(string stdout, int skip, string server) =>
        [.. Lines(stdout).Skip(skip).Select(Parse).Where(j => j.GetProperty("type").GetString() == "update" && j.GetProperty("server").GetString() == server)];

    [GeneratedRegex(@"^\[[0-9:.]+\] ([a-z ]+): (.*)$")]
    private static partial Regex StepLine();

    /// <summary>The connection steps <c>-v</c> printed on standard error, as (kind, text).</summary>
    private static List<(string Kind, string Text)> Steps(string stderr) =>
        [.. Lines(stderr).Select(l => StepLine().Match(l)).Where(m => m.Success).Select(m => (m.Groups[1].Value, m.Groups[2].Value))];

    /// <summary>Waits until the steps after the first <paramref name="skip"/> hold these, in this order (others may come between).</summary>
    private static async Task<List<(string Kind, string Text)>> StepsInOrderAsync(CliProcess sub, int skip, params (string Kind, Func<string, bool>? Text)[] wanted)
    {
        List<(string Kind, string Text)>? found = null;
        await EventuallyAsync(() => (found = Subsequence(Steps(sub.Stderr).Skip(skip), wanted)) is not null, () => $"steps {string.Join(" > ", wanted.Select(w => w.Kind))}", sub);
        return found!;
    }

    private static List<(string Kind, string Text)>? Subsequence(IEnumerable<(string Kind, string Text)> steps, (string Kind, Func<string, bool>? Text)[] wanted)
    {
        var found = new List<(string Kind, string Text)>();
        foreach (var s in steps)
        {
            if (found.Count < wanted.Length && s.Kind == wanted[found.Count].Kind.Replace(" ", "", StringComparison.Ordinal) && (wanted[found.Count].Text?.Invoke(s.Text) ?? true))
            {
                found.Add(s);
            }
        }

        return found.Count == wanted.Length ? found : null;
    }

    private static async Task EventuallyAsync(Func<bool> condition, Func<string> what, CliProcess sub)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not reached within {Patience.TotalSeconds} s: {what()}\nsubscriber stderr:\n{sub.Stderr}\nsubscriber stdout (last lines):\n{string.Join('\n', Lines(sub.Stdout).TakeLast(10))}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Three server processes s2..s4 on {subnet}.2-4 and the DNS system on {subnet}.1, converged.</summary>
    private sealed class ProcessFarm : IAsyncDisposable
    {
        private ProcessFarm(string subnet)
        {
            Subnet = subnet;
        }

        public string Subnet { get; }

        public Dictionary<string, CliProcess> Servers { get; } = [];

        public Dictionary<string, string> Http { get; } = [];

        /// <summary>Servers sent SIGSTOP: they get SIGCONT before they are stopped.</summary>
        public List<string> Frozen { get; } = [];

        public CliProcess? Dns { get; private set; }

        public IPEndPoint DnsEndPoint => IPEndPoint.Parse($"{Subnet}.1:{DnsPort}");

        public string Address(string id) => $"{Subnet}.{id[1..]}";

        public static async Task<ProcessFarm> StartAsync(string subnet)
        {
            var farm = new ProcessFarm(subnet);
            try
            {
                var seeds = $"{subnet}.2:{GossipPort},{subnet}.3:{GossipPort}";
                foreach (var n in new[] { 2, 3, 4 })
                {
                    var server = CliProcess.Start(
                    [
                        "node", "--id", $"s{n}", "--listen", $"{subnet}.{n}", "--tcp-port", $"{RttpPort}", "--http-port", "0",
                        "--gossip-port", $"{GossipPort}", "--seeds", seeds, "--gossip-key", Key, "--preset", "local", "--farm-name", "client-failover",
                    ]);
                    farm.Servers[$"s{n}"] = server;
                    farm.Http[$"s{n}"] = (await server.WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
                }

                farm.Dns = CliProcess.Start(
                [
                    "dns", "--listen", $"{subnet}.1:{DnsPort}", "--seeds", seeds, "--gossip-key", Key, "--gossip-port", $"{GossipPort}",
                    "--preset", "local", "--farm-name", "client-failover", "--ttl", "5",
                ]);
                await farm.Dns.WaitForOutputAsync("answering");

                using var http = new HttpClient();
                await WaitAsync(async () =>
                {
                    foreach (var observer in farm.Http.Values)
                    {
                        using var doc = JsonDocument.Parse(await http.GetStringAsync(observer + "/farm"));
                        var healthy = doc.RootElement.EnumerateArray().Count(m => m.GetProperty("state").GetString() == "active" && m.GetProperty("liveness").GetString() == "alive");
                        if (healthy != 3)
                        {
                            return false;
                        }
                    }

                    return true;
                }, "the three servers converge");

                // The DNS system has seen the farm: over a few answers it hands out every server.
                var resolver = new DnsServerResolver(farm.DnsEndPoint);
                var seen = new HashSet<string>();
                await WaitAsync(async () =>
                {
                    seen.UnionWith((await resolver.ResolveAsync("stream.farm.test", CancellationToken.None)).Select(a => a.ToString()));
                    return seen.Count == 3;
                }, "the DNS system hands out the three servers");
                return farm;
            }
            catch
            {
                await farm.DisposeAsync();
                throw;
            }
        }

        /// <summary>What a few DNS answers hold now (for the test's log).</summary>
        public async Task<string> SampleDnsAsync()
        {
            var resolver = new DnsServerResolver(DnsEndPoint, TimeSpan.FromSeconds(1));
            var answers = new List<string>();
            for (var i = 0; i < 3; i++)
            {
                try
                {
                    answers.Add(string.Join(",", await resolver.ResolveAsync("stream.farm.test", CancellationToken.None)));
                }
                catch (Exception e)
                {
                    answers.Add(e.GetType().Name);
                }
            }

            return string.Join(" ", answers);
        }

        private static Task WaitAsync(Func<Task<bool>> condition, string what) => Poll.UntilAsync(condition, what, Patience);

        public async ValueTask DisposeAsync()
        {
            foreach (var id in Frozen)
            {
                Servers[id].Signal(18); // SIGCONT
            }

            foreach (var p in Servers.Values.Append(Dns).OfType<CliProcess>())
            {
                await p.DisposeAsync();
            }
        }
    }

    /// <summary>One subject to every server, n counting up every 100 ms (<see cref="EveryServerPublisher"/>).</summary>
    private static class Publisher
    {
        public static Task<EveryServerPublisher> StartAsync(ProcessFarm farm, string subject) =>
            EveryServerPublisher.StartAsync(farm.Servers.Keys.Select(id => (id, farm.Address(id), RttpPort)), subject, TimeSpan.FromMilliseconds(100));
    }
}
