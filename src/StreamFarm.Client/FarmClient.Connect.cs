using System.Net;
using StreamFarm.Client.Selection;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>The connect loop: discovery, choice, move, serve, retry, rediscovery.</summary>
public sealed partial class FarmClient
{
    private async Task RunAsync()
    {
        var cancel = _stop.Token;
        var time = _options.Connection.Time;
        var round = 0;
        var lostAt = time.GetTimestamp();
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                if (round > 1)
                {
                    // The first rediscovery after a loss goes at once (claim 14); only failed rounds
                    // back off, with jitter.
                    var delay = _policy.NextDelay(new RetryContext(round - 2, time.GetElapsedTime(lostAt)));
                    if (delay is null)
                    {
                        Step(StepKind.Failed, "giving up: the reconnect policy allows no more rounds");
                        SetState(FarmClientState.Stopped);
                        _firstConnect.TrySetException(new RttpConnectionException($"cannot reach a server of {_options.ServiceName}"));
                        var gaveUp = new RttpConnectionException($"lost the farm {_options.ServiceName}");
                        CompleteStreams(gaveUp);
                        _messages.Complete(gaveUp);
                        return;
                    }

                    await Task.Delay(delay.Value, time, cancel);
                    Step(StepKind.Rediscovered, $"asking for {_options.ServiceName} again (round {round}, waited {delay.Value.TotalMilliseconds:0} ms)");
                }
                else if (round == 1)
                {
                    Step(StepKind.Rediscovered, $"asking for {_options.ServiceName} again");
                }

                round++;
                var connection = await DiscoverAsync(cancel);
                while (connection is not null)
                {
                    var endpoint = connection.Endpoint;
                    var outcome = await ServeAsync(connection, cancel);
                    if (outcome.Kind == OutcomeKind.Stopped)
                    {
                        await connection.DisposeAsync();
                        return;
                    }

                    round = 0;
                    lostAt = time.GetTimestamp();
                    LostServer(connection, outcome.Text);
                    if (outcome.Kind == OutcomeKind.Move)
                    {
                        Step(StepKind.Lost, $"server {connection.ServerId} asks clients to move: {outcome.Text}");
                        connection = await MoveAsync(connection, cancel);
                        continue;
                    }

                    Step(StepKind.Lost, $"server {connection.ServerId} at {endpoint}: {outcome.Text}");
                    Suspect(connection.ServerId, endpoint);
                    await ClearAsync(connection);

                    // Claim 13: try the same server once more.
                    Step(StepKind.Retried, $"trying {endpoint} once more");
                    connection = await TryConnectAsync(endpoint, cancel);
                    if (connection is not null)
                    {
                        await ActivateAsync(connection, cancel);
                    }
                    else
                    {
                        Step(StepKind.Failed, $"{endpoint} did not answer the retry; asking for the service again");
                    }
                }

                round = Math.Max(round, 1); // claim 14: rediscover, after a jittered pause
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // disposed
        }
    }

    /// <summary>Resolve, first server, table, choose, move (make-before-break), subscribe.</summary>
    private async Task<RttpConnection?> DiscoverAsync(CancellationToken cancel)
    {
        IReadOnlyList<IPAddress> addresses;
        try
        {
            addresses = await _options.Resolver.ResolveAsync(_options.ServiceName, cancel);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancel.IsCancellationRequested)
        {
            Step(StepKind.Failed, $"resolving {_options.ServiceName} failed: {ex.Message}");
            return null;
        }

        if (addresses.Count == 0)
        {
            Step(StepKind.Failed, $"{_options.ServiceName} has no address (no healthy server?)");
            return null;
        }

        Step(StepKind.Resolved, $"{_options.ServiceName} -> {string.Join(", ", addresses)}");

        // A warm standby was chosen by the selector from a farm table it keeps current: take it.
        if (await TakeStandbyAsync() is { } standby)
        {
            var c = standby.Connection;
            Step(StepKind.Chosen, $"{c.ServerId}: the standby, table v{c.Farm.Version}");
            Step(StepKind.Moved, $"moved to the standby {c.ServerId} at {c.Endpoint}");
            await PromoteAsync(standby, cancel);
            return c;
        }

        // DNS may still hand out the server just lost (TTL, membership delay): when it names only
        // such servers, pass over the answer and choose from the farm table already held.
        if (addresses.All(a => IsSuspected($"{a}:{_options.Port}")) && await ChooseFromHeldTableAsync(addresses, cancel) is { } held)
        {
            return held;
        }

        RttpConnection? first = null;

        // DNS may still hand out the server just lost (TTL, membership delay): try it last.
        foreach (var address in addresses.OrderBy(a => IsSuspected($"{a}:{_options.Port}") ? 1 : 0))
        {
            first = await TryConnectAsync($"{address}:{_options.Port}", cancel);
            if (first is not null)
            {
                break;
            }
        }

        if (first is null)
        {
            return null;
        }

        Step(StepKind.FirstServer, $"first server {first.ServerId} at {first.Endpoint}");
        var table = first.Farm;
        Volatile.Write(ref _table, table);
        Step(StepKind.TableReceived, $"farm table v{table.Version}: {string.Join(", ", table.Members.Select(m => $"{m.Id} {m.State}/{m.Liveness} {m.Users}/{m.Capacity}{(m.Group == "default" ? "" : " " + m.Group)}"))}");

        var excluded = new HashSet<string>(StringComparer.Ordinal);
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var choice = Choose(table, excluded);
            if (choice is null)
            {
                Step(StepKind.Failed, $"no acceptable server in table v{table.Version}");
                await first.DisposeAsync();
                return null;
            }

            Step(StepKind.Chosen, choice.Reason);
            if (choice.Server.Id == first.ServerId)
            {
                Step(StepKind.Moved, $"staying on {first.ServerId}: the first server is the chosen one");
                await ActivateAsync(first, cancel);
                return first;
            }

            var chosen = await TryConnectAsync(AddressOf(choice.Server), cancel);
            if (chosen is null && _lastRefusal == RttpErrorCode.None)
            {
                // Claim 13: the connection failed: try the same server once more.
                Step(StepKind.Retried, $"trying {choice.Server.Id} at {AddressOf(choice.Server)} once more");
                chosen = await TryConnectAsync(AddressOf(choice.Server), cancel);
            }

            if (chosen is not null)
            {
                // Make-before-break: the first connection closes only now that the second is ready.
                await first.CloseAsync("moving to the chosen server");
                Step(StepKind.Moved, $"moved to {chosen.ServerId} at {chosen.Endpoint}; closed {first.ServerId}");
                await ActivateAsync(chosen, cancel);
                return chosen;
            }

            if (_lastRefusal == RttpErrorCode.None)
            {
                break; // claim 14: unreachable twice: ask for the service again
            }

            excluded.Add(choice.Server.Id); // refused (full, draining): obey, and choose another
        }

        await first.DisposeAsync();
        return null;
    }

    /// <summary>The DNS answer named only lost servers: choose from the table held, connect (once more if unreachable), subscribe.</summary>
    private async Task<RttpConnection?> ChooseFromHeldTableAsync(IReadOnlyList<IPAddress> passed, CancellationToken cancel)
    {
        // Passed over: the servers the answer named, and the one lost last. Others lost lately (and
        // perhaps restarted since) are only put behind the rest, as Choose does.
        var table = Table;
        string? last;
        lock (_lock)
        {
            last = _lastLost;
        }

        var excluded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in table.Members)
        {
            if (m.Id == last || passed.Any(a => AddressOf(m) == $"{a}:{_options.Port}"))
            {
                excluded.Add(m.Id);
            }
        }

        if (table.Members.Count <= excluded.Count)
        {
            return null;
        }

        Step(StepKind.PassedOver, $"DNS named only {string.Join(", ", passed)}, lost moments ago: choosing from the farm table held (v{table.Version})");
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var choice = Choose(table, excluded);
            if (choice is null || excluded.Contains(choice.Server.Id))
            {
                return null;
            }

            Step(StepKind.Chosen, choice.Reason);
            var chosen = await TryConnectAsync(AddressOf(choice.Server), cancel);
            if (chosen is null && _lastRefusal == RttpErrorCode.None)
            {
                Step(StepKind.Retried, $"trying {choice.Server.Id} at {AddressOf(choice.Server)} once more");
                chosen = await TryConnectAsync(AddressOf(choice.Server), cancel);
            }

            if (chosen is not null)
            {
                Step(StepKind.Moved, $"moved to {chosen.ServerId} at {chosen.Endpoint}, chosen from the farm table held");
                await ActivateAsync(chosen, cancel);
                return chosen;
            }

            excluded.Add(choice.Server.Id);
        }

        return null;
    }

    /// <summary>MOVE: pause a random moment (spreading a drain), choose another server, move make-before-break.</summary>
    private async Task<RttpConnection?> MoveAsync(RttpConnection current, CancellationToken cancel)
    {
        var pause = TimeSpan.FromMilliseconds(NextDouble() * _options.MoveSpread.TotalMilliseconds);
        await Task.Delay(pause, _options.Connection.Time, cancel);
        var excluded = new HashSet<string>(StringComparer.Ordinal) { current.ServerId };
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var choice = Choose(Table, excluded);
            if (choice is null)
            {
                break;
            }

            Step(StepKind.Chosen, choice.Reason);
            var next = await TryConnectAsync(AddressOf(choice.Server), cancel);
            if (next is not null)
            {
                // Publications in flight on the server we leave: give them a moment to be answered
                // there, rather than sending their latest values again from the next server.
                using (var drain = CancellationTokenSource.CreateLinkedTokenSource(cancel))
                {
                    drain.CancelAfter(_options.HeartbeatTimeout);
                    try
                    {
                        await current.WhenAcknowledgedAsync(drain.Token);
                    }
                    catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                    {
                        // not answered in time: the outbox sends them again
                    }
                }

                await ClearAsync(current);
                Step(StepKind.Moved, $"moved to {next.ServerId} at {next.Endpoint} after {pause.TotalMilliseconds:0} ms; left {current.ServerId}");
                await ActivateAsync(next, cancel, moved: true);
                return next;
            }

            excluded.Add(choice.Server.Id);
        }

        await ClearAsync(current);
        Step(StepKind.Failed, "no other server to move to; asking for the service again");
        return null;
    }

    /// <summary>Remembers a lost server (by id and address) for <see cref="SuspectFor"/>.</summary>
    private void Suspect(string id, string endpoint)
    {
        var until = _options.Connection.Time.GetTimestamp() + (long)(SuspectFor.TotalSeconds * _options.Connection.Time.TimestampFrequency);
        lock (_lock)
        {
            _suspected[id] = until;
            _suspected[endpoint] = until;
            _lastLost = id;
        }
    }

    /// <summary>
    /// A server just welcomed this client: it is up (restarted, if it was lost), so it is no longer
    /// passed over. Kept suspected, a standby made on it would be dropped, and the next failover
    /// would choose another server from the table instead of using the standby.
    /// </summary>
    private void Unsuspect(string id, string endpoint)
    {
        lock (_lock)
        {
            _suspected.Remove(id);
            _suspected.Remove(endpoint);
        }
    }

    private bool IsSuspected(string key)
    {
        lock (_lock)
        {
            return _suspected.TryGetValue(key, out var until) && _options.Connection.Time.GetTimestamp() < until;
        }
    }

    /// <summary>How long a lost server is passed over: longer than the farm takes to mark it dead.</summary>
    private static readonly TimeSpan SuspectFor = TimeSpan.FromSeconds(5);

    /// <summary>The address of <paramref name="m"/> in the network view this client is in.</summary>
    // With TLS, only a server's TLS address will do (one without TLS has none, and is not reached).
    private string AddressOf(FarmMember m) =>
        _ownConnection.UseTls ? m.Tls
        : _options.UseExternalAddresses && m.External.Length > 0 ? m.External : m.Tcp;

    private ServerChoice? Choose(FarmSnapshot table, HashSet<string> excluded)
    {
        // A server lost moments ago is passed over while the table may not know yet that it is dead;
        // when it is the only candidate, it is still chosen.
        // Only servers this client can reach: a server with TLS only has no plain address, and one
        // without TLS has no TLS address.
        var reachable = table.Members.Where(m => AddressOf(m).Length > 0).ToList();
        var candidates = reachable.Where(m => !excluded.Contains(m.Id) && !IsSuspected(m.Id)).ToList();
        if (candidates.Count == 0)
        {
            // Every other server was lost lately too (a server lost a few seconds ago may be back
            // already, restarted): pass over at least the one lost last, which is surely down.
            string? last;
            lock (_lock)
            {
                last = _lastLost;
            }

            candidates = [.. reachable.Where(m => !excluded.Contains(m.Id) && m.Id != last)];
            if (candidates.Count == 0)
            {
                candidates = [.. reachable.Where(m => !excluded.Contains(m.Id))];
            }
        }

        ServerChoice? choice;
        lock (_options.Random)
        {
            choice = _options.Selector.Select(candidates, new SelectionContext(table.Version, _options.Random));
        }

        Volatile.Write(ref _lastChoice, choice);
        return choice;
    }

    private double NextDouble()
    {
        lock (_options.Random)
        {
            return _options.Random.NextDouble();
        }
    }

    private readonly Dictionary<string, long> _suspected = new(StringComparer.Ordinal);
    private string? _lastLost;

    /// <summary>The error code of the last refused connect (FULL, AUTH_FAILED...), None when unreachable.</summary>
    private RttpErrorCode _lastRefusal;

    private async Task<RttpConnection?> TryConnectAsync(string hostPort, CancellationToken cancel)
    {
        if (!TryParse(hostPort, out var host, out var port))
        {
            Step(StepKind.Failed, $"'{hostPort}' is not host:port");
            return null;
        }

        _lastRefusal = RttpErrorCode.None;
        try
        {
            var connection = await _factory.ConnectAsync(host, port, _ownConnection, cancel);
            Unsuspect(connection.ServerId, hostPort);
            return connection;
        }
        catch (RttpConnectionException e)
        {
            _lastRefusal = e.Code;
            Step(StepKind.Failed, $"{hostPort}: {e.Message}");
            return null;
        }
    }

    /// <summary>Makes <paramref name="connection"/> the current one (with its table); returns the subjects to restore on it, all marked as resubscribed.</summary>
    private List<string> Adopt(RttpConnection connection)
    {
        List<string> subjects;
        lock (_lock)
        {
            subjects = [.. _subjects];
            _resubscribed.Clear();
            _resubscribed.UnionWith(subjects);
            _catchingUp.Clear(); // a new server's images are the owner's (a replica asks it first)
        }

        Volatile.Write(ref _connection, connection);
        Volatile.Write(ref _table, connection.Farm);
        return subjects;
    }

    /// <summary>Makes <paramref name="connection"/> the current one and restores every subscription on it.</summary>
    private async Task ActivateAsync(RttpConnection connection, CancellationToken cancel, bool moved = false)
    {
        var subjects = Adopt(connection);
        if (subjects.Count > 0)
        {
            try
            {
                await connection.SubscribeAsync(subjects, cancel);
                Step(StepKind.Subscribed, $"{subjects.Count} subscription(s) on {connection.ServerId}");
            }
            catch (Exception ex) when (ex is RttpConnectionException or IOException or ObjectDisposedException)
            {
                Step(StepKind.Failed, $"subscribing on {connection.ServerId}: {ex.Message}");
            }
        }

        Served(connection, moved);
        _firstConnect.TrySetResult();
        PumpAll(); // publications held while there was no connection, or lost with the previous one
    }

    private async Task ClearAsync(RttpConnection connection)
    {
        Interlocked.CompareExchange(ref _connection, null, connection);
        await connection.DisposeAsync();
    }

    /// <summary>Pumps the connection's messages to the application until it ends, hangs, or asks to move.</summary>
    private async Task<Outcome> ServeAsync(RttpConnection connection, CancellationToken cancel)
    {
        using var watch = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        string? hung = null;
        var monitor = MonitorAsync();
        lock (_lock)
        {
            _serving = connection;
        }

        connection.SetSink(_sink);
        try
        {
            // Lines a connection left staged (its read loop stopped before writing them) go first.
            await WriteAllStagedAsync(watch.Token);

            // Lines queued on the connection before (its table, a standby's stream) come here, in
            // order; once none waits, the read loop delivers data lines itself (the sink), and only
            // control lines (table, MOVE, BYE, errors) come here.
            await foreach (var m in connection.Messages.ReadAllAsync(watch.Token))
            {
                try
                {
                    switch (m.Kind)
                    {
                        case RttpMessageKind.Farm:
                            Volatile.Write(ref _table, m.Farm!);
                            continue;
                        case RttpMessageKind.Move:
                            return new Outcome(OutcomeKind.Move, $"MOVE {m.Code}");
                        case RttpMessageKind.Bye:
                            return new Outcome(OutcomeKind.Lost, $"BYE {m.Code} {m.Text}".TrimEnd());
                        case RttpMessageKind.Error when m.Error.IsFatal():
                            return new Outcome(OutcomeKind.Lost, $"ERR {m.Code} {m.Text}");
                        case RttpMessageKind.Error when m.Error == RttpErrorCode.Unavailable:
                            NoteUnavailable(m, connection.ServerId);
                            break;
                        case RttpMessageKind.Image or RttpMessageKind.Update when StillBehind(m):
                            continue; // a standby's stream catching up with what the application saw
                    }

                    await DeliverAsync(m, connection.ServerId, Track(m), watch.Token);
                }
                finally
                {
                    connection.HandedOn(); // only once it is delivered may the read loop deliver what follows
                }
            }

            return new Outcome(OutcomeKind.Lost, "connection closed");
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            return new Outcome(OutcomeKind.Stopped, "stopping");
        }
        catch (OperationCanceledException) when (hung is not null)
        {
            return new Outcome(OutcomeKind.Lost, hung);
        }
        catch (Exception ex) when (ex is RttpConnectionException or IOException)
        {
            return new Outcome(OutcomeKind.Lost, ex.Message);
        }
        finally
        {
            connection.SetSink(null);
            lock (_lock)
            {
                if (_serving == connection)
                {
                    _serving = null;
                }
            }

            await watch.CancelAsync();
            await monitor;
        }

        // Liveness is judged by unanswered PINGs, never by silence alone: a paused application
        // must not make a healthy server look dead. While the connection waits for the application
        // (OverflowPolicy.Wait) it reads nothing, so nothing is counted against the server. A period
        // in which the server sent anything (its own keep-alive PING when it has nothing else to
        // send, an update, a PONG) shows it alive: no PING is sent then, so an idle connection is
        // the server's PING a second and this client's PONG now and then (docs/protocol.md,
        // "Keep-alive"), not this client's PING and the server's PONG every period.
        async Task MonitorAsync()
        {
            var period = HeartbeatPeriod;
            var outstanding = 0;
            var heard = connection.LastReceived;
            try
            {
                while (!watch.IsCancellationRequested)
                {
                    await Task.Delay(period, _options.Connection.Time, watch.Token);
                    if (connection.IsWaitingForApplication || connection.LastReceived != heard)
                    {
                        outstanding = 0;
                        heard = connection.LastReceived;
                        continue;
                    }

                    if (outstanding >= _options.MaxPingsOut)
                    {
                        hung = $"{outstanding} PINGs unanswered for {_options.HeartbeatTimeout.TotalSeconds:0.#} s: hung";
                        await watch.CancelAsync();
                        return;
                    }

                    connection.SendHeartbeat();
                    outstanding++;
                }
            }
            catch (OperationCanceledException)
            {
                // served
            }
        }
    }

    private static bool TryParse(string hostPort, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = hostPort.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(hostPort.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port))
        {
            return false;
        }

        host = hostPort[..colon].Trim('[', ']');
        return true;
    }

    private enum OutcomeKind
    {
        Lost,
        Move,
        Stopped,
    }

    private readonly record struct Outcome(OutcomeKind Kind, string Text);
}
