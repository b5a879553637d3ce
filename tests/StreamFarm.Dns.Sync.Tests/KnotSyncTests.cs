using DnsClient;
using StreamFarm.Protocol;
using static StreamFarm.Dns.Sync.Tests.Farm;

namespace StreamFarm.Dns.Sync.Tests;

/// <summary>
/// dns-sync against a real Knot DNS started by the test: the records Knot serves follow the farm
/// table (checked with an independent client, DnsClient.NET).
/// </summary>
public sealed class KnotSyncTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private const string Service = "stream.farm.test";

    [KnotFact]
    public async Task RecordsFollowTheTable_ActiveDrainingDeadLeftAndBack()
    {
        await using var knot = await KnotServer.StartAsync();
        await using var run = Run(knot);

        await run.ApplyAsync(Table(1, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3"), Server("s3", "127.0.0.4")));
        Assert.Equal(["127.0.0.2", "127.0.0.3", "127.0.0.4"], await knot.AddressesAsync(Service));
        Assert.Equal(["127.0.0.3"], await knot.AddressesAsync("s2.farm.test"));
        Assert.Equal(["s1", "s2", "s3"], await knot.TxtAsync("_streamfarm-sync.farm.test"));

        // s1 drains: out of the service name, its own name stays.
        await run.ApplyAsync(Table(2, Server("s1", "127.0.0.2", state: "draining"), Server("s2", "127.0.0.3"), Server("s3", "127.0.0.4")));
        Assert.Equal(["127.0.0.3", "127.0.0.4"], await knot.AddressesAsync(Service));
        Assert.Equal(["127.0.0.2"], await knot.AddressesAsync("s1.farm.test"));

        // s2 dies, s3 leaves (the table shows leaving + dead): both names go.
        await run.ApplyAsync(Table(3, Server("s1", "127.0.0.2", state: "draining"), Server("s2", "127.0.0.3", liveness: "dead"), Server("s3", "127.0.0.4", state: "leaving", liveness: "dead")));
        Assert.Empty(await knot.AddressesAsync(Service));
        Assert.Empty(await knot.AddressesAsync("s2.farm.test"));
        Assert.Empty(await knot.AddressesAsync("s3.farm.test"));
        Assert.Equal(["s1"], await knot.TxtAsync("_streamfarm-sync.farm.test"));

        // s2 comes back, s3 is forgotten, an IPv6 server joins.
        await run.ApplyAsync(Table(4, Server("s1", "127.0.0.2", state: "draining"), Server("s2", "127.0.0.3"), Server("v6", "fd00::7")));
        Assert.Equal(["127.0.0.3"], await knot.AddressesAsync(Service));
        Assert.Equal(["fd00::7"], await knot.AddressesAsync(Service, QueryType.AAAA));
        Assert.Equal(["fd00::7"], await knot.AddressesAsync("v6.farm.test", QueryType.AAAA));

        // The zone's own records were never touched; updates after the first carried prerequisites that held.
        Assert.Equal([knot.EndPoint.Address.ToString()], await knot.AddressesAsync("ns1.farm.test"));
        Assert.Equal(0, run.Sync.Failures);
        Assert.Equal(4, run.Sync.Updates);
    }

    [KnotFact]
    public async Task Restart_ResyncsFully_RemovingServersThatWentAwayMeanwhile()
    {
        await using var knot = await KnotServer.StartAsync();
        await using (var first = Run(knot))
        {
            await first.ApplyAsync(Table(7, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3"), Server("s3", "127.0.0.4")));
        }

        // A new dns-sync process whose first table no longer has s3 at all.
        await using var second = Run(knot);
        await second.ApplyAsync(Table(1, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")));

        Assert.Equal(["127.0.0.2", "127.0.0.3"], await knot.AddressesAsync(Service));
        Assert.Empty(await knot.AddressesAsync("s3.farm.test"));
        Assert.Equal(["s1", "s2"], await knot.TxtAsync("_streamfarm-sync.farm.test"));
    }

    [KnotFact]
    public async Task SomeoneElseEditsTheZone_PrerequisiteFails_AndAFullResyncRepairsIt()
    {
        await using var knot = await KnotServer.StartAsync();
        await using var run = Run(knot);
        await run.ApplyAsync(Table(1, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")));

        // An operator adds an address by hand.
        var edit = await knot.UpdateClient().UpdateAsync(new ZoneUpdate("farm.test", TimeSpan.FromSeconds(5),
            [new RRsetChange(new RRsetKey(Service, RecordKind.A), null, ["127.0.0.2", "127.0.0.3", "127.0.0.99"])], Full: true), default);
        Assert.Equal(UpdateStatus.Applied, edit.Status);

        await run.ApplyAsync(Table(2, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3", state: "draining")));

        Assert.Equal(["127.0.0.2"], await knot.AddressesAsync(Service));
        Assert.Equal(1, run.Sync.Failures); // the refused incremental update
        Assert.Contains(run.Log, l => l.Contains("prerequisite not met", StringComparison.Ordinal));
    }

    [KnotFact]
    public async Task WrongKey_IsRefused_AndReportedAsSuch()
    {
        await using var knot = await KnotServer.StartAsync();
        var wrong = knot.Key with { Secret = new byte[32] };
        var result = await knot.UpdateClient(wrong).UpdateAsync(new ZoneUpdate("farm.test", TimeSpan.FromSeconds(5),
            [new RRsetChange(new RRsetKey(Service, RecordKind.A), null, ["127.0.0.66"])], Full: true), default);

        Assert.Equal(UpdateStatus.Failed, result.Status);
        Assert.Contains("NOTAUTH", result.Detail, StringComparison.Ordinal);
        Assert.Contains("BADSIG", result.Detail, StringComparison.Ordinal);
        Assert.Empty(await knot.AddressesAsync(Service));

        var unknown = await knot.UpdateClient(knot.Key with { Name = "other-key" }).UpdateAsync(new ZoneUpdate("farm.test", TimeSpan.FromSeconds(5),
            [new RRsetChange(new RRsetKey(Service, RecordKind.A), null, ["127.0.0.66"])], Full: true), default);
        Assert.Equal(UpdateStatus.Failed, unknown.Status);
        Assert.Contains("BADKEY", unknown.Detail, StringComparison.Ordinal);
    }

    [KnotFact]
    public async Task ServerDownAtStart_IsRetriedWithBackoff_UntilItAnswers()
    {
        var endpoint = KnotServer.FreeEndPoint();
        var key = new TsigKey("sync-key", "hmac-sha256", new byte[32]);
        var log = new List<string>();
        var options = Options();
        using var sync = new DnsSync(options, new ArsoftUpdateClient(endpoint, key, TimeSpan.FromSeconds(1)), log: l => { lock (log) { log.Add(l); } });
        using var stop = new CancellationTokenSource();
        var loop = sync.RunAsync(stop.Token);
        sync.Notify(Table(1, Server("s1", "127.0.0.2")));

        var deadline = DateTime.UtcNow + Deadline;
        while (sync.Failures < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(sync.Failures >= 2, "no failed attempts while the server was down");
        Assert.Equal(-1, sync.AppliedVersion);

        // Knot comes up on that address with that key: the next retry succeeds.
        await using var knot = await KnotServer.StartAsync(endpoint, key: key);
        await sync.WaitForVersionAsync(1).WaitAsync(Deadline);
        Assert.Equal(["127.0.0.2"], await knot.AddressesAsync(Service));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
    }

    private static SyncRun Run(KnotServer knot) => new(knot);

    /// <summary>A DnsSync with the real ARSoft client running against the Knot, until disposed.</summary>
    private sealed class SyncRun : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private readonly List<string> _log = [];

        public SyncRun(KnotServer knot)
        {
            Sync = new DnsSync(Options(), knot.UpdateClient(), log: l =>
            {
                lock (_log)
                {
                    _log.Add(l);
                }
            });
            _loop = Sync.RunAsync(_stop.Token);
        }

        public DnsSync Sync { get; }

        public IReadOnlyList<string> Log
        {
            get
            {
                lock (_log)
                {
                    return [.. _log];
                }
            }
        }

        public async Task ApplyAsync(FarmSnapshot table)
        {
            Sync.Notify(table);
            await Sync.WaitForVersionAsync(table.Version).WaitAsync(Deadline);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
                // stopped
            }

            Sync.Dispose();
            _stop.Dispose();
        }
    }
}
