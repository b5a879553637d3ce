using System.Buffers;
using Microsoft.Extensions.Logging;
using StreamFarm.Membership;
using StreamFarm.Protocol;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Routes;

/// <summary>
/// Routes between the servers of a farm (docs/architecture.md, "Routes"). Every subject has one
/// owner, chosen by rendezvous hashing over the active, alive servers (<see cref="Ownership"/>);
/// the owner's record is the subject's one history (epoch, sequence numbers). Other servers
/// forward publications to the owner and, while their own clients subscribe, keep a replica fed by
/// the owner over a <see cref="RouteLink"/>. When the owners change, records follow
/// (<see cref="SubjectRecord.Reassign"/>).
/// </summary>
internal sealed partial class RouteManager : IUpstream, IAsyncDisposable
{
    private readonly RttpServer _server;
    // Written under _lock, copied on write; read without a lock (records send under their own lock).
    private readonly Lock _lock = new();
    private volatile Dictionary<string, RouteLink> _links = new(StringComparer.Ordinal);
    private readonly ILogger _log;
    private volatile Ownership _ownership;
    private FarmSnapshot _table;
    private readonly System.Threading.Channels.Channel<FarmSnapshot> _changes = System.Threading.Channels.Channel.CreateUnbounded<FarmSnapshot>(new() { SingleReader = true });
    private Task? _worker;
    private bool _applied;
    private bool _stopped;
    private long _forwarded;
    private long _dropped;
    private long _seedsSent;
    private long _slowRoutes;
    private long _received;

    public RouteManager(RttpServer server, Keyring keys, ILogger log)
    {
        _server = server;
        _log = log;
        Auth = new RouteAuth(keys, server.Time);
        BindAddress = System.Net.IPAddress.TryParse(server.Options.Listen, out var ip) && !ip.Equals(System.Net.IPAddress.Any) && !ip.Equals(System.Net.IPAddress.IPv6Any) ? ip : null;
        _table = server.Farm.Current;
        _ownership = Ownership.From(_table, SelfId);
        server.Subjects.UseRoutes(this, OwnerOf);
    }

    public RouteAuth Auth { get; }

    /// <summary>The address routes are opened from: the server's listen address, unless it listens on all.</summary>
    public System.Net.IPAddress? BindAddress { get; }

    public string SelfId => _server.Options.Id;

    public TimeProvider Time => _server.Time;

    /// <summary>Bytes a route may have queued before it is cut as slow (four times a client's limit, at least 4 MiB).</summary>
    public int RouteBufferBytes => Math.Max(4 << 20, _server.Options.Limits.MaxOutboundBytes * 4);

    public Ownership Ownership => _ownership;

    /// <summary>Publications sent to their subjects' owners.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Publications lost: no route to the owner, its buffer full, or passed around too often.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public long SeedsSent => Interlocked.Read(ref _seedsSent);

    public long SlowRoutes => Interlocked.Read(ref _slowRoutes);

    /// <summary>IMAGE, UPDATE and STATUS messages received from owners over this server's routes.</summary>
    public long Received => Interlocked.Read(ref _received);

    public int RoutesUp => _links.Values.Count(l => l.IsUp);

    public IReadOnlyList<string> Peers => [.. _links.Keys];

    public void Start()
    {
        _server.Farm.Changed += OnFarmChanged;
        Apply(_server.Farm.Current);
        _worker = Task.Run(WorkAsync);
    }

    // Farm changes are applied on a worker of their own, not on the thread that announces them
    // (membership holds its lock there): reassigning a large subject table must not delay gossip.
    private void OnFarmChanged(FarmSnapshot previous, FarmSnapshot current) => _changes.Writer.TryWrite(current);

    private async Task WorkAsync()
    {
        while (await _changes.Reader.WaitToReadAsync())
        {
            FarmSnapshot? latest = null;
            while (_changes.Reader.TryRead(out var next))
            {
                latest = next; // only the newest table matters
            }

            try
            {
                Apply(latest!);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Log.ApplyFailed(_log, e);
            }
        }
    }

    /// <summary>The owner of a subject, or null when it is this server.</summary>
    public string? OwnerOf(string subject)
    {
        var owner = _ownership.OwnerOf(subject);
        return owner == SelfId ? null : owner;
    }

    public void CountSlowRoute() => Interlocked.Increment(ref _slowRoutes);

