using System.Globalization;
using System.Net.Sockets;
using StreamFarm.Faults.Tests.Checking;

namespace StreamFarm.Faults.Tests.Clients;

/// <summary>
/// A publisher over raw RTTP. Publisher <c>p&lt;k&gt;</c> writes its own field <c>p&lt;k&gt;</c>; its
/// value is a counter kept per subject, +1 for each new publication to that subject. It goes round
/// its subjects at a fixed pace, each publication acknowledged (<c>PUB s @ack=id p1=n</c>; ids are
/// unique per publisher across its connections) and recorded: sent, ACKed, NACKed, or unknown
/// (connection lost before an answer).
/// <para>When its connection is lost (server killed, frozen, cut off, MOVE), it reconnects (its
/// server first, then the others), first republishes the latest value of every subject that had
/// unanswered publications (never an older value), then goes on counting up. When stopped, it
/// republishes the latest value of subjects whose last publication was not ACKed until ACKed,
/// within a deadline, so that the end state is known exactly where the farm acknowledges.</para>
/// </summary>
internal sealed class Publisher : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly string[] _subjects;
    private readonly IReadOnlyList<(string Id, string Host)> _servers;
    private readonly int _port;
    private readonly TimeSpan _interval;
    private readonly Random _random;
    private readonly Func<Socket>? _socket;
    private readonly Dictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Entry> _pending = new(StringComparer.Ordinal);
    private readonly HashSet<string> _republish = new(StringComparer.Ordinal);
    private readonly List<Entry> _entries = [];
    private readonly List<Anomaly> _anomalies = [];
    private readonly List<string> _log = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _dispose = new();
    private Task _loop = Task.CompletedTask;
    private RawConnection? _connection;
    private int _connectionNumber;
    private long _nextAck;
    private int _home;

    public Publisher(string name, IReadOnlyList<(string Id, string Host)> servers, int port, int homeIndex, string[] subjects, TimeSpan interval, int seed, Func<Socket>? socket = null)
    {
        _socket = socket;
        Name = name;
        _servers = servers;
        _port = port;
        _home = homeIndex;
        _subjects = subjects;
        _interval = interval;
        _random = new Random(seed);
    }

    public string Name { get; }

    public int Connections => _connectionNumber;

    public void Start() => _loop = Task.Run(LoopAsync);

    public IReadOnlyList<PubRecord> Records()
    {
        lock (_lock)
        {
            return [.. _entries.Select(e => e.ToRecord(Name))];
        }
    }

    public IReadOnlyList<Anomaly> Anomalies()
    {
        lock (_lock)
        {
            return [.. _anomalies];
        }
    }

    public IReadOnlyList<string> Log()
    {
        lock (_lock)
        {
            return [.. _log];
        }
    }

    public int Sent
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Stops counting, then republishes the latest value of subjects whose last publication is not ACKed until ACKed or the deadline.</summary>
    public async Task StopAsync(TimeSpan finishWithin)
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

        using var within = CancellationTokenSource.CreateLinkedTokenSource(_dispose.Token);
        within.CancelAfter(finishWithin);
        while (!within.IsCancellationRequested)
        {
            List<(string Subject, long Value)> again;
            bool waiting;
            lock (_lock)
            {
                if (!_entries.Any(e => e.Outcome is PubOutcome.Acked or PubOutcome.Nacked))
                {
                    return; // the farm answers nothing: there is nothing to wait for (I5 reports it)
                }

                var last = _entries.GroupBy(e => e.Subject).Select(g => g.Last()).ToList();
                waiting = last.Any(e => e.Outcome == PubOutcome.Pending);
                again = [.. last.Where(e => e.Outcome is PubOutcome.Nacked or PubOutcome.Unknown).Select(e => (e.Subject, e.Value))];
            }

            if (!waiting && again.Count == 0)
            {
                return;
            }

            try
            {
                var c = await EnsureConnectedAsync(within.Token);
                foreach (var (subject, value) in again)
                {
                    await PublishAsync(c, subject, value);
                }

                await Task.Delay(again.Count > 0 ? 500 : 100, within.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task LoopAsync()
    {
        var next = 0;
        using var timer = new PeriodicTimer(_interval);
        while (!_stop.IsCancellationRequested)
        {
            var c = await EnsureConnectedAsync(_stop.Token);
            var subject = _subjects[next++ % _subjects.Length];
            long value;
            lock (_lock)
            {
                value = _counters[subject] = _counters.GetValueOrDefault(subject) + 1;
            }

            await PublishAsync(c, subject, value);
            await timer.WaitForNextTickAsync(_stop.Token);
        }
    }

    private async Task PublishAsync(RawConnection c, string subject, long value)
    {
        Entry e;
        lock (_lock)
        {
            e = new Entry(subject, value, (++_nextAck).ToString(CultureInfo.InvariantCulture), c.ServerId, _connectionNumber, DateTime.UtcNow);
            _entries.Add(e);
            _pending[e.AckId] = e;
        }

        if (!await c.SendAsync($"PUB {subject} @ack={e.AckId} {Name}={value}"))
        {
            Lost(c);
        }
    }

    private async Task<RawConnection> EnsureConnectedAsync(CancellationToken cancel)
    {
        while (true)
        {
            var current = _connection;
            if (current is { IsOpen: true })
            {
                return current;
            }

            if (current is not null)
            {
                Lost(current);
                await current.DisposeAsync();
                _connection = null;
            }

            for (var attempt = 0; ; attempt++)
            {
                cancel.ThrowIfCancellationRequested();
                var (id, host) = _servers[(_home + attempt) % _servers.Count];
                var number = _connectionNumber + 1;
                RawConnection? opened = null;
                var (c, why) = await RawConnection.OpenAsync(id, host, _port, Name, (line, at) => OnLine(opened, number, line, at), cancel, _socket);
                opened = c;
                if (c is null)
                {
                    Note($"connect to {id}: {why}");
                    if (attempt % _servers.Count == _servers.Count - 1)
                    {
                        await Task.Delay(200, cancel);
                    }

                    continue;
                }

                _home = (_home + attempt) % _servers.Count;
                List<(string Subject, long Value)> again;
                lock (_lock)
                {
                    _connectionNumber = number;
                    again = [.. _republish.Select(s => (s, _counters[s]))];
                    _republish.Clear();
                }

                Note($"connection #{number} to {id}; republishing {again.Count} subject(s)");
                _connection = c;
                foreach (var (subject, value) in again)
                {
                    await PublishAsync(c, subject, value);
                }

                break;
            }
        }
    }

    /// <summary>Every unanswered publication of that connection becomes unknown; its subject is republished after the reconnect.</summary>
    private void Lost(RawConnection c)
    {
        lock (_lock)
        {
            // One connection at a time: whatever is pending was sent on the connection being lost.
            foreach (var e in _pending.Values.ToList())
            {
                e.Outcome = PubOutcome.Unknown;
                e.AnsweredAt = DateTime.UtcNow;
                e.Answer = "connection lost: " + c.EndReason;
                _pending.Remove(e.AckId);
                _republish.Add(e.Subject);
            }
        }
    }

    private void OnLine(RawConnection? c, int connection, string line, DateTime at)
    {
        var w = WireLine.Parse(line);
        lock (_lock)
        {
            switch (w.Verb)
            {
                case "ACK" or "NACK" when w.Args.Count >= 1:
                    if (!_pending.Remove(w.Args[0], out var e))
                    {
                        var earlier = _entries.FirstOrDefault(x => x.AckId == w.Args[0]);
                        _anomalies.Add(new(at, $"{Name} connection #{connection}", earlier is null
                            ? $"'{line}' answers no publication"
                            : $"'{line}' answers @ack={earlier.AckId} again (it was {earlier.Outcome}: {earlier.Answer})"));
                        return;
                    }

                    e.Outcome = w.Verb == "ACK" ? PubOutcome.Acked : PubOutcome.Nacked;
                    e.AnsweredAt = at;
                    e.Answer = line;
                    break;
                case "MOVE":
                    _log.Add($"{at:HH:mm:ss.fff} connection #{connection}: {line}");
                    _ = Task.Delay(_random.Next(0, 1000)).ContinueWith(_ => c?.Close("moving (MOVE)"), TaskScheduler.Default);
                    break;
                case "ERR" or "BYE":
                    _log.Add($"{at:HH:mm:ss.fff} connection #{connection}: {line}");
                    if (w.Verb == "ERR" && w.Args.FirstOrDefault() is not ("DRAINING" or "IDLE" or "SLOW_CONSUMER"))
                    {
                        _anomalies.Add(new(at, $"{Name} connection #{connection}", $"unexpected '{line}' (every publication carries @ack)"));
                    }

                    break;
                default:
                    break;
            }
        }
    }

    private void Note(string text)
    {
        lock (_lock)
        {
            _log.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {text}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _dispose.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // stopped
        }

        if (_connection is { } c)
        {
            await c.DisposeAsync();
        }
    }

    private sealed class Entry(string subject, long value, string ackId, string server, int connection, DateTime sentAt)
    {
        public string Subject { get; } = subject;

        public long Value { get; } = value;

        public string AckId { get; } = ackId;

        public string Server { get; } = server;

        public int Connection { get; } = connection;

        public DateTime SentAt { get; } = sentAt;

        public PubOutcome Outcome { get; set; }

        public DateTime? AnsweredAt { get; set; }

        public string? Answer { get; set; }

        public PubRecord ToRecord(string publisher) => new(publisher, publisher, Subject, Value, AckId, Server, Connection, SentAt, Outcome, AnsweredAt, Answer);
    }
}
