using System.Text;
using Microsoft.Extensions.Time.Testing;
using StreamFarm.Membership;
using StreamFarm.Protocol;
using StreamFarm.Server.Connections;
using StreamFarm.Server.Routes;
using StreamFarm.Server.Subjects;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// Routes between servers: three in-process servers with membership on 127.0.12.2 to .4 (real
/// sockets). Outcomes are awaited with a generous deadline; nothing asserts on speed.
/// </summary>
public sealed class RouteTests
{
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(7, 32).Select(i => (byte)i).ToArray());

    [Fact]
    public void Ownership_IsTheSameForEveryOrderOfTheTable_SpreadsSubjects_AndMovesOnlyToAJoiningServer()
    {
        var three = new Ownership(["s3", "s2", "s4"]);
        var sameInAnotherOrder = new Ownership(["s4", "s2", "s3"]);
        var four = new Ownership(["s2", "s3", "s4", "s5"]);
        var subjects = Enumerable.Range(0, 3000).Select(i => $"/FX/PAIR{i}").ToList();

        Assert.All(subjects, s => Assert.Equal(three.OwnerOf(s), sameInAnotherOrder.OwnerOf(s)));
        var shares = subjects.GroupBy(three.OwnerOf).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(3, shares.Count);
        Assert.All(shares.Values, n => Assert.InRange(n, 800, 1200));

        // A fourth server takes about a quarter, and only from... to itself: nothing moves between the others.
        var moved = subjects.Where(s => three.OwnerOf(s) != four.OwnerOf(s)).ToList();
        Assert.All(moved, s => Assert.Equal("s5", four.OwnerOf(s)));
        Assert.InRange(moved.Count, 600, 900);
    }

    [Fact]
    public void RouteAuth_AcceptsTheFarmKey_RefusesReplayOtherTargetsOtherKeysAndOldClocks()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-29T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var farmKey = Convert.FromBase64String(Key);
        var sender = new RouteAuth(new Keyring([farmKey]), time);
        var receiver = new RouteAuth(new Keyring([RandomKey(), farmKey]), time); // rotation: any key of the ring
        var stranger = new RouteAuth(new Keyring([RandomKey()]), time);

        static Dictionary<string, string> Fields(string credentials) =>
            credentials.Split(' ').Select(f => f.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        string? Check(RouteAuth auth, string from, string to, string credentials)
        {
            var f = Fields(credentials);
            return auth.Verify(from, to, f["ts"], f["nonce"], f["mac"]);
        }

        var good = sender.Credentials("s2", "s3");
        Assert.Null(Check(receiver, "s2", "s3", good));
        Assert.Equal("route HELLO replayed", Check(receiver, "s2", "s3", good));
        Assert.Contains("wrong route credentials", Check(receiver, "s2", "s4", sender.Credentials("s2", "s3")), StringComparison.Ordinal);
        Assert.Contains("wrong route credentials", Check(receiver, "s9", "s3", sender.Credentials("s2", "s3")), StringComparison.Ordinal);
        Assert.Contains("wrong route credentials", Check(receiver, "s2", "s3", stranger.Credentials("s2", "s3")), StringComparison.Ordinal);
        var late = sender.Credentials("s2", "s3");
        time.Advance(TimeSpan.FromMinutes(3));
        Assert.Contains("clock window", Check(receiver, "s2", "s3", late), StringComparison.Ordinal);
        Assert.NotNull(receiver.Verify("s2", "s3", "123", "short", "AAAA"));
        Assert.NotNull(receiver.Verify("s2", "s3", null, null, null));
    }

    [Fact]
    public async Task RouteHello_WithoutTheFarmKey_OrOnTheWrongPort_IsRefusedWithAuthFailed()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.12");
        await farm.RoutesUpAsync();
        var node = farm.Nodes[0];
        var routePort = System.Net.IPEndPoint.Parse(node.Server.RouteAddress);
        var hello = $"HELLO 1 client=route route=s9 ts={DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()} nonce=00112233445566778899 mac=AAAA";

        await using (var forged = await LineClient.ConnectAsync(routePort))
        {
            await forged.SendAsync(hello);
            Assert.Equal("ERR AUTH_FAILED wrong route credentials (not this farm's key)", await forged.ExpectAsync("ERR "));
        }

        // Each port takes its own kind: clients on the RTTP port, servers on the route port.
        await using (var client = await LineClient.ConnectAsync(routePort))
        {
            await client.SendAsync("HELLO 1 client=someone");
            Assert.Contains("this is the route port", await client.ExpectAsync("ERR AUTH_FAILED"), StringComparison.Ordinal);
        }

        await using (var route = await LineClient.ConnectAsync(node.TcpEndPoint))
        {
            await route.SendAsync(hello);
            Assert.Contains("routes connect to the route port", await route.ExpectAsync("ERR AUTH_FAILED"), StringComparison.Ordinal);
        }

        Assert.Equal(2, node.Server.RouteSessions); // the other two servers' routes only
        Assert.Equal(0, node.Server.Users);
    }

    [Fact]
    public async Task PublishAtAnyServer_EverySubscriberEverywhereGetsOneOrder_AndImagesAreIdentical()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.13");

        // One subject owned by each server, each published from a server that does not own it and from the owner.
        var subjects = farm.Ids.Select(id => farm.SubjectOwnedBy(id, "/R/ORDER")).ToList();
        var subscribers = new List<(string Server, LineClient Client)>();
        foreach (var node in farm.Nodes)
        {
            var c = await node.ConnectAsync();
            await c.SendAsync("SUB " + string.Join(' ', subjects));
            for (var i = 0; i < subjects.Count; i++)
            {
                Assert.StartsWith("STATUS ", await c.ExpectAsync("STATUS "), StringComparison.Ordinal); // NOT_FOUND: nothing published yet
            }

            subscribers.Add((node.Server.Options.Id, c));
        }

        await farm.RoutesUpAsync();
        var publishers = await Task.WhenAll(farm.Nodes.Select(n => n.ConnectAsync()));
        const int Rounds = 60;
        var sent = 0;
        for (var round = 0; round < Rounds; round++)
        {
            for (var p = 0; p < publishers.Length; p++)
            {
                foreach (var subject in subjects)
                {
                    var line = round % 20 == 19
                        ? $"PUBIMAGE {subject} @ack={sent} round={round} from=s{p + 2}"
                        : $"PUB {subject} @ack={sent} round={round} from=s{p + 2} f{round % 5}={round}";
                    await publishers[p].SendAsync(line);
                    sent++;
                }
            }
        }

        // Every publication is acknowledged (by its subject's owner, through the server it was sent
        // to). Concurrent writes of the same fields from three servers: the one with the later
        // stamp wins, so a publication may be superseded (acknowledged, not sequenced). The owners'
        // final seqs are what every subscriber must reach.
        var acks = 0;
        foreach (var p in publishers)
        {
            for (var i = 0; i < Rounds * subjects.Count; i++)
            {
                Assert.StartsWith("ACK ", await p.ExpectAsync("ACK "), StringComparison.Ordinal);
                acks++;
            }
        }

        Assert.Equal(sent, acks);
        var expected = subjects.ToDictionary(s => s, s => (long)farm.Nodes.Single(n => n.Server.Routes!.OwnerOf(s) is null).Server.Subjects.Find(System.Text.Encoding.UTF8.GetBytes(s))!.Seq);

        // Every subscriber on every server: IMAGE first (seq 1), then each UPDATE or IMAGE with the
        // next seq, all under one epoch; and the same lines as every other subscriber.
        var streams = new Dictionary<string, List<string>>();
        foreach (var (server, c) in subscribers)
        {
            var lines = new List<string>();
            var last = subjects.ToDictionary(s => s, _ => (Epoch: "", Seq: 0L));
            while (last.Values.Sum(v => v.Seq) < expected.Values.Sum())
            {
                var line = await c.NextAsync() ?? throw new InvalidOperationException($"{server}: closed after {lines.Count} lines");
                var parts = line.Split(' ');
                Assert.True(parts[0] is "IMAGE" or "UPDATE", $"{server}: unexpected {line}");
                var (epoch, seq) = last[parts[1]];
                Assert.True(seq > 0 || parts[0] == "IMAGE", $"{server}: the first message of {parts[1]} is an IMAGE: {line}");
                Assert.True(epoch.Length == 0 || epoch == parts[2], $"{server}: one epoch: {line}");
                Assert.Equal(seq + 1, long.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture));
                Assert.DoesNotContain("@merged", line, StringComparison.Ordinal);
                last[parts[1]] = (parts[2], seq + 1);
                lines.Add(line);
            }

            streams[server] = [.. lines.OrderBy(l => l.Split(' ')[1], StringComparer.Ordinal).ThenBy(l => long.Parse(l.Split(' ')[3], System.Globalization.CultureInfo.InvariantCulture))];
        }

        Assert.Equal(streams["s2"], streams["s3"]);
        Assert.Equal(streams["s2"], streams["s4"]);

        // A late subscriber anywhere gets the same image.
        var images = new List<string>();
        foreach (var node in farm.Nodes)
        {
            await using var late = await node.ConnectAsync();
            await late.SendAsync("SUB " + subjects[0]);
            images.Add(await late.ExpectAsync("IMAGE "));
        }

        Assert.Single(images.Distinct());
        Assert.Contains($" {expected[subjects[0]]} ", images[0], StringComparison.Ordinal);

        foreach (var c in publishers.Concat(subscribers.Select(s => s.Client)))
        {
            await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Interest_OnlyServersWithSubscribersGetUpdates_AndUnsubscribeStopsThem()
    {
        // The listener is also the subject's successor, which keeps a standby copy whatever its
        // clients do; the bystander is neither, and gets nothing until a client of its own asks.
        await using var farm = await RouteFarm.StartAsync("127.0.14");
        await farm.RoutesUpAsync();
        var owner = farm.Nodes[0];
        var listener = farm.Nodes[1];
        var bystander = farm.Nodes[2];
        var subject = farm.SubjectOwnedBy(owner.Server.Options.Id, "/R/INTEREST", successor: listener.Server.Options.Id);

        await using var publisher = await owner.ConnectAsync();
        await publisher.SendAsync($"PUB {subject} n=0");
        await using var sub = await listener.ConnectAsync();
        await sub.SendAsync("SUB " + subject);
        Assert.Contains(" n=0", await sub.ExpectAsync("IMAGE "), StringComparison.Ordinal);

        var bystanderBefore = bystander.Server.Routes!.Received;
        for (var i = 1; i <= 100; i++)
        {
            await publisher.SendAsync($"PUB {subject} n={i}");
        }

        for (var i = 1; i <= 100; i++)
        {
            Assert.EndsWith($" n={i}", await sub.ExpectAsync("UPDATE "), StringComparison.Ordinal);
        }

        Assert.Equal(bystanderBefore, bystander.Server.Routes!.Received);
        var record = owner.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject))!;
        Assert.Equal(1, record.SubscriberCount); // the listener's route, nobody else

        // The bystander's first subscriber makes it interested; its last one ends the interest.
        await using (var late = await bystander.ConnectAsync())
        {
            await late.SendAsync("SUB " + subject);
            Assert.Contains(" n=100", await late.ExpectAsync("IMAGE "), StringComparison.Ordinal);
            Assert.Equal(2, record.SubscriberCount);
            await late.SendAsync("UNSUB " + subject);
            await Eventually.TrueAsync(() => record.SubscriberCount == 1, "the owner drops the bystander's interest");
        }

        Assert.Null(bystander.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject))); // its record went with its last subscriber

        // The listener's last subscriber leaves: it keeps following, as the subject's successor.
        await sub.SendAsync("UNSUB " + subject);
        await publisher.SendAsync($"PUB {subject} n=101");
        var copy = listener.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject))!;
        await Eventually.TrueAsync(() => copy.Snapshot().Fields.Any(f => f is { Key: "n", Value: "101" }), "the successor's standby copy has the last value");
        Assert.True(copy.IsStandby);
        Assert.Equal(0, copy.SubscriberCount);
        Assert.Equal(1, record.SubscriberCount); // the listener's route
    }

    /// <summary>
    /// A server that asks an owner for thousands of subjects at once (a restart, a change of owners,
    /// standby copies) gets thousands of IMAGEs at once. The owner's route session used to queue
    /// them all, pass its hard limit (four times a client's buffer), be cut as a slow consumer,
    /// and the peer reconnected, asked for everything again and was cut again. Now the route
    /// session stops reading the peer's lines while its answers wait, and nothing is cut.
    /// </summary>
    [Fact]
    public async Task ABurstOfSubscriptionsOverARoute_IsAnsweredAtTheOwnersPace_NotCutAsASlowConsumer()
    {
        const int Subjects = 4000;
        // The owner (s2) with small buffers, so that its route session's limit is what the burst meets;
        // the other server's client with room for what its route brings in large reads.
        await using var farm = await RouteFarm.StartAsync("127.0.25", servers: 2, configure: o => o.Limits.MaxOutboundBytes = o.Id == "s2" ? 64 * 1024 : 8 << 20);
        await farm.RoutesUpAsync();
        var owner = farm.Nodes[0];
        var other = farm.Nodes[1];
        var ownership = new Ownership(farm.Ids);
        var subjects = Enumerable.Range(0, Subjects * 3).Select(i => $"/R/BURST/{i}").Where(s => ownership.OwnerOf(s) == owner.Server.Options.Id).Take(Subjects).ToList();
        Assert.Equal(Subjects, subjects.Count);
        var pad = new string('x', 200);
        await using (var publisher = await owner.ConnectAsync())
        {
            foreach (var chunk in subjects.Chunk(100))
            {
                await publisher.SendAsync(string.Join('\n', chunk.Select(s => $"PUB {s} pad={pad}")));
            }

            await publisher.SendAsync("PING published");
            await publisher.ExpectAsync("PONG published");
        }

        await using var sub = await other.ConnectAsync();
        foreach (var chunk in subjects.Chunk(500))
        {
            await sub.SendAsync("SUB " + string.Join(' ', chunk)); // 4,000 subjects: 800 KB of IMAGEs over the route
        }

        for (var i = 0; i < Subjects; i++)
        {
            await sub.ExpectAsync("IMAGE ");
        }

        Assert.Equal(0, owner.Server.SlowConsumerCloses);
        Assert.Equal(1, owner.Server.Routes!.RoutesUp);
    }

    [Fact]
    public async Task Successor_KeepsAStandbyCopy_WithNoSubscriberOfItsOwn_AndOnlyIt()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.24");
        await farm.RoutesUpAsync();
        var owner = farm.Nodes[0];
        var successor = farm.Nodes[1];
        var other = farm.Nodes[2];
        var subject = farm.SubjectOwnedBy(owner.Server.Options.Id, "/R/STANDBY", successor: successor.Server.Options.Id);
        await using var publisher = await owner.ConnectAsync();
        for (var i = 1; i <= 20; i++)
        {
            await publisher.SendAsync($"PUB {subject} n={i} b=x");
        }

        await Eventually.TrueAsync(() => successor.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject))?.Snapshot().Fields.Any(f => f is { Key: "n", Value: "20" }) == true, "the successor's copy has the last value");
        var copy = successor.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject))!;
        Assert.True(copy.IsStandby);
        Assert.Equal(owner.Server.Options.Id, copy.Upstream);
        Assert.Null(other.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject)));
        Assert.Equal(1, owner.Server.Routes!.StandbyAsked);
    }

    /// <summary>
    /// A client's longest line grows on its way to the owner (the stamp and hop count are added):
    /// the route takes it with the servers' limits, and the owner answers it (here: too large for
    /// a record). It once read them with the clients' maxline, so one maximal PUB cut the route,
    /// which reconnected, sent it again and was cut again, and nothing more reached that owner.
    /// </summary>
    [Fact]
    public async Task MaximalPublication_ForAnotherOwner_PassesTheRoute_AndTheRouteStaysUsable()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.20");
        await farm.RoutesUpAsync();
        var entry = farm.Nodes[0];
        var owner = farm.Nodes[1];
        var subject = farm.SubjectOwnedBy(owner.Server.Options.Id, "/R/BIG");
        var maxLine = entry.Server.Options.Limits.MaxLineBytes;

        await using var publisher = await entry.ConnectAsync();
        var head = $"PUB {subject} @ack=big x=";
        await publisher.SendAsync(head + new string('v', maxLine - head.Length));
        Assert.StartsWith("NACK big TOO_LARGE refused by ", await publisher.ExpectAsync("NACK "), StringComparison.Ordinal);

        await publisher.SendAsync($"PUB {subject} @ack=after x=small");
        Assert.Equal("ACK after", await publisher.ExpectAsync("ACK "));
        await using var sub = await farm.Nodes[2].ConnectAsync();
        await sub.SendAsync("SUB " + subject);
        Assert.EndsWith(" x=small", await sub.ExpectAsync("IMAGE "), StringComparison.Ordinal);
        Assert.Equal(0, entry.Server.Routes!.Dropped);
    }

    [Fact]
    public async Task OwnerStops_ItsSubjectsMoveWithTheirData_AndTheStreamGoesOn()
    {
        await using var farm = await RouteFarm.StartAsync("127.0.15");
        await farm.RoutesUpAsync();
        var owner = farm.Nodes[0];
        var rest = farm.Nodes.Skip(1).ToList();
        var subject = farm.SubjectOwnedBy(owner.Server.Options.Id, "/R/HANDOVER");

        await using var publisher = await rest[0].ConnectAsync();
        await publisher.SendAsync($"PUB {subject} a=1 b=2");
        await publisher.SendAsync($"PUB {subject} b=3");
        await using var sub = await rest[1].ConnectAsync();
        await sub.SendAsync("SUB " + subject);

        // The SUB and the PUBs take different routes to the owner: the subscriber may get
        // NOT_FOUND first, then the first publication as an IMAGE; in any case it reaches seq 2.
        string line;
        string[] before;
        do
        {
            line = await sub.NextAsync() ?? throw new InvalidOperationException("closed");
            before = line.Split(' ');
        }
        while (!(line.StartsWith("IMAGE ", StringComparison.Ordinal) || line.StartsWith("UPDATE ", StringComparison.Ordinal)) || before[3] != "2");

        Assert.EndsWith(" b=3", line, StringComparison.Ordinal);

        await owner.StopAsync();

        // The new owner took the record over: a new epoch, the same fields (the copies of the old
        // owner and of the replicas are the same record at the same seq: one image).
        var images = new List<string[]>();
        do
        {
            line = await sub.NextAsync() ?? throw new InvalidOperationException("closed");
            if (line.StartsWith("IMAGE ", StringComparison.Ordinal))
            {
                images.Add(line.Split(' '));
            }
        }
        while (images.Count == 0);

        var after = images[0];
        Assert.NotEqual(before[2], after[2]);
        Assert.Equal(["a=1", "b=3"], after[4..]);

        await publisher.SendAsync($"PUB {subject} a=9");
        do
        {
            line = await sub.NextAsync() ?? throw new InvalidOperationException("closed");
            Assert.False(line.StartsWith("IMAGE ", StringComparison.Ordinal), $"one image after the handover, then updates: {line}");
        }
        while (!line.StartsWith("UPDATE ", StringComparison.Ordinal));

        Assert.Equal($"UPDATE {subject} {after[2]} {long.Parse(after[3], System.Globalization.CultureInfo.InvariantCulture) + 1} a=9", line);
    }

    [Fact]
    public async Task ASeedPassedOn_ThatFindsNoRouteToItsOwner_WaitsAndReachesTheNextOwner_InsteadOfBeingDropped()
    {
        // A seed (a copy of a record, perhaps the only one of some writes) sent here by a server
        // whose table took this one for the owner is passed on to the owner. When the owner's route
        // was full (a million-subject hand-over fills it) or gone, it used to be dropped: counted,
        // and lost, since the server that sent it keeps nothing a route took. Now it waits with the
        // parked seeds and goes to whoever owns the subject then.
        await using var farm = await RouteFarm.StartAsync("127.0.45");
        await farm.RoutesUpAsync();
        var (here, gone) = (farm.Nodes[0], farm.Nodes[2]);
        var subject = farm.SubjectOwnedBy(gone.Server.Options.Id, "/R/RELAYED");
        var routes = here.Server.Routes!;
        await gone.StopAsync();

        // Once this server's table has no route to it (the owner left), a seed sent here for it
        // (by a server whose table was behind) finds no route: the same path as a full route.
        await Eventually.TrueAsync(() => routes.LinkTo(gone.Server.Options.Id) is null, "the stopped owner's route is gone");

        var (dropped, parked) = (routes.Dropped, routes.SeedsParked);
        var seed = new RttpFrame();
        var line = $"PUBIMAGE {subject} @seed=100.5 @copy=1 @hop=1 @clr=0 @fts=10 v=7";
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(line)), seed, new RttpLimits(), out _));
        ((IUpstream)routes).Forward(gone.Server.Options.Id, seed, 0, 1, PubOrigin.None);
        Assert.Equal(dropped, routes.Dropped);
        Assert.Equal(parked + 1, routes.SeedsParked);

        // A publication (not a seed) in its place is refused, counted by its reason, and its
        // publisher told; one whose publisher cannot be told (none here) is kept as a seed is.
        var (client, session) = await ConnectWithSessionAsync(here);
        await using var publisher = client;
        var (full, noRoute) = (routes.DroppedFor(RouteDropReason.Full), routes.DroppedFor(RouteDropReason.NoRoute));
        var publication = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes($"PUB {subject} @hop=1 v=8")), publication, new RttpLimits(), out _));
        Assert.False(((IUpstream)routes).Forward(gone.Server.Options.Id, publication, 0, 1, new PubOrigin(session, "p8"u8.ToArray())));
        Assert.Equal($"NACK p8 UNAVAILABLE @after=1000 no route to {gone.Server.Options.Id}, the subject's owner", await publisher.ExpectAsync("NACK "));
        Assert.Equal(dropped + 1, routes.Dropped);
        Assert.Equal((full, noRoute + 1), (routes.DroppedFor(RouteDropReason.Full), routes.DroppedFor(RouteDropReason.NoRoute)));
        var kept = routes.PublicationsParked;
        var other = farm.SubjectOwnedBy(gone.Server.Options.Id, "/R/UNTOLD");
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes($"PUB {other} @hop=1 v=9")), publication, new RttpLimits(), out _));
        Assert.True(((IUpstream)routes).Forward(gone.Server.Options.Id, publication, 0, 1, PubOrigin.None));
        Assert.Equal((dropped + 1, kept + 1), (routes.Dropped, routes.PublicationsParked));

        // Once the owner is gone from the tables, the seed reaches the subject's next owner.
        var next = new Ownership([farm.Nodes[0].Server.Options.Id, farm.Nodes[1].Server.Options.Id]).OwnerOf(subject);
        await using var sub = await farm.Nodes.Single(n => n.Server.Options.Id == next).ConnectAsync();
        await Eventually.TrueAsync(() => farm.Nodes.Single(n => n.Server.Options.Id == next).Server.Subjects.Find(Encoding.UTF8.GetBytes(subject)) is { Seq: > 0 }, $"the seed applied at {next}");
        await sub.SendAsync("SUB " + subject);
        Assert.EndsWith(" v=7", await sub.ExpectAsync("IMAGE "), StringComparison.Ordinal);

        var owner = new Ownership([farm.Nodes[0].Server.Options.Id, farm.Nodes[1].Server.Options.Id]).OwnerOf(other);
        await Eventually.TrueAsync(() => farm.Nodes.Single(n => n.Server.Options.Id == owner).Server.Subjects.Find(Encoding.UTF8.GetBytes(other)) is { Seq: > 0 }, $"the kept publication applied at {owner}");
        var field = farm.Nodes.Single(n => n.Server.Options.Id == owner).Server.Subjects.Find(Encoding.UTF8.GetBytes(other))!.Snapshot().Fields.Single();
        Assert.Equal(("v", "9"), (field.Key, field.Value));
    }

    [Fact]
    public async Task APublicationTheNextServerCouldNotPassOn_IsToldToAPublisherStillThere_AndKeptWhenItsPublisherHasGone()
    {
        // A server passes a publication on to the server its table takes for the owner. That one,
        // unable to pass it on (its route to the owner stalled for 5 s, no room, the tables
        // disagree), refuses it with a route NACK; it cannot know whether the publisher is still
        // connected here, so this server decides. A publisher still there is told, and the
        // publication is never applied. One that has gone cannot be told: its publication used to
        // be dropped here, lost without anyone knowing. Now it is kept and reaches the owner. The
        // refusal comes from a hop count of 3 (what tables that disagree produce); a stalled route
        // sends the same NACK.
        await using var farm = await RouteFarm.StartAsync("127.0.46");
        await farm.RoutesUpAsync();
        var (here, next) = (farm.Nodes[0], farm.Nodes[1]);
        var subject = farm.SubjectOwnedBy(here.Server.Options.Id, "/R/KEPT");
        var routes = here.Server.Routes!;
        var link = routes.LinkTo(next.Server.Options.Id)!;
        var (publisher, publisherSession) = await ConnectWithSessionAsync(here);
        var peerDrops = routes.DroppedFor(RouteDropReason.Peer);

        Assert.True(link.SendPublication(Encoding.UTF8.GetBytes($"PUB {subject} @ts=1000 @hop=3 v=1\n"), new PubOrigin(publisherSession, "p1"u8.ToArray())));
        Assert.StartsWith("NACK p1 UNAVAILABLE ", await publisher.ExpectAsync("NACK "), StringComparison.Ordinal);
        Assert.Equal(peerDrops + 1, routes.DroppedFor(RouteDropReason.Peer));

        await publisher.DisposeAsync(); // a script that published and exited
        await Eventually.TrueAsync(() => !publisherSession.CanBeTold, "the publisher's session closed");
        var parked = routes.PublicationsParked;
        Assert.True(link.SendPublication(Encoding.UTF8.GetBytes($"PUB {subject} @ts=2000 @hop=3 v=2\n"), new PubOrigin(publisherSession, "p2"u8.ToArray())));
        await Eventually.TrueAsync(() => here.Server.Subjects.Find(Encoding.UTF8.GetBytes(subject)) is { Seq: > 0 }, "the publication kept, applied at its owner");
        Assert.Equal(parked + 1, routes.PublicationsParked);
        Assert.Equal(peerDrops + 1, routes.DroppedFor(RouteDropReason.Peer));

        await using var sub = await here.ConnectAsync();
        await sub.SendAsync("SUB " + subject);
        var image = (await sub.ExpectAsync("IMAGE ")).Split(' ');
        Assert.Equal(("1", "v=2"), (image[3], image[^1])); // the refused one was never applied
    }

    /// <summary>A client connected to <paramref name="node"/>, with its session there (to give a publication that origin directly).</summary>
    private static async Task<(LineClient Client, ClientSession Session)> ConnectWithSessionAsync(StreamFarmNode node)
    {
        ClientSession? session = null;
        node.Server.AfterLineForTesting = s => _ = s.IsRoute ? null : Interlocked.CompareExchange(ref session, s, null);
        var client = await node.ConnectAsync();
        await Eventually.TrueAsync(() => Volatile.Read(ref session) is not null, "the client's session seen (after its HELLO)");
        node.Server.AfterLineForTesting = null;
        return (client, Volatile.Read(ref session)!);
    }

    private static byte[] RandomKey() => System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
}
