using System.Globalization;
using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Dns.Sync;

/// <summary>
/// Keeps a zone on an existing authoritative server (Knot, BIND, PowerDNS...) in step with the farm
/// table, by RFC 2136 dynamic updates: the service name's A/AAAA RRsets hold the alive and active
/// servers, <c>&lt;id&gt;.&lt;zone&gt;</c> the address of each alive server.
/// <para>
/// Feed it snapshots with <see cref="Notify"/> (only the latest counts) and run <see cref="RunAsync"/>.
/// The first update after start, after a failure and every <see cref="DnsSyncOptions.ResyncInterval"/>
/// is a full resync: every RRset we manage is replaced unconditionally, including the names listed in
/// the zone's registry TXT RRset by an earlier run. Between those, an update carries only the RRsets
/// that changed since the last applied one, each with the old content as a prerequisite; when the zone
/// is not what we last wrote (someone edited it, the server lost its journal), the prerequisite fails
/// and a full resync follows at once. Failed updates are retried with exponential backoff and jitter,
/// always from the newest snapshot.
/// </para>
/// </summary>
public sealed class DnsSync : IDisposable
{
    private readonly DnsSyncOptions _options;
    private readonly IDnsUpdateClient _client;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly Random _random;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly Lock _lock = new();
    private readonly Lock _randomLock = new();
    private readonly List<(long Version, TaskCompletionSource Done)> _waiters = [];
    private FarmSnapshot? _latest;
    private long _appliedVersion = -1;
    private long _updates;
    private long _failures;

    public DnsSync(DnsSyncOptions options, IDnsUpdateClient client, TimeProvider? time = null, Action<string>? log = null, Random? random = null)
    {
        options.Validate();
        _options = options;
        _client = client;
        _time = time ?? TimeProvider.System;
        _log = log ?? (_ => { });
        _random = random ?? new Random();
    }

    /// <summary>Version of the newest snapshot whose records the server has accepted; -1 before the first.</summary>
    public long AppliedVersion => Interlocked.Read(ref _appliedVersion);

    /// <summary>Updates the server accepted.</summary>
    public long Updates => Interlocked.Read(ref _updates);

    /// <summary>Updates that failed (and were retried).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>What the last failure said, or null after a success.</summary>
    public string? LastError { get; private set; }

    /// <summary>Hands over the newest farm table; cheap, callable from the membership's change event.</summary>
    public void Notify(FarmSnapshot snapshot)
    {
        lock (_lock)
        {
            if (_latest is not null && snapshot.Version < _latest.Version)
            {
                return; // events can race: never go back to an older table
            }

            _latest = snapshot;
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
    }

    /// <summary>Completes when the records of snapshot <paramref name="version"/> (or a newer one) are on the server.</summary>
    public Task WaitForVersionAsync(long version, CancellationToken cancel = default)
    {
        TaskCompletionSource done;
        lock (_lock)
        {
            if (AppliedVersion >= version)
            {
                return Task.CompletedTask;
            }

            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((version, done));
        }

        return done.Task.WaitAsync(cancel);
    }

    /// <summary>Runs until cancelled: waits for tables, sends updates, retries. Never throws but for cancellation.</summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        var applied = new SortedDictionary<RRsetKey, string[]>();
        var full = true;
        var lastFull = _time.GetTimestamp();
        var backoff = _options.RetryMin;
        while (true)
        {
            FarmSnapshot? snapshot;
            lock (_lock)
            {
                snapshot = _latest;
            }

            if (snapshot is not null && (full || snapshot.Version != AppliedVersion))
            {
                var result = full ? await ResyncAsync(snapshot, applied, cancel) : await ApplyChangesAsync(snapshot, applied, cancel);
                switch (result.Status)
                {
                    case UpdateStatus.Applied:
                        if (full)
                        {
                            lastFull = _time.GetTimestamp();
                        }

                        full = false;
                        backoff = _options.RetryMin;
                        LastError = null;
                        Applied(snapshot.Version);
                        continue; // a newer table may have come meanwhile

                    case UpdateStatus.PrerequisiteFailed:
                        Interlocked.Increment(ref _failures);
                        _log($"dns-sync: the zone is not what we last wrote ({result.Detail}); resyncing it fully");
                        full = true;
                        continue;

                    default:
                        Interlocked.Increment(ref _failures);
                        LastError = result.Detail;
                        full = true; // the update may or may not have been applied: state unknown
                        var wait = Jitter(backoff);
                        _log(string.Create(CultureInfo.InvariantCulture, $"dns-sync: update failed: {result.Detail}; retrying in {wait.TotalSeconds:0.0} s"));
                        await Task.Delay(wait, _time, cancel);
                        backoff = TimeSpan.FromTicks(Math.Min(_options.RetryMax.Ticks, backoff.Ticks * 2));
                        continue;
                }
            }

            var untilResync = _options.ResyncInterval > TimeSpan.Zero && snapshot is not null
                ? _options.ResyncInterval - _time.GetElapsedTime(lastFull)
                : Timeout.InfiniteTimeSpan;
            if (untilResync != Timeout.InfiniteTimeSpan && untilResync <= TimeSpan.Zero)
            {
                full = true;
                continue;
            }

            if (!await _wake.WaitAsync(untilResync, cancel))
            {
                full = true; // periodic: repair whatever others changed in the zone
            }
        }
    }