    private void Apply(FarmSnapshot current)
    {
        List<RouteLink>? gone = null;
        lock (_lock)
        {
            if (_stopped || (_applied && current.Version <= _table.Version))
            {
                return; // stopped, or an older table than the one applied
            }

            _applied = true;
            _table = current;

            // A route to every other server that is alive (or only suspected) and takes routes.
            var wanted = current.Members.Where(m => m.Id != SelfId && m.Liveness != "dead" && m.Route.Length > 0).ToDictionary(m => m.Id, m => m.Route, StringComparer.Ordinal);
            foreach (var (id, link) in _links)
            {
                if (wanted.TryGetValue(id, out var address))
                {
                    link.Address = address;
                }
                else
                {
                    (gone ??= []).Add(link);
                }
            }

            // Most changes of the table are users counts: the set of routes is copied only when it changes.
            var added = wanted.Keys.Where(id => !_links.ContainsKey(id)).ToList();
            if (gone is not null || added.Count > 0)
            {
                var links = new Dictionary<string, RouteLink>(_links, StringComparer.Ordinal);
                foreach (var link in gone ?? [])
                {
                    links.Remove(link.Peer);
                }

                foreach (var id in added)
                {
                    var link = new RouteLink(this, id, wanted[id], _log);
                    links[id] = link;
                    link.Start();
                }

                _links = links;
            }

            // Publications that were waiting for a server that is gone: taken now, passed on under
            // their records' locks as the records get their new owners (so none is overtaken).
            var orphans = new Dictionary<string, List<byte[]>>(StringComparer.Ordinal);
            foreach (var link in gone ?? [])
            {
                foreach (var line in link.TakePending())
                {
                    var subject = SubjectOf(line);
                    if (!orphans.TryGetValue(subject, out var list))
                    {
                        orphans[subject] = list = [];
                    }

                    list.Add(line);
                }
            }

            var next = Ownership.From(current, SelfId);
            var changed = !next.SameOwners(_ownership);
            if (changed && _log.IsEnabled(LogLevel.Information))
            {
                var before = string.Join(",", _ownership.Owners);
                var after = string.Join(",", next.Owners);
                Log.OwnersChanged(_log, before, after);
            }

            if (changed || orphans.Count > 0)
            {
                _ownership = next;
                var alive = current.Members.Where(m => m.Liveness == "alive" && m.State != "leaving").Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
                _server.Subjects.Reassign(OwnerOf, alive.Contains, orphans, Redispatch);
                foreach (var line in orphans.Values.SelectMany(l => l))
                {
                    Redispatch(line);
                }
            }
        }

        foreach (var link in gone ?? [])
        {
            _ = link.StopAsync(TimeSpan.Zero);

            // Subjects whose last publisher was at that server wait for a publisher to come back.
            foreach (var record in _server.Subjects.All)
            {
                record.SourceLost(link.Peer);
            }
        }
    }

    private static string SubjectOf(byte[] line)
    {
        var span = line.AsSpan();
        var start = span.IndexOf((byte)' ') + 1;
        var length = span[start..].IndexOfAny((byte)' ', (byte)'\n');
        return System.Text.Encoding.UTF8.GetString(span.Slice(start, length));
    }

    // Lines this server rendered or already accepted: no limits to enforce again.
    private static readonly RttpLimits OwnLines = new() { MaxLineBytes = int.MaxValue, MaxFields = int.MaxValue };

    private void Redispatch(byte[] line)
    {
        var frame = new RttpFrame();
        if (RttpParser.TryParse(new ReadOnlySequence<byte>(line.AsMemory(0, line.Length - 1)), frame, OwnLines, out _) == RttpErrorCode.None)
        {
            Redispatch(frame);
        }
    }

    /// <summary>A publication that waited for a server that is gone: published again here (to the new owner, or applied).</summary>
    private void Redispatch(RttpFrame frame) => Apply(frame, defaultHop: 0, from: null);

    /// <summary>A PUB or PUBIMAGE that came over a route (from a server that took us for the owner).</summary>
    public void OnRoutedPublication(RttpFrame frame, string from) => Apply(frame, defaultHop: 1, from);

    private void Apply(RttpFrame frame, int defaultHop, string? from)
    {
        var hop = frame.TryGetMeta("hop"u8, out var h) && int.TryParse(h, out var n) ? n : defaultHop;
        if (frame.TryGetMeta("seed"u8, out var seed) && TryParseSeed(seed, out var epoch, out var seq))
        {
            _server.Subjects.Seed(frame.Arg(0), frame, epoch, seq, frame.TryGetMeta("handover"u8, out _), hop);
        }
        else
        {
            _server.Subjects.Publish(frame.Arg(0), frame, frame.Verb == RttpVerb.PubImage, hop, from);
        }
    }

    private static bool TryParseSeed(ReadOnlySpan<byte> text, out ulong epoch, out ulong seq)
    {
        var dot = text.IndexOf((byte)'.');
        seq = 0;
        return ulong.TryParse(dot < 0 ? text : text[..dot], out epoch) & dot >= 0 && ulong.TryParse(text[(dot + 1)..], out seq);
    }

    /// <summary>A message from a subject's owner over our route to it.</summary>
    public void OnRouteMessage(string peer, RttpFrame frame)
    {
        Interlocked.Increment(ref _received);
        var record = _server.Subjects.Find(frame.Arg(0));
        if (record is null)
        {
            return; // nobody here wants it any more
        }

        switch (frame.Verb)
        {
            case RttpVerb.Image when frame.TryGetUInt64(1, out var epoch) && frame.TryGetUInt64(2, out var seq):
                record.ApplyImage(peer, frame, epoch, seq);
                break;
            case RttpVerb.Update when frame.TryGetUInt64(1, out var epoch) && frame.TryGetUInt64(2, out var seq):
                record.ApplyUpdate(peer, frame, epoch, seq);
                break;
            case RttpVerb.Status when SubjectStatusNames.TryParse(frame.Arg(1), out var status):
                record.ApplyStatus(peer, status);
                break;
            default:
                break;
        }
    }

