using System.Buffers;
using System.Globalization;
using System.Text;
using StreamFarm.Membership;
using StreamFarm.Protocol;

namespace StreamFarm.Server.Subjects;

/// <summary>
/// Publishes this server's system subjects every <see cref="Interval"/>, through the farm like any
/// publication (so a subscriber at any server sees every server's): <c>/~sys/server/&lt;id&gt;</c>
/// with its state, counters, rates and limits, and <c>/~sys/subjects/&lt;id&gt;</c> with the
/// subjects it holds records of (when that list changed). The dashboard at <c>/</c> reads them.
/// </summary>
internal sealed class SystemSubjectPublisher : IDisposable
{
    /// <summary>How often the status is published: often enough for a live chart, cheap for the farm.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>At most this many bytes of subject names in one catalog publication (well under the line limit).</summary>
    public const int CatalogBytes = 8 * 1024;

    private readonly RttpServer _server;
    private readonly ITimer _timer;
    private readonly long _started;
    private readonly Lock _lock = new();
    private long _lastAt;
    private long _lastIn;
    private long _lastOut;
    private string _lastCatalog = "";
    private int _ticks;
    private readonly OffTickWork _round;

    public SystemSubjectPublisher(RttpServer server)
    {
        _server = server;
        _started = _lastAt = server.Time.GetTimestamp();
        // The tick thread only starts the round: a round walks the subject table (the catalog) and
        // publishes through the farm, which can wait for a record's lock, and the tick thread also
        // runs the membership's probes and the housekeeping that tells whether this process was
        // paused. With a million subjects a round there took seconds, and the server took itself for
        // paused, re-joined owning nothing, and made the farm move every subject twice.
        _round = new OffTickWork(server.Time, Publish);
        _timer = TickThread.For(server.Time).CreateTimer(_ => _round.Start(), null, Interval, Interval);
    }

    /// <summary>One round: the status always, the catalog every few seconds when it changed.</summary>
    public void Publish()
    {
        lock (_lock)
        {
            if (_server.IsStopping)
            {
                return;
            }

            var now = _server.Time.GetTimestamp();
            var seconds = Math.Max(0.001, _server.Time.GetElapsedTime(_lastAt, now).TotalSeconds);
            long inNow = _server.MessagesIn, outNow = _server.MessagesOut;
            var limits = _server.Options.Limits;
            var state = _server.IsDraining ? "draining" : _server.IsRejoining ? "joining" : "active";
            var f = CultureInfo.InvariantCulture;
            var line = new StringBuilder(512)
                .Append("PUB ").Append(SystemSubjects.Server(_server.Options.Id))
                .Append(f, $" id={_server.Options.Id} group={_server.Options.Group} state={state}")
                .Append(f, $" connections={_server.Connections} users={_server.Users} capacity={_server.Options.Capacity} routes={_server.RouteSessions}")
                .Append(f, $" subjects={_server.Subjects.Count} subscriptions={_server.Subscriptions}")
                .Append(f, $" msgs_in={inNow} msgs_out={outNow} in_rate={(inNow - _lastIn) / seconds:0} out_rate={(outNow - _lastOut) / seconds:0}")
                .Append(f, $" conflations={_server.Conflations} slow_consumer_closes={_server.SlowConsumerCloses} rejected_full={_server.RejectedFull}")
                .Append(f, $" rejected_pubs={_server.RejectedPublications} rebalance_moves={_server.RebalanceMoves}")
                .Append(f, $" uptime_s={_server.Time.GetElapsedTime(_started, now).TotalSeconds:0}")
                .Append(f, $" max_line={limits.MaxLineBytes} max_fields={limits.MaxFieldsPerMessage} max_subs={limits.MaxSubscriptionsPerConnection}")
                .Append(f, $" max_outbound={limits.MaxOutboundBytes} slow_consumer_ms={limits.SlowConsumerTimeout.TotalMilliseconds:0}")
                .Append(f, $" ping_ms={limits.PingInterval.TotalMilliseconds:0} idle_ms={limits.IdleTimeout.TotalMilliseconds:0}");
            _lastAt = now;
            _lastIn = inNow;
            _lastOut = outNow;
            Apply(line.ToString());

            if (_ticks++ % 3 == 0)
            {
                var catalog = Catalog(out var count);
                if (catalog != _lastCatalog)
                {
                    _lastCatalog = catalog;
                    Apply(string.Create(f, $"PUB {SystemSubjects.Catalog(_server.Options.Id)} count={count} names={catalog}"));
                }
            }
        }
    }

    /// <summary>The names of this server's non-system subjects, sorted, comma-separated, cut at <see cref="CatalogBytes"/>.</summary>
    /// <remarks>
    /// Only the first names in order are shown, so only they are sorted: one pass keeps the smallest
    /// names that fit in a max-heap (a few thousand at most), rather than sorting every subject every
    /// few seconds (a million names took about a second of CPU each time; issue 16's subjects curve).
    /// </remarks>
    private string Catalog(out int count)
    {
        count = 0;
        var smallest = new PriorityQueue<string, string>(Descending);
        var bytes = 0; // the kept names' lengths plus one each (their commas, and one to spare)
        foreach (var record in _server.Subjects.All)
        {
            var name = record.Name;
            if (SystemSubjects.IsSystem(name))
            {
                continue;
            }

            count++;
            if (bytes + name.Length + 1 > CatalogBytes + 1 && smallest.TryPeek(out var largest, out _) && string.CompareOrdinal(name, largest) > 0)
            {
                continue; // after every name that is kept already, and no room: never shown
            }

            smallest.Enqueue(name, name);
            bytes += name.Length + 1;
            while (bytes > CatalogBytes + 1 && smallest.TryDequeue(out var dropped, out _))
            {
                bytes -= dropped.Length + 1;
            }
        }

        var names = new string[smallest.Count];
        for (var i = names.Length - 1; i >= 0; i--)
        {
            names[i] = smallest.Dequeue();
        }

        return string.Join(',', names);
    }

    private static readonly Comparer<string> Descending = Comparer<string>.Create(static (a, b) => string.CompareOrdinal(b, a));

    private void Apply(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        var frame = new RttpFrame();
        if (RttpParser.TryParse(new ReadOnlySequence<byte>(bytes), frame, _server.Limits, out _) == RttpErrorCode.None)
        {
            _server.Subjects.Publish(frame.Arg(0), frame, replace: false);
        }
    }

    public void Dispose() => _timer.Dispose();
}
