using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// The publishing side: acknowledged publications that survive moves, and one hop to each
/// subject's owner. Every tracked publication (acknowledged ones; with <see cref="FarmClientOptions.OneHop"/>
/// every one, the client asking <c>@ack</c> itself) belongs to its subject's outbox, which sends it
/// over one connection (its <em>carrier</em>: the serving connection, or a publish-only connection
/// to the subject's owner). A subject changes carrier only when nothing of it is in flight on the
/// old one, so the owner receives one subject's publications in the order they were made. When a
/// carrier ends before answering, the outbox merges what it lost (and what waited behind it) into
/// one publication with the latest value of every field and sends that once another carrier is
/// there: never an older value after a newer one.
/// </summary>
public sealed partial class FarmClient
{
    private readonly Lock _pubLock = new();
    private readonly Dictionary<string, Outbox> _outboxes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OwnerLink> _links = new(StringComparer.Ordinal);
    private readonly Queue<Pub> _waitingForWindow = new();
    private int _unresolved;
    private long _sendOrder;
    private long _nacks;
    private long _republished;
    private long _unavailable;
    private FarmSnapshot? _ownersTable;
    private Ownership? _owners;
    private Task _sweeper = Task.CompletedTask;

    /// <summary>How many publications the farm refused (<c>NACK</c>: denied, unavailable).</summary>
    public long Nacks => Interlocked.Read(ref _nacks);

    /// <summary>How many times publications whose connection ended unanswered were sent again (merged, latest values).</summary>
    public long Republished => Interlocked.Read(ref _republished);

    /// <summary>How many <c>ERR UNAVAILABLE</c> (a fire-and-forget publication the farm dropped) arrived.</summary>
    public long Unavailable => Interlocked.Read(ref _unavailable);

    /// <summary>Tracked publications not answered yet (sent, waiting for a connection, or for the window).</summary>
    public int Unacknowledged
    {
        get
        {
            lock (_pubLock)
            {
                return _unresolved + _waitingForWindow.Count;
            }
        }
    }

