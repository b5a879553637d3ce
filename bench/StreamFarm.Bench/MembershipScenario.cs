using System.Globalization;

namespace StreamFarm.Bench;

/// <summary>
/// One system, one farm size: N member processes on 127.0.X.1..N, then in order
/// (1) join: member 1 (everyone's seed) is started and answers; then members 2..N are started at once,
/// and timed until every member shows N alive;
/// (2) status: member 2's users go from 0 to 1 until every member shows users=1;
/// (5) for large enough farms, false deaths: member 3 stopped (SIGSTOP) then continued, then member 4's
/// core saturated, each followed by an observation window;
/// (4) rest: after a settling pause (and no sooner than a minimum uptime), with polling stopped,
/// gossip packets and bytes per member (nftables) and CPU per member over the rest interval;
/// (6) with <see cref="MembershipSettings.JoinOne"/>, one more member is started until every member shows it alive;
/// (3) death: kill -9 of the last member started until every other member shows it dead.
/// With <see cref="MembershipSettings.FarmClient"/>, an RTTP client of the seed (a StreamFarm farm) logs
/// the FARM table lines it is sent during each phase.
/// Every process is killed at the end, whatever happened.
/// </summary>
internal sealed class MembershipScenario(MembershipSettings settings, string system, int size, string subnet, int first, ServerLauncher? streamFarm, string? serf, string key, Action<string> log)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public async Task<MembershipResult> RunAsync(CancellationToken cancel)
    {
        var result = new MembershipResult { System = system, Size = size };
        var members = new List<MembershipMember>();
        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, ConnectTimeout = TimeSpan.FromSeconds(1) }) { Timeout = Timeout.InfiniteTimeSpan };
        NftCounters? nft = null;
        MembershipPoller? poller = null;
        CpuHog? hog = null;
        FarmLinesClient? watcher = null;
        try
        {
            var hosts = size + (settings.JoinOne ? 1 : 0);
            var ips = Enumerable.Range(first, hosts).Select(i => $"{subnet}.{i}").ToList();
            var ids = Enumerable.Range(1, hosts).Select(i => system == "serf" ? $"n{i}" : $"s{i}").ToList();
            var farmIds = ids.Take(size).ToList(); // the farm before one more member joins
            var port = system == "serf" ? SerfAgent.GossipPort : settings.StreamFarmGossipPort;
            (nft, var problem) = await NftCounters.CreateAsync(cancel, settings.Subnet is { } shared ? $"{NftCounters.DefaultTable}_{shared.Replace('.', '_')}" : NftCounters.DefaultTable);
            if (problem is not null)
            {
                result.Problems.Add(problem);
            }

            if (nft is not null)
            {
                await nft.AddAsync($"{subnet}.0/24", port, cancel);
            }

            // (1) Join: the seed first (a farm to join), then all the others at once.
            MembershipMember Start(int i)
            {
                MembershipMember m = system == "serf"
                    ? new SerfAgent(serf!, ids[i], ips[i], i == 0 ? null : $"{ips[0]}:{port}", key)
                    : new StreamFarmMember(streamFarm!, http, ids[i], ips[i], port, $"{ips[0]}:{port}", key, system);
                members.Add(m);
                poller.Add(m);
                return m;
            }

            poller = new MembershipPoller(settings.PollInterval, settings.PollTimeout);
            var seedUp = poller.Expect([ids[0]], v => v.ContainsKey(ids[0]));
            Start(0);
            if (await seedUp.WaitAsync(settings.Timeout, cancel) is null)
            {
                throw new BenchException($"the seed {ids[0]} did not answer within {settings.Timeout.TotalSeconds:0} s; {Describe(members)}");
            }

            if (settings.FarmClient && members[0] is StreamFarmMember seedMember)
            {
                watcher = await seedMember.WatchFarmAsync(cancel);
            }

            var joined = poller.Expect(farmIds, v => v.Count == size && v.Values.All(m => m.Liveness == "alive"));
            var cpu0 = CpuNow(members);
            var t0 = poller.Now;
            var ts0 = System.Diagnostics.Stopwatch.GetTimestamp();
            for (var i = 1; i < size; i++)
            {
                Start(i);
            }

            result.Command = members[Math.Min(1, size - 1)].CommandLine.Replace(key, "KEY", StringComparison.Ordinal);
            var joinedAt = await joined.WaitAsync(settings.Timeout, cancel);
            result.Join = joinedAt - t0;
            result.LastReady = members.Skip(1).All(m => m.ReadyTimestamp != 0) ? members.Skip(1).Max(m => poller.At(m.ReadyTimestamp)) - t0 : null;
            if (joined.Times.Count == size)
            {
                result.SeedSeesAll = joined.Times[ids[0]] - t0;
                var slowest = joined.Times.MaxBy(kv => kv.Value);
                var lacked = joined.LastUnsatisfied.TryGetValue(slowest.Key, out var last)
                    ? string.Join(", ", farmIds.Where(id => !last.TryGetValue(id, out var m) || m.Liveness != "alive").Select(id => last.TryGetValue(id, out var m) ? $"{id} {m.Liveness}" : $"{id} missing"))
                    : "";
                result.SlowestObserver = string.Create(Inv, $"{slowest.Key} at {(slowest.Value - t0).TotalMilliseconds:0} ms (its view just before: {(lacked.Length > 0 ? lacked : "none: its first answer already showed all alive")}); median member {(joined.Times.Values.Order().ElementAt(size / 2) - t0).TotalMilliseconds:0} ms");
            }

            if (joinedAt is null)
            {
                throw new BenchException($"the farm did not converge within {settings.Timeout.TotalSeconds:0} s; {Describe(members)}");
            }

            log(string.Create(Inv, $"  joined: all see all alive at {Ms(result.Join)} (last process up at {Ms(result.LastReady)}, the seed saw all at {Ms(result.SeedSeesAll)}, slowest view: {result.SlowestObserver})"));
            await Task.Delay(settings.PollInterval * 5, cancel);
            if (watcher is not null)
            {
                result.FarmJoin = await FarmWindowAsync(watcher, ts0, FarmJoinTail, cancel);
                result.FarmTableBytes = await watcher.TableBytesAsync(TimeSpan.FromSeconds(10), cancel);
                log($"  FARM lines to a client of the seed: join {Describe(result.FarmJoin)}, whole table {result.FarmTableBytes} B");
            }

            // (2) Status change.
            var changed = members[Math.Min(1, size - 1)];
            result.ChangedMember = changed.Id;
            var seen = poller.Expect(farmIds, v => v.TryGetValue(changed.Id, out var m) && m.Users == 1);
            var t2 = poller.Now;
            var ts2 = System.Diagnostics.Stopwatch.GetTimestamp();
            await changed.ChangeStatusAsync(cancel);
            result.Status = await seen.WaitAsync(settings.Timeout, cancel) - t2;
            log($"  status change: users=1 seen by all after {Ms(result.Status)}");
            if (watcher is not null)
            {
                result.FarmStatus = await FarmWindowAsync(watcher, ts2, FarmTail, cancel);
                log($"  FARM lines to a client of the seed: status change {Describe(result.FarmStatus)}");
            }

            result.OtherCoresJoin = OtherCores(cpu0, CpuNow(members));
            log(string.Create(Inv, $"  other work on the machine during join and status: {result.OtherCoresJoin:0.00} cores"));
            if (result.Status is null)
            {
                result.Problems.Add($"the status change of {changed.Id} did not reach every member within {settings.Timeout.TotalSeconds:0} s");
            }

            // (5) False deaths.
            (TimeSpan From, TimeSpan To)? pauseWindow = null;
            (TimeSpan From, TimeSpan To)? hogWindow = null;
            if (size >= settings.FaultsFromSize && size >= 5)
            {
                result.Faults = true;
                var paused = members[2];
                result.PausedMember = paused.Id;
                var tp = poller.Now;
                paused.Signal(NativeMethods.SigStop);
                await Task.Delay(settings.Pause, cancel);
                paused.Signal(NativeMethods.SigCont);
                await Task.Delay(settings.AfterFault, cancel);
                pauseWindow = (tp, poller.Now);
                log($"  SIGSTOP {settings.Pause.TotalSeconds:0.#} s of {paused.Id}: {Count(poller, pauseWindow.Value, [])}");

                var saturated = members[3];
                result.SaturatedMember = saturated.Id;
                var th = poller.Now;
                hog = await CpuHog.StartAsync(saturated, members.Where(m => m != saturated), settings.Hogs);
                await Task.Delay(settings.Saturation, cancel);
                await hog.DisposeAsync();
                hog = null;
                await Task.Delay(settings.AfterFault, cancel);
                hogWindow = (th, poller.Now);
                log($"  CPU saturation {settings.Saturation.TotalSeconds:0.#} s of {saturated.Id}: {Count(poller, hogWindow.Value, [])}");
            }

            // (4) At rest.
            var uptime = poller.Now - t0;
            await Task.Delay(settings.Settle > settings.MinUptime - uptime ? settings.Settle : settings.MinUptime - uptime, cancel);
            poller.Pause(true);
            await Task.Delay(settings.PollTimeout, cancel); // polls under way end
            var tsRest = System.Diagnostics.Stopwatch.GetTimestamp();
            await MeasureRestAsync(members, nft, result, settings.Rest, cancel);
            if (watcher is not null)
            {
                var (bytes, lines) = watcher.Deltas(tsRest, System.Diagnostics.Stopwatch.GetTimestamp());
                result.FarmRest = new FarmDelta(bytes, lines, System.Diagnostics.Stopwatch.GetElapsedTime(tsRest).TotalSeconds);
            }

            poller.Pause(false);
            log(string.Create(Inv, $"  at rest: {result.PacketsPerSecond:0.00} packets/s ({result.TcpPackets:0.00} TCP), {result.Bytes:0} B/s, CPU {result.CpuMillis:0.0} ms/s per member, other work on the machine {result.OtherCoresRest:0.00} cores{(result.SelfPackets is { } sp ? $"; self-reported {sp:0.00} packets/s, {result.SelfBytes:0} B/s" : "")}{(result.FarmRest is { } fr ? $"; FARM lines to a client {fr.BytesPerSecond:0.0} B/s" : "")}"));
            await Task.Delay(settings.PollInterval * 5, cancel); // fresh views before the next phase

            // (7) Churn: every member's users count goes up and down.
            if (settings.Churn > TimeSpan.Zero)
            {
                await ChurnAsync(poller, members, nft, watcher, result, cancel);
                await Task.Delay(TimeSpan.FromSeconds(1), cancel); // the last changes spread
            }

            // (6) One more member joins the running farm.
            if (settings.JoinOne)
            {
                var newcomer = ids[size];
                var seenAlive = poller.Expect(ids, v => v.TryGetValue(newcomer, out var m) && m.Liveness == "alive");
                var tj = poller.Now;
                var tsj = System.Diagnostics.Stopwatch.GetTimestamp();
                Start(size);
                result.JoinOne = await seenAlive.WaitAsync(settings.Timeout, cancel) - tj;
                log($"  one more member {newcomer}: seen alive by all after {Ms(result.JoinOne)}");
                if (result.JoinOne is null)
                {
                    result.Problems.Add($"the join of {newcomer} was not seen by every member within {settings.Timeout.TotalSeconds:0} s");
                }

                if (watcher is not null)
                {
                    result.FarmJoinOne = await FarmWindowAsync(watcher, tsj, FarmTail, cancel);
                    log($"  FARM lines to a client of the seed: one more member {Describe(result.FarmJoinOne)}");
                }

                await Task.Delay(settings.PollInterval * 5, cancel);
            }

            // (3) Death.
            var victim = members[^1];
            result.KilledMember = victim.Id;
            var remaining = ids.Where(id => id != victim.Id).ToList();
            var dead = poller.Expect(remaining, v => v.TryGetValue(victim.Id, out var m) && m.Liveness == "dead");
            var tk = poller.Now;
            var tsk = System.Diagnostics.Stopwatch.GetTimestamp();
            victim.Signal(NativeMethods.SigKill);
            poller.Ignore(victim.Id);
            var deadAt = await dead.WaitAsync(settings.Timeout, cancel);
            result.Death = deadAt - tk;
            log($"  kill -9 of {victim.Id}: dead on all others after {Ms(result.Death)}");
            if (deadAt is null)
            {
                result.Problems.Add($"the death of {victim.Id} was not known by every member within {settings.Timeout.TotalSeconds:0} s");
            }

            if (watcher is not null)
            {
                result.FarmDeath = await FarmWindowAsync(watcher, tsk, FarmTail, cancel);
                log($"  FARM lines to a client of the seed: kill -9 {Describe(result.FarmDeath)}");
            }

            await Task.Delay(settings.PollInterval * 5, cancel);
            Classify(poller, result, pauseWindow, hogWindow, tk, victim.Id);
        }
        catch (BenchException e)
        {
            result.Problems.Add(e.Message);
            log($"  FAILED: {e.Message}");
        }
        finally
        {
            if (poller is not null)
            {
                result.Polls = poller.Answers;
                result.PollFailures = poller.Failures;
                await poller.DisposeAsync();
            }

            if (hog is not null)
            {
                await hog.DisposeAsync();
            }

            if (watcher is not null)
            {
                await watcher.DisposeAsync();
            }

            await Task.WhenAll(members.Select(m => m.DisposeAsync().AsTask()));
            if (nft is not null)
            {
                await nft.DisposeAsync();
            }
        }

        return result;
    }

    /// <summary>
    /// Every member's users count changes <see cref="MembershipSettings.ChurnRate"/> times a second
    /// (each member on its own loop); after a second of warm-up, traffic, CPU and the FARM lines to the
    /// seed's client are measured over <see cref="MembershipSettings.Churn"/>, polling stopped.
    /// </summary>
    private async Task ChurnAsync(MembershipPoller poller, List<MembershipMember> members, NftCounters? nft, FarmLinesClient? watcher, MembershipResult result, CancellationToken cancel)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var period = TimeSpan.FromSeconds(1 / settings.ChurnRate);
        long changes = 0;
        var measuring = false;
        string? failure = null;
        var loops = members.Select(m => Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(period);
            try
            {
                while (await timer.WaitForNextTickAsync(stop.Token))
                {
                    await m.ToggleUserAsync(stop.Token);
                    if (Volatile.Read(ref measuring))
                    {
                        Interlocked.Increment(ref changes);
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // done
            }
            catch (Exception e) when (e is BenchException or IOException or System.Net.Sockets.SocketException or InvalidDataException or ObjectDisposedException)
            {
                Interlocked.CompareExchange(ref failure, $"churn on {m.Id}: {e.Message}", null);
            }
        })).ToList();
        var window = new MembershipResult { System = system, Size = size };
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancel);
            poller.Pause(true);
            var ts = System.Diagnostics.Stopwatch.GetTimestamp();
            Volatile.Write(ref measuring, true);
            await MeasureRestAsync(members, nft, window, settings.Churn, cancel);
            Volatile.Write(ref measuring, false);
            var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(ts).TotalSeconds;
            if (watcher is not null)
            {
                var (bytes, lines) = watcher.Deltas(ts, System.Diagnostics.Stopwatch.GetTimestamp());
                result.FarmChurn = new FarmDelta(bytes, lines, seconds);
            }

            result.ChurnWindow = window;
            result.ChurnChanges = Interlocked.Read(ref changes) / (members.Count * seconds);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(loops);
            poller.Pause(false);
        }

        if (failure is not null)
        {
            result.Problems.Add(failure);
        }

        log(string.Create(Inv, $"  churn: {result.ChurnChanges:0.0} users changes per member and second: {window.PacketsPerSecond:0.00} packets/s ({window.UdpPackets:0.00} UDP), {window.Bytes:0} B/s, CPU {window.CpuMillis:0.0} ms/s per member, other work {window.OtherCoresRest:0.00} cores{(result.FarmChurn is { } f ? $"; FARM lines to a client {f.BytesPerSecond:0} B/s, {f.LinesPerSecond:0.0} lines/s" : "")}"));
    }

    /// <summary>How long FARM lines still count after the phase's outcome was seen by all: a join's (members turn active after they joined), and the others'.</summary>
    private static readonly TimeSpan FarmJoinTail = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan FarmTail = TimeSpan.FromSeconds(1);

    /// <summary>Waits <paramref name="tail"/>, then returns the FARM deltas the client got since <paramref name="from"/>.</summary>
    private static async Task<FarmDelta> FarmWindowAsync(FarmLinesClient watcher, long from, TimeSpan tail, CancellationToken cancel)
    {
        await Task.Delay(tail, cancel);
        var to = System.Diagnostics.Stopwatch.GetTimestamp();
        var (bytes, lines) = watcher.Deltas(from, to);
        return new FarmDelta(bytes, lines, System.Diagnostics.Stopwatch.GetElapsedTime(from, to).TotalSeconds);
    }

    private static string Describe(FarmDelta? d) => d is { } v ? string.Create(Inv, $"{v.Bytes} B in {v.Lines} lines over {v.Seconds:0.0} s") : "—";

    /// <summary>Machine busy ticks, members' ticks and the harness's own CPU time, now.</summary>
    private static (long Machine, long Members, TimeSpan Harness, long Timestamp) CpuNow(List<MembershipMember> members)
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return (MachineCpu.BusyTicks(), members.Sum(m => m.CpuTicks() ?? 0), self.TotalProcessorTime, System.Diagnostics.Stopwatch.GetTimestamp());
    }

    private static double? OtherCores((long Machine, long Members, TimeSpan Harness, long Timestamp) a, (long Machine, long Members, TimeSpan Harness, long Timestamp) b)
    {
        if (a.Machine == 0 || b.Machine == 0)
        {
            return null;
        }

        var hz = (double)NativeMethods.ClockTicksPerSecond();
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(a.Timestamp, b.Timestamp).TotalSeconds;
        var other = ((b.Machine - a.Machine) / hz) - ((b.Members - a.Members) / hz) - (b.Harness - a.Harness).TotalSeconds;
        return seconds > 0 ? Math.Max(0, other / seconds) : null;
    }

    private static string Ms(TimeSpan? t) => t is { } v ? string.Create(Inv, $"{v.TotalMilliseconds:0} ms") : "(not reached)";

    private static string Describe(IEnumerable<MembershipMember> members) =>
        string.Join("; ", members.Where(m => m.HasExited).Select(m => $"{m.Id} exited: {string.Join(" | ", m.RecentOutput())}").DefaultIfEmpty("every process is running"));

    private static string Count(MembershipPoller poller, (TimeSpan From, TimeSpan To) window, HashSet<string> excluded)
    {
        var verdicts = poller.Verdicts.Where(v => v.At >= window.From && v.At <= window.To && !excluded.Contains(v.Member)).ToList();
        var dead = verdicts.Where(v => v.Liveness == "dead").ToList();
        return $"{dead.Count} dead verdict(s) about {dead.Select(v => v.Member).Distinct().Count()} member(s), {verdicts.Count - dead.Count} suspect verdict(s)";
    }

    private static void Classify(MembershipPoller poller, MembershipResult result, (TimeSpan From, TimeSpan To)? pause, (TimeSpan From, TimeSpan To)? hog, TimeSpan killedAt, string victim)
    {
        foreach (var v in poller.Verdicts)
        {
            if (v.Member == victim && v.At >= killedAt)
            {
                continue; // the true death
            }

            if (v.Member == victim && v.At < killedAt && (pause is null || v.At < pause.Value.From || v.At > pause.Value.To) && (hog is null || v.At < hog.Value.From || v.At > hog.Value.To))
            {
                result.EarlyVerdictsOnVictim.Add(new VerdictRecord(v.At.TotalSeconds, v.Observer, v.Member, v.Liveness));
                continue;
            }

            if (pause is { } p && v.At >= p.From && v.At <= p.To)
            {
                result.PauseVerdicts.Add(new VerdictRecord((v.At - p.From).TotalSeconds, v.Observer, v.Member, v.Liveness));
            }
            else if (hog is { } h && v.At >= h.From && v.At <= h.To)
            {
                result.SaturationVerdicts.Add(new VerdictRecord((v.At - h.From).TotalSeconds, v.Observer, v.Member, v.Liveness));
            }
            else
            {
                result.OtherVerdicts.Add(new VerdictRecord(v.At.TotalSeconds, v.Observer, v.Member, v.Liveness));
            }
        }
    }

    private async Task MeasureRestAsync(List<MembershipMember> members, NftCounters? nft, MembershipResult result, TimeSpan duration, CancellationToken cancel)
    {
        NftCounters.Traffic? before = nft is null ? null : await nft.ReadAsync(cancel);
        var selfBefore = await SelfReportedAsync(members, cancel);
        var cpuBefore = members.Select(m => m.CpuTicks()).ToList();
        var machineBefore = CpuNow(members);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.Delay(duration, cancel);
        NftCounters.Traffic? after = nft is null ? null : await nft.ReadAsync(cancel);
        var cpuAfter = members.Select(m => m.CpuTicks()).ToList();
        result.OtherCoresRest = OtherCores(machineBefore, CpuNow(members));
        var selfAfter = await SelfReportedAsync(members, cancel);
        var seconds = clock.Elapsed.TotalSeconds;
        result.RestSeconds = seconds;
        var perMemberSecond = members.Count * seconds;
        if (before is { } b && after is { } a)
        {
            var total = a - b;
            result.UdpPackets = total.UdpPackets / perMemberSecond;
            result.TcpPackets = total.TcpPackets / perMemberSecond;
            result.UdpBytes = total.UdpBytes / perMemberSecond;
            result.Bytes = (total.UdpBytes + total.TcpBytes) / perMemberSecond;
        }

        if (selfBefore is not null && selfAfter is not null)
        {
            result.SelfPackets = (selfAfter.Value.Packets - selfBefore.Value.Packets) / perMemberSecond;
            result.SelfBytes = (selfAfter.Value.Bytes - selfBefore.Value.Bytes) / perMemberSecond;
        }

        if (cpuBefore.All(c => c is not null) && cpuAfter.All(c => c is not null))
        {
            var ticks = cpuAfter.Zip(cpuBefore, (a, b) => a!.Value - b!.Value).Sum();
            result.CpuMillis = ticks * 1000.0 / NativeMethods.ClockTicksPerSecond() / perMemberSecond;
        }
    }

    /// <summary>StreamFarm members' own gossip-sent counters summed; null for serf or when a member did not answer.</summary>
    private static async Task<(double Packets, double Bytes)?> SelfReportedAsync(List<MembershipMember> members, CancellationToken cancel)
    {
        if (members.Any(m => m is not StreamFarmMember))
        {
            return null;
        }

        double packets = 0;
        double bytes = 0;
        foreach (var m in members.Cast<StreamFarmMember>())
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            if (await m.GossipSentAsync(timeout.Token) is not { } sent)
            {
                return null;
            }

            packets += sent.Packets;
            bytes += sent.Bytes;
        }

        return (packets, bytes);
    }
}
