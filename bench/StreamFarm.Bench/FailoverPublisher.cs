using System.Globalization;
using StreamFarm.Client;

namespace StreamFarm.Bench;

/// <summary>
/// The failover benchmark's RTTP publisher: one <see cref="RttpConnection"/> to every server (servers
/// do not route to each other yet, so each must get the stream itself) and, every interval, one
/// <c>PUB SUBJECT n=COUNTER</c> to each of them, the same counter everywhere. A connection that fails
/// is dropped until <see cref="ConnectAsync"/> is called again for that server.
/// </summary>
internal sealed class FailoverPublisher : IAsyncDisposable
{
    private readonly string _subject;
    private readonly Dictionary<string, Link> _links = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly FailoverMetronome _metronome;
    private long _counter;

    public FailoverPublisher(string subject, TimeSpan interval)
    {
        _subject = subject;
        _metronome = new FailoverMetronome(interval, Tick, "bench-publisher");
    }

    /// <summary>The counter of the last message published.</summary>
    public long Counter => Interlocked.Read(ref _counter);

    /// <summary>Publishing rounds per second so far (each round one message to every connected server).</summary>
    public double Rate => _metronome.Rate;

    /// <summary>Connects (again) to a server; its messages count from the next round.</summary>
    public async Task ConnectAsync(string id, string host, int port, CancellationToken cancel)
    {
        var connection = await RttpConnection.ConnectAsync(host, port, new RttpConnectionOptions { ClientName = "bench-publisher" }, cancel);
        var link = new Link(connection);
        _ = DrainAsync(connection); // FARM updates arrive here too: read them so the connection never stalls
        Link? old;
        lock (_lock)
        {
            _links.TryGetValue(id, out old);
            _links[id] = link;
        }

        if (old is not null)
        {
            await old.Connection.DisposeAsync();
        }
    }

    /// <summary>Messages published to <paramref name="id"/> since it was last connected (0 when it is not).</summary>
    public long PublishedTo(string id)
    {
        lock (_lock)
        {
            return _links.TryGetValue(id, out var link) ? Interlocked.Read(ref link.Published) : 0;
        }
    }

    public void Start() => _metronome.Start();

    public async ValueTask DisposeAsync()
    {
        _metronome.Dispose();
        List<Link> links;
        lock (_lock)
        {
            links = [.. _links.Values];
            _links.Clear();
        }

        foreach (var link in links)
        {
            await link.Connection.DisposeAsync();
        }
    }

    private static async Task DrainAsync(RttpConnection connection)
    {
        try
        {
            await foreach (var m in connection.Messages.ReadAllAsync())
            {
                _ = m;
            }
        }
        catch (Exception e) when (e is RttpConnectionException or IOException or OperationCanceledException)
        {
            // the server went away
        }
    }

    private void Tick()
    {
        var n = Interlocked.Increment(ref _counter);
        KeyValuePair<string, string>[] fields = [KeyValuePair.Create("n", n.ToString(CultureInfo.InvariantCulture))];
        List<(string Id, Link Link)> links;
        lock (_lock)
        {
            links = [.. _links.Select(l => (l.Key, l.Value))];
        }

        foreach (var (id, link) in links)
        {
            try
            {
                // On the metronome's own thread: waiting here delays only the next tick.
                link.Connection.PublishAsync(_subject, fields).GetAwaiter().GetResult();
                Interlocked.Increment(ref link.Published);
            }
            catch (Exception e) when (e is RttpConnectionException or IOException or ObjectDisposedException)
            {
                lock (_lock)
                {
                    if (_links.TryGetValue(id, out var current) && current == link)
                    {
                        _links.Remove(id);
                    }
                }

                _ = link.Connection.DisposeAsync().AsTask();
            }
        }
    }

    private sealed class Link(RttpConnection connection)
    {
        public long Published;

        public RttpConnection Connection { get; } = connection;
    }
}