    public void OnLinkUp(RouteLink link)
    {
        foreach (var record in _server.Subjects.All)
        {
            if (record.Upstream == link.Peer)
            {
                record.Resubscribe(link.Peer, this);
            }
        }
    }

    public void OnLinkDown(RouteLink link)
    {
        foreach (var record in _server.Subjects.All)
        {
            if (record.Upstream == link.Peer)
            {
                record.UpstreamLost(link.Peer);
            }
        }
    }

    void IUpstream.Forward(string owner, RttpFrame frame, int hop)
    {
        if (hop >= 3)
        {
            // The owners' tables disagree (a change is still spreading); passing it on further
            // could loop. Dropped and counted.
            Interlocked.Increment(ref _dropped);
            return;
        }

        byte[] line;
        if (hop == 0)
        {
            line = frame.LineWithLf();
        }
        else
        {
            line = RenderWithHop(frame, hop + 1);
        }

        if (Send(owner, line))
        {
            Interlocked.Increment(ref _forwarded);
        }
    }

    void IUpstream.Seed(string owner, byte[] line)
    {
        if (Send(owner, line))
        {
            Interlocked.Increment(ref _seedsSent);
        }
    }

    void IUpstream.Subscribe(string owner, byte[] subjectUtf8) => Interest(owner, "SUB "u8, subjectUtf8);

    void IUpstream.Unsubscribe(string owner, byte[] subjectUtf8) => Interest(owner, "UNSUB "u8, subjectUtf8);

    private void Interest(string owner, ReadOnlySpan<byte> verb, byte[] subjectUtf8)
    {
        if (_links.TryGetValue(owner, out var link))
        {
            var line = new byte[verb.Length + subjectUtf8.Length + 1];
            verb.CopyTo(line);
            subjectUtf8.CopyTo(line, verb.Length);
            line[^1] = (byte)'\n';
            link.SendInterest(line);
        }
    }

    private bool Send(string owner, byte[] line)
    {
        if (!_links.TryGetValue(owner, out var link) || !link.SendPublication(line))
        {
            Interlocked.Increment(ref _dropped);
            return false;
        }

        return true;
    }

    private static byte[] RenderWithHop(RttpFrame frame, int hop)
    {
        var w = new ArrayBufferWriter<byte>(frame.Line.Length + 16);
        RttpWriter.WriteRaw(w, frame.Verb == RttpVerb.PubImage ? "PUBIMAGE "u8 : "PUB "u8);
        RttpWriter.WriteRaw(w, frame.Arg(0));
        for (var i = 0; i < frame.MetaCount; i++)
        {
            if (!frame.MetaName(i).SequenceEqual("hop"u8))
            {
                RttpWriter.WriteRaw(w, " @"u8);
                RttpWriter.WriteRaw(w, frame.MetaName(i));
                RttpWriter.WriteRaw(w, "="u8);
                RttpWriter.WriteRaw(w, frame.MetaValue(i));
            }
        }

        RttpWriter.WriteAscii(w, $" @hop={hop}");
        for (var i = 0; i < frame.FieldCount; i++)
        {
            RttpWriter.WriteRaw(w, " "u8);
            RttpWriter.WriteRaw(w, frame.FieldName(i));
            RttpWriter.WriteRaw(w, "="u8);
            RttpWriter.WriteRaw(w, frame.FieldValue(i));
        }

        RttpWriter.WriteRaw(w, "\n"u8);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Stops every route, giving queued lines (a stopping owner's handover) up to <paramref name="flush"/> to leave.</summary>
    public async Task StopAsync(TimeSpan flush)
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }
        }

        // The changes announced so far (this server leaving: its hand-over) are applied first.
        _server.Farm.Changed -= OnFarmChanged;
        _changes.Writer.TryComplete();
        if (_worker is not null)
        {
            await _worker;
        }

        List<RouteLink> links;
        lock (_lock)
        {
            _stopped = true;
            links = [.. _links.Values];
            _links = new(StringComparer.Ordinal);
        }

        await Task.WhenAll(links.Select(l => l.StopAsync(flush)));
    }

    public async ValueTask DisposeAsync() => await StopAsync(TimeSpan.Zero);

    private static partial class Log
    {
        [LoggerMessage(EventId = 3011, Level = LogLevel.Error, Message = "applying a farm table to the routes failed")]
        public static partial void ApplyFailed(ILogger logger, Exception ex);

        [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "subject owners changed from [{Before}] to [{After}]")]
        public static partial void OwnersChanged(ILogger logger, string before, string after);
    }
}
