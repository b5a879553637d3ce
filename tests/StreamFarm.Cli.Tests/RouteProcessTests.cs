using System.Diagnostics;
using System.Globalization;
using StreamFarm.Client;
using StreamFarm.Protocol;
using Xunit.Abstractions;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// Routes between three server processes (<c>streamfarm node</c> on 127.0.x.2 to .4): a server
/// holding publishers and subjects is killed (kill -9); two servers are cut from each other with
/// nftables. Subscribers must see STALE, then the stream again, with the publishers' counter
/// never going back (no older image, no reordering). Outcomes are polled with a generous deadline;
/// nothing asserts on speed.
/// </summary>
public sealed class RouteProcessTests(ITestOutputHelper output)
{
    private const int RttpPort = 7400;
    private const int GossipPort = 17401;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(120, 32).Select(i => (byte)i).ToArray());
    private static readonly Ownership Owners = new(["s2", "s3", "s4"]);

    [Fact]
    public async Task Kill9_OfAServerHoldingPublishersAndSubjects_SubjectsTurnStale_ThenGoOnWithoutGoingBack()
    {
        await using var farm = await Farm.StartAsync("127.0.16");
        var owned = Subject("s4", "/RP/KILL/A");   // its state and its publisher die with s4
        var remote = Subject("s2", "/RP/KILL/B");  // its state lives on at s2; its publisher dies with s4
        await using var first = await Publisher.StartAsync(farm, "s4", 0, owned, remote);
        var subs = new[] { await Recorder.StartAsync(farm, "s2", owned, remote), await Recorder.StartAsync(farm, "s3", owned, remote) };
        try
        {
            foreach (var s in subs)
            {
                await s.WaitAsync(m => Counter(m) >= 20 && m.Subject == owned, "20 updates of the subject s4 owns");
                await s.WaitAsync(m => Counter(m) >= 20 && m.Subject == remote, "20 updates of the subject s2 owns");
            }

            var epochBefore = subs[0].Last(owned, RttpMessageKind.Update)!.Epoch;
            farm.Servers["s4"].Signal(9);
            await farm.Servers["s4"].WaitForExitAsync();

            foreach (var s in subs)
            {
                await s.WaitAsync(m => m.Subject == owned && m.Kind == RttpMessageKind.Status && m.Status == SubjectStatus.Stale, $"{owned} STALE");
                await s.WaitAsync(m => m.Subject == remote && m.Kind == RttpMessageKind.Status && m.Status == SubjectStatus.Stale, $"{remote} STALE (its publisher's server died)");
                await s.WaitAsync(m => m.Subject == owned && m.Kind == RttpMessageKind.Image && m.Epoch != epochBefore, $"{owned}: the new owner's image");
            }

            // A publisher is back, at another server: both subjects are OK again and go on.
            await using var second = await Publisher.StartAsync(farm, "s3", 10_000, owned, remote);
            foreach (var s in subs)
            {
                foreach (var subject in new[] { owned, remote })
                {
                    await s.WaitAsync(m => m.Subject == subject && Counter(m) >= 10_020, $"{subject}: updates from the new publisher");
                }

                s.AssertNeverGoesBack(output);
                Assert.Contains(s.Messages, m => m.Subject == owned && m.Kind == RttpMessageKind.Status && m.Status == SubjectStatus.Ok);
                Assert.Contains(s.Messages, m => m.Subject == remote && m.Kind == RttpMessageKind.Status && m.Status == SubjectStatus.Ok);
            }
        }
        finally
        {
            foreach (var s in subs)
            {
                await s.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Kill9_OfAnOwner_WithTheDefaultPreset_ItsSubjectsMoveOnTheRefusedRoute_BeforeTheVerdict_AndNothingIsLost()
    {
        // lan: the membership declares a silent member dead after 4 s at the earliest. The owner's
        // death is known at once from its refused route port; nothing the survivors took from
        // their publishers may be lost on the way (no counter value missing within an epoch).
        await using var farm = await Farm.StartAsync("127.0.19", preset: "lan");
        var subject = Subject("s4", "/RP/TAKEOVER/A");
        await using var publisher = await Publisher.StartAsync(farm, "s2", 0, subject);
        await using var sub = await Recorder.StartAsync(farm, "s3", subject);
        await sub.WaitAsync(m => m.Subject == subject && Counter(m) >= 20, "20 updates from the owner s4");
        var epochBefore = sub.Last(subject, RttpMessageKind.Update)!.Epoch;

        farm.Servers["s4"].Signal(9);
        await farm.Servers["s4"].WaitForExitAsync();
        var mark = sub.Messages.Count;
        await sub.WaitAsync(m => m.Subject == subject && m.Kind == RttpMessageKind.Update && m.Epoch != epochBefore, "updates from the new owner", from: mark);

        using (var http = new HttpClient())
        {
            var table = await http.GetStringAsync(farm.Http["s3"] + "/farm");
            output.WriteLine(table);
            Assert.DoesNotContain("\"dead\"", table, StringComparison.Ordinal); // the verdict has not come yet: the route told
        }

        var last = Counter(sub.Last(subject, RttpMessageKind.Update)!);
        await sub.WaitAsync(m => m.Subject == subject && Counter(m) >= last + 20, "the stream goes on", from: mark);
        sub.AssertNeverGoesBack(output);

        // Within an epoch the counter grows by exactly one per update: the publications that were
        // on their way to s4 reached the new owner, in order.
        var history = sub.Messages.Where(m => m.Subject == subject && m.Kind != RttpMessageKind.Status).ToList();
        for (var i = 1; i < history.Count; i++)
        {
            if (history[i].Kind == RttpMessageKind.Update && history[i].Merged == 1)
            {
                Assert.True(history[i].Epoch == history[i - 1].Epoch && Counter(history[i]) == Counter(history[i - 1]) + 1, $"silent gap: n={Counter(history[i - 1])} ({history[i - 1].Kind} {history[i - 1].Epoch}/{history[i - 1].Seq}) then n={Counter(history[i])} ({history[i].Epoch}/{history[i].Seq})");
            }
        }
    }

    [Fact]
    public async Task Kill9_OfAnOwner_WithItsPublisherAndItsOnlySubscriber_ItsSuccessorServesTheLastValues()
    {
        // Nobody but s4 had a reason to hold the subject: its publisher and its only subscriber are
        // on s4. Before standby copies the survivors started it from nothing (a subscriber that
        // moved got STATUS NOT_FOUND: the record was lost with its owner). Its successor keeps a
        // copy and serves it.
        await using var farm = await Farm.StartAsync("127.0.26");
        var subject = Enumerable.Range(0, 1000).Select(i => $"/RP/STANDBY/{i}").First(s => Owners.OwnerOf(s) == "s4");
        var successor = Owners.SuccessorOf(subject)!;
        var publisher = await Publisher.StartAsync(farm, "s4", 0, subject);
        await using var sub = await Recorder.StartAsync(farm, "s4", subject);
        await sub.WaitAsync(m => m.Subject == subject && Counter(m) >= 20, "20 updates at s4");
        await publisher.DisposeAsync();
        await Task.Delay(1000); // what was published has reached every copy (not a measurement)
        var last = Counter(sub.Messages.Last(m => m.Subject == subject && m.Kind != RttpMessageKind.Status));

        farm.Servers["s4"].Signal(9);
        await farm.Servers["s4"].WaitForExitAsync();
        await using var moved = await Recorder.StartAsync(farm, successor, subject);
        await moved.WaitAsync(m => m.Subject == subject && m.Kind is RttpMessageKind.Image or RttpMessageKind.Status, $"an answer at {successor}");

        var first = moved.Messages.First(m => m.Subject == subject && m.Kind is RttpMessageKind.Image or RttpMessageKind.Status);
        Assert.True(first.Kind == RttpMessageKind.Image && Counter(first) == last, $"{successor} answered {first.Kind} {(first.Kind == RttpMessageKind.Status ? first.Status.ToString() : $"n={Counter(first)}")}; the last value at s4 was n={last}. The servers' warnings:\n{farm.Warnings()}");
    }

    [Fact]
    public async Task Partition_BetweenTwoServers_TheirSubjectsTurnStale_OthersFlow_AndAfterTheHealNothingGoesBack()
    {
        var nft = new[] { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("nft is needed for the partition test: run scripts/setup.sh (it installs nftables)");
        await using var farm = await Farm.StartAsync("127.0.17");
        var cut = Subject("s3", "/RP/PART/C");    // owned and published at s3, which s2 loses
        var through = Subject("s4", "/RP/PART/D"); // owned and published at s4, which s2 keeps
        await using var pubC = await Publisher.StartAsync(farm, "s3", 0, cut);
        await using var pubD = await Publisher.StartAsync(farm, "s4", 0, through);
        await using var sub = await Recorder.StartAsync(farm, "s2", cut, through);
        await sub.WaitAsync(m => m.Subject == cut && Counter(m) >= 20, "updates of the subject s3 owns");
        await sub.WaitAsync(m => m.Subject == through && Counter(m) >= 20, "updates of the subject s4 owns");
        var epochBefore = sub.Last(cut, RttpMessageKind.Update)!.Epoch;

        const string Table = "streamfarm_route_test";
        Run(nft, $"delete table inet {Table}", check: false);
        Run(nft, $"add table inet {Table}");
        Run(nft, $"add chain inet {Table} out {{ type filter hook output priority 0 ; }}");
        Run(nft, $"add rule inet {Table} out ip saddr 127.0.17.2 ip daddr 127.0.17.3 drop");
        Run(nft, $"add rule inet {Table} out ip saddr 127.0.17.3 ip daddr 127.0.17.2 drop");
        try
        {
            await sub.WaitAsync(m => m.Subject == cut && m.Kind == RttpMessageKind.Status && m.Status == SubjectStatus.Stale, $"{cut} STALE at s2 while cut from s3");
            var mark = sub.Messages.Count;
            var d = sub.Last(through, RttpMessageKind.Update) ?? throw new InvalidOperationException("no update of " + through);
            await sub.WaitAsync(m => m.Subject == through && Counter(m) >= Counter(d) + 30, $"{through} goes on during the partition", from: mark);
        }
        finally
        {
            Run(nft, $"delete table inet {Table}", check: false);
        }

        var healed = sub.Messages.Count;
        var last = Counter(sub.Last(cut, RttpMessageKind.Update)!);
        await sub.WaitAsync(m => m.Subject == cut && Counter(m) >= last + 30, $"{cut} flows again after the heal", from: healed);
        Assert.Contains(sub.Messages.Skip(healed), m => m.Subject == cut && m.Kind == RttpMessageKind.Status && m.Status == SubjectStatus.Ok);
        var image = sub.Messages.Skip(healed).First(m => m.Subject == cut && m.Kind == RttpMessageKind.Image);
        output.WriteLine($"after the heal: image {image.Epoch}/{image.Seq} (epoch before {epochBefore}), counter {Counter(image)} (last before {last})");
        sub.AssertNeverGoesBack(output);
    }

    [Fact]
    public async Task FrozenServer_ItsRouteIsBoundedAndCut_OthersKeepReceiving_AndItComesBack()
    {
        await using var farm = await Farm.StartAsync("127.0.18");
        var subject = Subject("s2", "/RP/SLOW/X");
        var padding = new string('x', 4000); // 4 KB per update: the frozen server's route fills fast
        await using var publisher = await Publisher.StartPaddedAsync(farm, "s2", 0, padding, subject);
        await using var live = await Recorder.StartAsync(farm, "s3", subject);
        await using var frozen = await Recorder.StartAsync(farm, "s4", subject);
        await live.WaitAsync(m => Counter(m) >= 20, "updates at s3");
        await frozen.WaitAsync(m => Counter(m) >= 20, "updates at s4");

        farm.Servers["s4"].Signal(19); // SIGSTOP: its route from s2 stops reading
        try
        {
            var mark = live.Messages.Count;
            var at = Counter(live.Last(subject, RttpMessageKind.Update)!);

            // s2 keeps s4's route bounded (conflation) and cuts it (slow consumer, or idle: the
            // frozen end sends nothing); s3's subscriber does not wait for it.
            using var http = new HttpClient();
            await PollAsync(async () => Metric(await http.GetStringAsync(farm.Http["s2"] + "/metrics"), "streamfarm_route_sessions") == 1, "s2 cuts the frozen server's route");
            await live.WaitAsync(m => Counter(m) >= at + 200, "s3 keeps receiving while s4 is frozen", from: mark);
        }
        finally
        {
            farm.Servers["s4"].Signal(18); // SIGCONT
        }

        // Frozen longer than the farm's shortest verdict, s4 cut its clients (BYE PAUSED: what they
        // sent meanwhile is stale) and re-joins; a client that comes back gets the stream again,
        // never an older value than the farm's.
        var resumed = Counter(live.Last(subject, RttpMessageKind.Update)!);
        await using var again = await Recorder.StartAsync(farm, "s4", subject);
        await again.WaitAsync(m => Counter(m) >= resumed + 50, "a subscriber at s4 receives again after SIGCONT");
        Assert.True(Counter(again.Messages.First(m => m.Kind != RttpMessageKind.Status)) >= resumed, "the first message after SIGCONT is not older than what s3 had then");
        live.AssertNeverGoesBack(output);
        frozen.AssertNeverGoesBack(output);
        again.AssertNeverGoesBack(output);
    }

    private static long Metric(string text, string name) =>
        text.Split('\n').Where(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Select(l => (long)double.Parse(l[(name.Length + 1)..], CultureInfo.InvariantCulture)).FirstOrDefault();

    private static string Subject(string owner, string prefix) =>
        Enumerable.Range(0, 1000).Select(i => $"{prefix}{i}").First(s => Owners.OwnerOf(s) == owner);

    private static long Counter(RttpMessage m) =>
        m.Fields.FirstOrDefault(f => f.Key == "n").Value is { } n ? long.Parse(n, CultureInfo.InvariantCulture) : -1;

    private static void Run(string file, string args, bool check = true)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in SplitArgs(args))
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (check && p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {args}: exit {p.ExitCode}: {err}");
        }
    }

    private static string[] SplitArgs(string args) => args.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Three <c>streamfarm node</c> processes with membership and routes.</summary>
    private sealed class Farm : IAsyncDisposable
    {
        public Dictionary<string, CliProcess> Servers { get; } = [];

        public Dictionary<string, string> Http { get; } = [];

        public string Subnet { get; private init; } = "";

        public string Address(string id) => $"{Subnet}.{id[1..]}";

        /// <summary>Every server's warnings so far (pauses, routes closed, owners changed), for a failure's message.</summary>
        public string Warnings() => string.Join('\n', Servers.SelectMany(s => s.Value.Stdout.Split('\n').Where(l => l.Contains(" warn: ", StringComparison.Ordinal) || l.Contains(" fail: ", StringComparison.Ordinal) || l.Contains("owners changed", StringComparison.Ordinal)).Select(l => $"{s.Key}: {l}")));

        public static async Task<Farm> StartAsync(string subnet, string preset = "local")
        {
            var farm = new Farm { Subnet = subnet };
            try
            {
                var seeds = $"{subnet}.2:{GossipPort},{subnet}.3:{GossipPort}";
                foreach (var n in new[] { 2, 3, 4 })
                {
                    var server = CliProcess.Start(
                    [
                        "node", "--id", $"s{n}", "--listen", $"{subnet}.{n}", "--tcp-port", $"{RttpPort}", "--http-port", "0",
                        "--gossip-port", $"{GossipPort}", "--seeds", seeds, "--gossip-key", Key, "--preset", preset, "--farm-name", "route-process",
                    ]);
                    farm.Servers[$"s{n}"] = server;
                    farm.Http[$"s{n}"] = (await server.WaitForOutputAsync("HTTP ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
                }

                using var http = new HttpClient();
                await PollAsync(async () =>
                {
                    foreach (var observer in farm.Http.Values)
                    {
                        var metrics = await http.GetStringAsync(observer + "/metrics");
                        if (!metrics.Contains("\nstreamfarm_routes_up 2\n", StringComparison.Ordinal) || !metrics.Contains("\nstreamfarm_owners_synced 1\n", StringComparison.Ordinal))
                        {
                            return false;
                        }
                    }

                    return true;
                }, "every server has its two routes up and has heard every other confirm the owners");
                return farm;
            }
            catch
            {
                await farm.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var p in Servers.Values)
            {
                await p.DisposeAsync();
            }
        }
    }

    private static Task PollAsync(Func<Task<bool>> condition, string what) => Poll.UntilAsync(condition, what, Patience);

    /// <summary>Publishes subjects at one server, field n counting up from a start every 20 ms, until disposed or the server is gone.</summary>
    private sealed class Publisher : IAsyncDisposable
    {
        private readonly RttpConnection _connection;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        private Publisher(RttpConnection connection, long start, string? padding, string[] subjects)
        {
            _connection = connection;
            _loop = Task.Run(async () =>
            {
                for (var n = start; !_stop.IsCancellationRequested; n++)
                {
                    foreach (var s in subjects)
                    {
                        KeyValuePair<string, string>[] fields = padding is null
                            ? [KeyValuePair.Create("n", n.ToString(CultureInfo.InvariantCulture))]
                            : [KeyValuePair.Create("n", n.ToString(CultureInfo.InvariantCulture)), KeyValuePair.Create("pad", padding)];
                        await connection.PublishAsync(s, fields);
                    }

                    await Task.Delay(padding is null ? 20 : 2);
                }
            });
        }

        public static Task<Publisher> StartAsync(Farm farm, string server, long start, params string[] subjects) => StartPaddedAsync(farm, server, start, null, subjects);

        /// <summary>Like the other overload; with <paramref name="padding"/>, a large field goes with every update, every 2 ms.</summary>
        public static async Task<Publisher> StartPaddedAsync(Farm farm, string server, long start, string? padding, params string[] subjects) =>
            new(await RttpConnection.ConnectAsync(farm.Address(server), RttpPort, new RttpConnectionOptions { ClientName = "route-test-publisher" }), start, padding, subjects);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (Exception e) when (e is RttpConnectionException or IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                // its server is gone
            }

            await _connection.DisposeAsync();
        }
    }

    /// <summary>Subscribes at one server and keeps every IMAGE, UPDATE and STATUS in arrival order.</summary>
    private sealed class Recorder : IAsyncDisposable
    {
        private readonly RttpConnection _connection;
        private readonly List<RttpMessage> _messages = [];
        private readonly Task _loop;

        private Recorder(RttpConnection connection, string server)
        {
            _connection = connection;
            Server = server;
            _loop = Task.Run(async () =>
            {
                await foreach (var m in connection.Messages.ReadAllAsync())
                {
                    if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status)
                    {
                        lock (_messages)
                        {
                            _messages.Add(m);
                        }
                    }
                }
            });
        }

        public string Server { get; }

        public IReadOnlyList<RttpMessage> Messages
        {
            get
            {
                lock (_messages)
                {
                    return [.. _messages];
                }
            }
        }

        public static async Task<Recorder> StartAsync(Farm farm, string server, params string[] subjects)
        {
            var c = await RttpConnection.ConnectAsync(farm.Address(server), RttpPort, new RttpConnectionOptions { ClientName = "route-test-subscriber" });
            await c.SubscribeAsync(subjects);
            return new Recorder(c, server);
        }

        public RttpMessage? Last(string subject, RttpMessageKind kind) => Messages.LastOrDefault(m => m.Subject == subject && m.Kind == kind);

        public async Task WaitAsync(Func<RttpMessage, bool> match, string what, int from = 0)
        {
            var deadline = DateTime.UtcNow + Patience;
            while (!Messages.Skip(from).Any(match))
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"{Server}: not seen within {Patience.TotalSeconds} s: {what}; last messages: {string.Join(" | ", Messages.TakeLast(12).Select(Describe))}");
                }

                await Task.Delay(50);
            }
        }

        /// <summary>
        /// Per subject: updates continue their epoch at seq + 1 (or jump with @merged), images never
        /// go back within an epoch, and the publishers' counter never decreases across the stream.
        /// </summary>
        public void AssertNeverGoesBack(ITestOutputHelper output)
        {
            foreach (var subject in Messages.Select(m => m.Subject).Distinct())
            {
                (ulong Epoch, ulong Seq) at = (0, 0);
                var counter = -1L;
                var epochs = new List<ulong>();
                foreach (var m in Messages.Where(m => m.Subject == subject && m.Kind != RttpMessageKind.Status))
                {
                    if (m.Kind == RttpMessageKind.Update)
                    {
                        Assert.True(m.Epoch == at.Epoch && m.Seq == at.Seq + (ulong)m.Merged, $"{Server} {subject}: update {Describe(m)} after {at.Epoch}/{at.Seq}");
                    }
                    else
                    {
                        Assert.True(m.Epoch != at.Epoch || m.Seq >= at.Seq, $"{Server} {subject}: older image {Describe(m)} after {at.Epoch}/{at.Seq}");
                    }

                    if (m.Epoch != at.Epoch)
                    {
                        epochs.Add(m.Epoch);
                    }

                    at = (m.Epoch, m.Seq);
                    var n = Counter(m);
                    Assert.True(n >= counter, $"{Server} {subject}: counter went back from {counter} to {n} at {Describe(m)}");
                    counter = n;
                }

                output.WriteLine($"{Server} {subject}: epochs {string.Join(", ", epochs)}; last counter {counter}");
            }
        }

        private static string Describe(RttpMessage m) =>
            $"{m.Kind} {m.Subject} {(m.Kind == RttpMessageKind.Status ? m.Status.ToString() : $"{m.Epoch}/{m.Seq} n={Counter(m)}")}";

        public async ValueTask DisposeAsync()
        {
            await _connection.DisposeAsync();
            try
            {
                await _loop;
            }
            catch (Exception e) when (e is RttpConnectionException or IOException or OperationCanceledException or System.Threading.Channels.ChannelClosedException)
            {
            }
        }
    }
}