    /// <summary>Call after <see cref="RunAsync"/> has ended.</summary>
    public void Dispose() => _wake.Dispose();

    /// <summary>The changes (with prerequisites) that turn <paramref name="applied"/> into <paramref name="desired"/>.</summary>
    internal static List<RRsetChange> Diff(IReadOnlyDictionary<RRsetKey, string[]> applied, IReadOnlyDictionary<RRsetKey, string[]> desired)
    {
        var changes = new List<RRsetChange>();
        foreach (var key in applied.Keys.Union(desired.Keys).Order())
        {
            var before = applied.GetValueOrDefault(key) ?? [];
            var after = desired.GetValueOrDefault(key) ?? [];
            if (!before.SequenceEqual(after, StringComparer.Ordinal))
            {
                changes.Add(new RRsetChange(key, before, after));
            }
        }

        return changes;
    }

    private async Task<UpdateResult> ApplyChangesAsync(FarmSnapshot snapshot, SortedDictionary<RRsetKey, string[]> applied, CancellationToken cancel)
    {
        var desired = ZoneRecords.From(snapshot, _options);
        var changes = Diff(applied, desired.Sets);
        if (changes.Count == 0)
        {
            return UpdateResult.Ok; // a change the zone does not show (users, capacity, a joining server)
        }

        var result = await SendAsync(new ZoneUpdate(_options.ZoneName, _options.Ttl, changes, Full: false), snapshot, cancel);
        if (result.Status == UpdateStatus.Applied)
        {
            Replace(applied, desired);
        }

        return result;
    }

    private async Task<UpdateResult> ResyncAsync(FarmSnapshot snapshot, SortedDictionary<RRsetKey, string[]> applied, CancellationToken cancel)
    {
        IReadOnlyList<string> registered;
        try
        {
            registered = await _client.ReadTxtAsync(_options.RegistryName, cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new UpdateResult(UpdateStatus.Failed, $"cannot read {_options.RegistryName} TXT: {e.Message}");
        }

        var desired = ZoneRecords.From(snapshot, _options);

        // Every name we may have written: the registry's (an earlier run's), ours, the table's.
        var keys = new SortedSet<RRsetKey>(desired.Sets.Keys);
        keys.UnionWith(applied.Keys);
        foreach (var label in registered.Select(l => l.ToLowerInvariant()).Where(ZoneRecords.IsLabel))
        {
            keys.UnionWith(ZoneRecords.ServerKeys(label, _options));
        }

        foreach (var label in desired.Servers)
        {
            keys.UnionWith(ZoneRecords.ServerKeys(label, _options));
        }

        var changes = keys.Select(k => new RRsetChange(k, null, desired.Sets.GetValueOrDefault(k) ?? [])).ToList();
        var result = await SendAsync(new ZoneUpdate(_options.ZoneName, _options.Ttl, changes, Full: true), snapshot, cancel);
        if (result.Status == UpdateStatus.Applied)
        {
            Replace(applied, desired);
        }

        return result;
    }

    private async Task<UpdateResult> SendAsync(ZoneUpdate update, FarmSnapshot snapshot, CancellationToken cancel)
    {
        UpdateResult result;
        try
        {
            result = await _client.UpdateAsync(update, cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result = new UpdateResult(UpdateStatus.Failed, e.Message); // a client must not stop the loop
        }

        if (result.Status == UpdateStatus.Applied)
        {
            Interlocked.Increment(ref _updates);
            _log($"dns-sync: {(update.Full ? "full resync" : "update")} for farm table v{snapshot.Version}: {Describe(update)}");
        }

        return result;
    }

    private static void Replace(SortedDictionary<RRsetKey, string[]> applied, ZoneRecords desired)
    {
        applied.Clear();
        foreach (var (key, values) in desired.Sets)
        {
            applied[key] = values;
        }
    }

    private void Applied(long version)
    {
        List<TaskCompletionSource> done;
        lock (_lock)
        {
            Interlocked.Exchange(ref _appliedVersion, Math.Max(version, AppliedVersion));
            done = [.. _waiters.Where(w => w.Version <= version).Select(w => w.Done)];
            _waiters.RemoveAll(w => w.Version <= version);
        }

        foreach (var d in done)
        {
            d.TrySetResult();
        }
    }

    private TimeSpan Jitter(TimeSpan backoff)
    {
        double factor;
        lock (_randomLock)
        {
            factor = 0.5 + _random.NextDouble(); // 0.5x to 1.5x: retries of many syncs do not align
        }

        return TimeSpan.FromTicks((long)(backoff.Ticks * factor));
    }

    /// <summary>One line: the service name's addresses and the per-server names that changed.</summary>
    private static string Describe(ZoneUpdate update)
    {
        var s = new StringBuilder();
        foreach (var c in update.Changes.Where(c => c.Key.Kind != RecordKind.Txt && (update.Full ? c.After.Count > 0 : true)))
        {
            if (s.Length > 0)
            {
                s.Append("; ");
            }

            s.Append(c.Key.ToString()).Append(' ').Append(c.After.Count == 0 ? "(none)" : string.Join(' ', c.After));
        }

        return s.Length == 0 ? "no address records" : s.ToString();
    }
}