    /// <summary>The servers this client has a publish-only connection to now (owners of subjects it published to).</summary>
    public IReadOnlyList<string> OwnerConnections
    {
        get
        {
            lock (_pubLock)
            {
                return [.. _links.Values.Where(l => l.Connection is not null).Select(l => l.Id).Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>
    /// Publishes fire and forget: returns once written. With <see cref="FarmClientOptions.OneHop"/>
    /// it goes to the subject's owner (the client asks for an acknowledgement only to keep each
    /// subject's order when it changes connection; a refusal arrives on <see cref="Messages"/> as an
    /// error, as <c>ERR</c> does without one hop). Throws <see cref="RttpConnectionException"/> when
    /// not connected.
    /// </summary>
    public Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace = false, CancellationToken cancel = default)
    {
        var serving = Volatile.Read(ref _connection) ?? throw new RttpConnectionException("not connected to a server");
        return _options.OneHop ? PublishTrackedAsync(subject, fields, replace, acknowledge: false, cancel) : serving.PublishAsync(subject, fields, replace, cancel);
    }

    /// <summary>
    /// Publishes as <paramref name="options"/> say. Acknowledged: completes on <c>ACK</c> (the
    /// subject's owner applied it); throws <see cref="PublishRejectedException"/> on <c>NACK</c>.
    /// A publication whose connection ends unanswered is not lost: the client sends the latest value
    /// of its subject again over the next connection (at least once, never an older value after a
    /// newer one). At most <see cref="FarmClientOptions.MaxUnacknowledged"/> are unanswered; more
    /// wait (backpressure). Waits for a connection when there is none. Cancelling ends the wait, not
    /// the publication.
    /// </summary>
    public Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, PublishOptions options, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Acknowledge ? PublishTrackedAsync(subject, fields, options.Replace, acknowledge: true, cancel) : PublishAsync(subject, fields, options.Replace, cancel);
    }

    /// <summary>Waits until every tracked publication made so far is answered.</summary>
    public async Task WhenAcknowledgedAsync(CancellationToken cancel = default)
    {
        Task[] waits;
        lock (_pubLock)
        {
            waits = [.. _outboxes.Values.SelectMany(o => o.All()).Concat(_waitingForWindow).Select(p => p.Done.Task)];
        }

        await Task.WhenAll(waits).WaitAsync(cancel);
    }

    /// <summary>The client stops: what was not answered fails (in flight: outcome unknown; never sent: not sent).</summary>
    private void FailUnanswered()
    {
        List<Pub> unsent;
        List<Pub> unknown;
        lock (_pubLock)
        {
            unsent = [.. _outboxes.Values.SelectMany(o => o.Held).Concat(_waitingForWindow)];
            unknown = [.. _outboxes.Values.SelectMany(o => o.Lost.Concat(o.InFlightPubs))];
            _outboxes.Clear();
            _waitingForWindow.Clear();
        }

        foreach (var p in unsent)
        {
            p.Fail(new RttpConnectionException($"{p.Subject}: the client stopped before the publication was sent"));
        }

        foreach (var p in unknown)
        {
            p.Fail(new PublishOutcomeUnknownException(p.Subject, $"{p.Subject}: the client stopped before the publication was acknowledged: it may or may not have been applied"));
        }
    }

    private async Task PublishTrackedAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace, bool acknowledge, CancellationToken cancel)
    {
        if (!SubjectSyntax.IsValidSubject(Encoding.UTF8.GetBytes(subject)))
        {
            throw new ArgumentException($"'{subject}' is not a valid subject (like /FX/GBPUSD)", nameof(subject));
        }

        var list = fields.ToList();
        foreach (var (name, _) in list)
        {
            if (!SubjectSyntax.IsValidName(Encoding.UTF8.GetBytes(name)))
            {
                throw new ArgumentException($"'{name}' is not a valid field name", nameof(fields));
            }
        }

        var pub = new Pub(subject, list, replace);
        var wait = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        (acknowledge ? pub.AckWaiters : pub.SentWaiters).Add(wait);
        lock (_pubLock)
        {
            if (_waitingForWindow.Count == 0 && _unresolved < _options.MaxUnacknowledged)
            {
                _unresolved++;
                Route(pub);
            }
            else
            {
                _waitingForWindow.Enqueue(pub);
            }
        }

        await wait.Task.WaitAsync(cancel);
    }

    /// <summary>Sends a publication now if its subject's order allows, or keeps it in the outbox. Under <c>_pubLock</c>.</summary>
    private void Route(Pub pub)
    {
        if (!_outboxes.TryGetValue(pub.Subject, out var box))
        {
            _outboxes[pub.Subject] = box = new Outbox(pub.Subject);
        }

        box.Held.Add(pub);
        Pump(box);
    }

    /// <summary>Sends what an outbox holds, in order, while its subject's order allows. Under <c>_pubLock</c>.</summary>
    private void Pump(Outbox box)
    {
        if (box.InFlightPubs.Count == 0 && box.Lost.Count > 0)
        {
            // What the ended connection carried, then what waited behind it: one publication with
            // the latest value of every field.
            var merged = Merge([.. box.Lost.OrderBy(p => p.Order), .. box.Held]);
            box.Lost.Clear();
            box.Held.Clear();
            box.Held.Add(merged);
            Interlocked.Increment(ref _republished);
            Step(StepKind.Republished, $"{box.Subject}: {merged.Callers} publication(s) unanswered when their connection ended: sending the latest value again");
        }

        while (box.Held.Count > 0 && box.Lost.Count == 0)
        {
            var carrier = CarrierFor(box.Subject);
            if (carrier is null || (box.InFlightPubs.Count > 0 && box.Carrier != carrier))
            {
                return; // no connection yet, or the old carrier has not answered everything of this subject
            }

            var pub = box.Held[0];
            box.Held.RemoveAt(0);
            Send(box, carrier, pub);
        }

        if (box.InFlightPubs.Count == 0 && box.Held.Count == 0 && box.Lost.Count == 0)
        {
            _outboxes.Remove(box.Subject);
        }
    }

    private void PumpAll()
    {
        lock (_pubLock)
        {
            foreach (var box in _outboxes.Values.ToList())
            {
                Pump(box);
            }
        }
    }

    private void Send(Outbox box, RttpConnection carrier, Pub pub)
    {
        box.Carrier = carrier;
        box.InFlightPubs.Add(pub);
        pub.Order = ++_sendOrder;
        var receipt = carrier.BeginPublish(pub.Subject, pub.Fields, pub.Replace);
        if (pub.SentWaiters.Count > 0)
        {
            var waiters = pub.SentWaiters.ToList();
            pub.SentWaiters.Clear();
            // Fire and forget returns once written; if its connection ends first, the outbox sends its
            // latest value again later, so it is taken as handed over either way.
            _ = receipt.Sent.ContinueWith(
                _ =>
                {
                    foreach (var w in waiters)
                    {
                        w.TrySetResult();
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        if (_links.TryGetValue(carrier.ServerId, out var link) && link.Connection == carrier)
        {
            link.LastUsed = _options.Connection.Time.GetTimestamp();
        }

        _ = receipt.Acknowledged.ContinueWith(t => Answered(box, pub, t), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    private void Answered(Outbox box, Pub pub, Task outcome)
    {
        var error = outcome.Exception?.InnerException;
        lock (_pubLock)
        {
            box.InFlightPubs.Remove(pub);
            if (error is null or PublishRejectedException || _stop.IsCancellationRequested)
            {
                if (error is null)
                {
                    pub.Succeed();
                }
                else
                {
                    pub.Fail(error);
                }

                _unresolved -= pub.Callers;
                while (_waitingForWindow.Count > 0 && _unresolved < _options.MaxUnacknowledged)
                {
                    _unresolved++;
                    Route(_waitingForWindow.Dequeue());
                }
            }
            else
            {
                // Sent and unanswered when the connection ended (or never sent): send its latest value again.
                box.Lost.Add(pub);
            }

            Pump(box);
        }

        if (error is PublishRejectedException refused)
        {
            Interlocked.Increment(ref _nacks);
            Step(StepKind.Refused, $"{pub.Subject}: NACK {refused.CodeName} {refused.Text}".TrimEnd());
            if (pub.AckWaiters.Count == 0)
            {
                // Fire and forget: the application hears of it as it hears of ERR without one hop.
                _messages.TryWrite(new FarmMessage(
                    new RttpMessage { Kind = RttpMessageKind.Error, Error = refused.Code, Code = refused.CodeName, Text = refused.Text, Subject = pub.Subject, RetryAfter = refused.RetryAfter },
                    ServerId ?? "",
                    Continuity.Continuous));
            }
        }
    }

    /// <summary>
    /// Where a subject's publications go now: its owner's connection (one hop), else the serving
    /// connection; null when there is neither. Opens the owner's connection when there is none
    /// (meanwhile the serving connection carries). Under <c>_pubLock</c>.
    /// </summary>
    private RttpConnection? CarrierFor(string subject)
    {
        if (_stop.IsCancellationRequested)
        {
            return null;
        }

        var serving = Volatile.Read(ref _connection);
        if (serving is not null && serving.HasEnded)
        {
            serving = null;
        }

        if (!_options.OneHop)
        {
            return serving;
        }

        var table = Table;
        if (!ReferenceEquals(table, _ownersTable))
        {
            _ownersTable = table;
            _owners = Ownership.OfTable(table);
        }

        if (_owners is null)
        {
            return serving;
        }

        var owner = _owners.OwnerOf(subject);
        if (serving is not null && serving.ServerId == owner)
        {
            return serving;
        }

        if (_links.TryGetValue(owner, out var link))
        {
            if (link.Connection is { HasEnded: false } c)
            {
                return c;
            }

            if (link.Connection is null && !link.Opening && _options.Connection.Time.GetTimestamp() >= link.RetryAt)
            {
                OpenLink(link, table);
            }
        }
        else
        {
            link = new OwnerLink(owner);
            _links[owner] = link;
            OpenLink(link, table);
        }

        // While the owner's connection opens, its subjects wait for it (one connect, then one hop
        // for good), unless opening it failed before: then the serving server carries meanwhile.
        return link.Opening && !link.Failed ? null : serving;
    }

    private void OpenLink(OwnerLink link, FarmSnapshot table)
    {
        var member = table.Members.FirstOrDefault(m => m.Id == link.Id);
        if (member is null || AddressOf(member).Length == 0)
        {
            link.RetryAt = _options.Connection.Time.GetTimestamp() + _options.Connection.Time.TimestampFrequency * 5;
            return;
        }

        link.Opening = true;
        var address = AddressOf(member);
        _ = Task.Run(() => ConnectLinkAsync(link, address)); // not on the caller's thread: it holds the publishing lock
    }

    private async Task ConnectLinkAsync(OwnerLink link, string address)
    {
        RttpConnection? connection = null;
        string? failure = null;
        if (!TryParse(address, out var host, out var port))
        {
            failure = $"'{address}' is not host:port";
        }
        else
        {
            try
            {
                connection = await _factory.ConnectAsync(host, port, _ownConnection, _stop.Token);
            }
            catch (Exception ex) when (ex is RttpConnectionException or OperationCanceledException or ObjectDisposedException)
            {
                failure = ex.Message;
            }
        }

        var time = _options.Connection.Time;
        lock (_pubLock)
        {
            link.Opening = false;
            if (connection is not null && connection.ServerId == link.Id && _links.GetValueOrDefault(link.Id) == link && !_stop.IsCancellationRequested)
            {
                link.Connection = connection;
                link.Failed = false;
                link.LastUsed = time.GetTimestamp();
            }
            else
            {
                link.Failed = true;
                failure ??= connection is null ? "gone" : $"{address} is {connection.ServerId}, not {link.Id}";
                link.RetryAt = time.GetTimestamp() + time.TimestampFrequency * 5;
            }
        }

        if (link.Connection != connection || connection is null)
        {
            PumpAll(); // what waited for this connection goes through the serving server
            Step(StepKind.Failed, $"publish-only connection to {link.Id} (owner) at {address}: {failure}; its subjects go through the serving server");
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }

            return;
        }

        Step(StepKind.OwnerConnected, $"publishing directly to {link.Id} at {address}, the owner of subjects published to");
        link.Reader = ReadLinkAsync(link, connection);
        PumpAll();
    }

    /// <summary>Reads a publish-only connection (the server pings it, sends table changes and errors) until it ends or asks to move.</summary>
    private async Task ReadLinkAsync(OwnerLink link, RttpConnection connection)
    {
        var why = "connection closed";
        try
        {
            await foreach (var m in connection.Messages.ReadAllAsync(_stop.Token))
            {
                connection.HandedOn();
                if (m.Kind == RttpMessageKind.Error && m.Error == RttpErrorCode.Unavailable)
                {
                    NoteUnavailable(m, link.Id);
                    continue;
                }

                if (m.Kind is RttpMessageKind.Move or RttpMessageKind.Bye || (m.Kind == RttpMessageKind.Error && m.Error.IsFatal()))
                {
                    why = $"{m.Kind.ToString().ToUpperInvariant()} {m.Code} {m.Text}".TrimEnd();
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or RttpConnectionException or IOException)
        {
            why = ex.Message;
        }

        await CloseLinkAsync(link, connection, why, retryAfter: TimeSpan.FromSeconds(5), failed: true);
    }

    private async Task CloseLinkAsync(OwnerLink link, RttpConnection connection, string why, TimeSpan retryAfter, bool failed = false)
    {
        var time = _options.Connection.Time;
        lock (_pubLock)
        {
            if (link.Connection != connection)
            {
                return;
            }

            link.Connection = null;
            link.Failed = failed;
            link.RetryAt = time.GetTimestamp() + (long)(retryAfter.TotalSeconds * time.TimestampFrequency);
        }

        if (!_stop.IsCancellationRequested)
        {
            Step(StepKind.OwnerClosed, $"publish-only connection to {link.Id} closed: {why}");
        }

        // Its unanswered publications fail now and are sent again elsewhere (latest values).
        await connection.CloseAsync("publish-only connection closed");
        PumpAll();
    }

    /// <summary>Closes publish-only connections that are idle (nothing sent for <see cref="FarmClientOptions.OwnerConnectionIdle"/>, nothing unanswered) or hung.</summary>
    private async Task SweepLinksAsync()
    {
        var time = _options.Connection.Time;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_options.OwnerConnectionIdle.TotalMilliseconds / 4, 10, 1000));
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(period, time, _stop.Token);
                List<(OwnerLink Link, RttpConnection Connection, string Why)> closing = [];
                lock (_pubLock)
                {
                    foreach (var link in _links.Values)
                    {
                        if (link.Connection is not { } c)
                        {
                            continue;
                        }

                        var carries = _outboxes.Values.Any(b => b.Carrier == c && b.InFlightPubs.Count > 0);
                        if (c.Silence > _options.HeartbeatTimeout)
                        {
                            closing.Add((link, c, $"silent for {_options.HeartbeatTimeout.TotalSeconds:0.#} s: hung"));
                        }
                        else if (!carries && c.Unacknowledged == 0 && time.GetElapsedTime(link.LastUsed) > _options.OwnerConnectionIdle)
                        {
                            closing.Add((link, c, $"idle for {_options.OwnerConnectionIdle.TotalSeconds:0.#} s"));
                        }
                    }
                }

                foreach (var (link, c, why) in closing)
                {
                    await CloseLinkAsync(link, c, why, TimeSpan.Zero);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private async Task CloseLinksAsync()
    {
        try
        {
            await _sweeper;
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        List<(OwnerLink Link, RttpConnection Connection)> open;
        lock (_pubLock)
        {
            open = [.. _links.Values.Where(l => l.Connection is not null).Select(l => (l, l.Connection!))];
            foreach (var (l, _) in open)
            {
                l.Connection = null;
            }
        }

        foreach (var (link, c) in open)
        {
            await c.CloseAsync("client stopping");
            if (link.Reader is { } reader)
            {
                await reader;
            }
        }
    }

    /// <summary>ERR UNAVAILABLE: a fire-and-forget publication the farm dropped (not fatal).</summary>
    private void NoteUnavailable(RttpMessage m, string server)
    {
        Interlocked.Increment(ref _unavailable);
        var after = m.RetryAfter is { } a ? $" (retry after {a.TotalMilliseconds:0} ms)" : "";
        Step(StepKind.Unavailable, $"{server} dropped a publication{(m.Subject.Length > 0 ? " to " + m.Subject : "")}: {m.Text}{after}");
    }

    /// <summary>One publication (or several merged), and who waits for it.</summary>
    private sealed class Pub(string subject, List<KeyValuePair<string, string>> fields, bool replace)
    {
        public string Subject { get; } = subject;

        public List<KeyValuePair<string, string>> Fields { get; } = fields;

        public bool Replace { get; } = replace;

        /// <summary>Publications this one stands for (slots of the window).</summary>
        public int Callers { get; init; } = 1;

        /// <summary>When it was sent, for merging in order.</summary>
        public long Order { get; set; }

        public List<TaskCompletionSource> AckWaiters { get; } = [];

        public List<TaskCompletionSource> SentWaiters { get; } = [];

        /// <summary>Completes when answered (ACK or NACK) or given up.</summary>
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Succeed()
        {
            foreach (var w in AckWaiters.Concat(SentWaiters))
            {
                w.TrySetResult();
            }

            Done.TrySetResult();
        }

        public void Fail(Exception error)
        {
            foreach (var w in AckWaiters)
            {
                w.TrySetException(error);
            }

            foreach (var w in SentWaiters)
            {
                w.TrySetResult(); // fire and forget: it was handed over; its refusal is reported apart
            }

            Done.TrySetResult();
        }
    }

    /// <summary>Publications merged in order: a field's latest value; a PUBIMAGE starts over with its fields.</summary>
    private static Pub Merge(List<Pub> pubs)
    {
        var replace = false;
        var fields = new List<KeyValuePair<string, string>>();
        foreach (var p in pubs)
        {
            if (p.Replace)
            {
                replace = true;
                fields.Clear();
            }

            foreach (var f in p.Fields)
            {
                var at = fields.FindIndex(x => x.Key == f.Key);
                if (at >= 0)
                {
                    fields[at] = f;
                }
                else
                {
                    fields.Add(f);
                }
            }
        }

        var merged = new Pub(pubs[0].Subject, fields, replace) { Callers = pubs.Sum(p => p.Callers) };
        foreach (var p in pubs)
        {
            merged.AckWaiters.AddRange(p.AckWaiters);
            merged.SentWaiters.AddRange(p.SentWaiters);
            _ = merged.Done.Task.ContinueWith(_ => p.Done.TrySetResult(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return merged;
    }

    /// <summary>One subject's publications: held (not sent yet, in order), in flight on one carrier, lost with a carrier that ended.</summary>
    private sealed class Outbox(string subject)
    {
        public string Subject { get; } = subject;

        public RttpConnection? Carrier { get; set; }

        /// <summary>Sent on <see cref="Carrier"/>, not answered yet, in order.</summary>
        public List<Pub> InFlightPubs { get; } = [];

        public List<Pub> Held { get; } = [];

        public List<Pub> Lost { get; } = [];

        /// <summary>Everything not answered.</summary>
        public IEnumerable<Pub> All() => InFlightPubs.Concat(Held).Concat(Lost);
    }

    /// <summary>A publish-only connection to a subject owner.</summary>
    private sealed class OwnerLink(string id)
    {
        public string Id { get; } = id;

        public RttpConnection? Connection { get; set; }

        public bool Opening { get; set; }

        /// <summary>The last attempt failed or the connection was lost: publications do not wait for the next one.</summary>
        public bool Failed { get; set; }

        public long RetryAt { get; set; }

        public long LastUsed { get; set; }

        public Task? Reader { get; set; }
    }
}
