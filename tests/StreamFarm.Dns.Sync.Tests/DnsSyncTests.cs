using static StreamFarm.Dns.Sync.Tests.Farm;

namespace StreamFarm.Dns.Sync.Tests;

/// <summary>The sync loop against a scripted server: what it sends, when it resyncs, how it retries.</summary>
public sealed class DnsSyncTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private static readonly RRsetKey ServiceA = new("stream.farm.test", RecordKind.A);

    [Fact]
    public async Task FirstUpdate_IsAFullResync_CoveringNamesInTheRegistry()
    {
        var client = new FakeClient { Registry = ["old1", "s1", "not a label"] };
        using var sync = new DnsSync(Options(), client);
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);

        sync.Notify(Table(1, Server("s1", "127.0.0.2")));
        await sync.WaitForVersionAsync(1).WaitAsync(Deadline);

        var update = Assert.Single(client.Updates);
        Assert.True(update.Full);
        Assert.All(update.Changes, c => Assert.Null(c.Before));
        var changes = update.Changes.ToDictionary(c => c.Key);
        Assert.Empty(changes[new RRsetKey("old1.farm.test", RecordKind.A)].After);
        Assert.Empty(changes[new RRsetKey("old1.farm.test", RecordKind.Aaaa)].After);
        Assert.Equal(["127.0.0.2"], changes[new RRsetKey("s1.farm.test", RecordKind.A)].After);
        Assert.Equal(["127.0.0.2"], changes[ServiceA].After);
        Assert.DoesNotContain(update.Changes, c => c.Key.Name.Contains(' ', StringComparison.Ordinal));
        await Stop(stop, run);
    }

    [Fact]
    public async Task LaterUpdates_CarryOnlyTheChange_WithPrerequisites()
    {
        var client = new FakeClient();
        using var sync = new DnsSync(Options(), client);
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);
        sync.Notify(Table(1, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")));
        await sync.WaitForVersionAsync(1).WaitAsync(Deadline);

        sync.Notify(Table(2, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3", state: "draining")));
        await sync.WaitForVersionAsync(2).WaitAsync(Deadline);

        Assert.Equal(2, client.Updates.Count);
        var update = client.Updates[1];
        Assert.False(update.Full);
        var change = Assert.Single(update.Changes);
        Assert.Equal(ServiceA, change.Key);
        Assert.Equal(["127.0.0.2", "127.0.0.3"], change.Before!);
        Assert.Equal(["127.0.0.2"], change.After);
        await Stop(stop, run);
    }

    [Fact]
    public async Task TableChangeInvisibleInDns_SendsNothing()
    {
        var client = new FakeClient();
        using var sync = new DnsSync(Options(), client);
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);
        sync.Notify(Table(1, Server("s1", "127.0.0.2")));
        await sync.WaitForVersionAsync(1).WaitAsync(Deadline);

        sync.Notify(Table(2, Server("s1", "127.0.0.2") with { Users = 42 }));
        await sync.WaitForVersionAsync(2).WaitAsync(Deadline);

        Assert.Single(client.Updates);
        await Stop(stop, run);
    }

    [Fact]
    public async Task FailedUpdates_AreRetriedWithBackoff_ThenResyncFromTheNewestTable()
    {
        var client = new FakeClient { FailNext = 3 };
        var log = new List<string>();
        using var sync = new DnsSync(Options(), client, log: line => { lock (log) { log.Add(line); } });
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);

        sync.Notify(Table(1, Server("s1", "127.0.0.2")));
        await Task.Delay(30);
        sync.Notify(Table(2, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")));
        await sync.WaitForVersionAsync(2).WaitAsync(Deadline);

        Assert.Equal(3, sync.Failures);
        Assert.Equal(4, client.Attempts);
        var applied = Assert.Single(client.Updates);
        Assert.True(applied.Full);
        Assert.Equal(["127.0.0.2", "127.0.0.3"], applied.Changes.Single(c => c.Key == ServiceA).After);
        Assert.Null(sync.LastError);
        lock (log)
        {
            Assert.Equal(3, log.Count(l => l.Contains("retrying in", StringComparison.Ordinal)));
        }

        await Stop(stop, run);
    }

    [Fact]
    public async Task PrerequisiteFailure_LeadsToAFullResync()
    {
        var client = new FakeClient();
        using var sync = new DnsSync(Options(), client);
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);
        sync.Notify(Table(1, Server("s1", "127.0.0.2")));
        await sync.WaitForVersionAsync(1).WaitAsync(Deadline);

        client.PrerequisiteFailsNext = true;
        sync.Notify(Table(2, Server("s1", "127.0.0.2"), Server("s2", "127.0.0.3")));
        await sync.WaitForVersionAsync(2).WaitAsync(Deadline);

        Assert.Equal(2, client.Updates.Count);
        Assert.True(client.Updates[1].Full);
        Assert.Equal(3, client.Attempts);
        await Stop(stop, run);
    }

    [Fact]
    public async Task RegistryUnreadable_CountsAsFailure_AndIsRetried()
    {
        var client = new FakeClient { FailReads = 2 };
        using var sync = new DnsSync(Options(), client);
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);

        sync.Notify(Table(1, Server("s1", "127.0.0.2")));
        await sync.WaitForVersionAsync(1).WaitAsync(Deadline);

        Assert.Equal(2, sync.Failures);
        Assert.Single(client.Updates);
        await Stop(stop, run);
    }

    [Fact]
    public async Task PeriodicResync_RewritesEverything()
    {
        var client = new FakeClient();
        var options = Options();
        options.ResyncInterval = TimeSpan.FromMilliseconds(100);
        using var sync = new DnsSync(options, client);
        using var stop = new CancellationTokenSource();
        var run = sync.RunAsync(stop.Token);
        sync.Notify(Table(1, Server("s1", "127.0.0.2")));

        var deadline = DateTime.UtcNow + Deadline;
        while (client.Updates.Count < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(client.Updates.Count >= 3);
        Assert.All(client.Updates, u => Assert.True(u.Full));
        await Stop(stop, run);
    }

    [Fact]
    public void OlderTable_DoesNotReplaceNewerOne()
    {
        var client = new FakeClient();
        using var sync = new DnsSync(Options(), client);
        sync.Notify(Table(5, Server("s1", "127.0.0.2")));
        sync.Notify(Table(4));

        Assert.Equal(-1, sync.AppliedVersion);
    }

    private static async Task Stop(CancellationTokenSource stop, Task run)
    {
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }

    /// <summary>Records what it is asked and fails on request.</summary>
    private sealed class FakeClient : IDnsUpdateClient
    {
        private readonly Lock _lock = new();
        private readonly List<ZoneUpdate> _updates = [];

        public IReadOnlyList<string> Registry { get; init; } = [];

        public int FailNext { get; set; }

        public int FailReads { get; set; }

        public bool PrerequisiteFailsNext { get; set; }

        public int Attempts { get; private set; }

        public IReadOnlyList<ZoneUpdate> Updates
        {
            get
            {
                lock (_lock)
                {
                    return [.. _updates];
                }
            }
        }

        public Task<UpdateResult> UpdateAsync(ZoneUpdate update, CancellationToken cancel)
        {
            lock (_lock)
            {
                Attempts++;
                if (FailNext > 0)
                {
                    FailNext--;
                    return Task.FromResult(new UpdateResult(UpdateStatus.Failed, "SERVFAIL"));
                }

                if (PrerequisiteFailsNext && !update.Full)
                {
                    PrerequisiteFailsNext = false;
                    return Task.FromResult(new UpdateResult(UpdateStatus.PrerequisiteFailed, "NXRRSET"));
                }

                _updates.Add(update);
                return Task.FromResult(UpdateResult.Ok);
            }
        }

        public Task<IReadOnlyList<string>> ReadTxtAsync(string name, CancellationToken cancel)
        {
            lock (_lock)
            {
                if (FailReads > 0)
                {
                    FailReads--;
                    throw new IOException("connection refused");
                }
            }

            return Task.FromResult(Registry);
        }
    }
}
