using System.Net;
using StreamFarm.Client.Tests.Kit;
using StreamFarm.Protocol;
using StreamFarm.Server;
using StreamFarm.Server.Auth;

namespace StreamFarm.Client.Tests;

/// <summary>
/// Acknowledged publishing from the client (<c>PUB ... @ack=id</c>, answered by ACK or NACK): one
/// real server, a scripted server that answers (or drops the connection) when the test says, and a
/// farm of three with routes for one hop to the owner. Nothing asserts on speed.
/// </summary>
public sealed class PublishAckTests
{
    private static KeyValuePair<string, string>[] N(int n) => [KeyValuePair.Create("n", n.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    private static Task<StreamFarmNode> StartNodeAsync(Action<ServerOptions>? configure = null)
    {
        var options = new ServerOptions { Id = "t1", Listen = "127.0.0.1", TcpPort = 0, HttpPort = 0, ShutdownTimeout = TimeSpan.FromSeconds(3) };
        options.Farm.RoutePort = 0;
        configure?.Invoke(options);
        return StreamFarmNode.StartAsync(options);
    }

    private static Task<RttpConnection> ConnectAsync(StreamFarmNode node, RttpConnectionOptions? options = null) =>
        RttpConnection.ConnectAsync(node.TcpEndPoint.Address.ToString(), node.TcpEndPoint.Port, options);

    [Fact]
    public async Task Connection_AcknowledgedPublications_CompleteOnAck_InCallOrder_ThroughASmallWindow()
    {
        await using var node = await StartNodeAsync();
        await using var sub = await ConnectAsync(node);
        await sub.SubscribeAsync(["/A/x"]);

        await using var pub = await ConnectAsync(node, new RttpConnectionOptions { MaxUnacknowledged = 2 });
        await pub.PublishAsync("/A/x", N(1), PublishOptions.Acknowledged);
        var receipts = Enumerable.Range(2, 49).Select(i => pub.BeginPublish("/A/x", N(i))).ToList();
        await Task.WhenAll(receipts.Select(r => r.Acknowledged));
        await pub.PublishAsync("/A/x", N(51)); // fire and forget, as before
        await pub.PublishAsync("/A/x", N(52), new PublishOptions { Acknowledge = true, Replace = true });
        Assert.Equal(0, pub.Unacknowledged);
        Assert.Equal(0, pub.Nacks);

        // Acknowledged means applied: the subscriber has every value, in the order of the calls.
        Assert.Equal(Enumerable.Range(1, 52).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), await ValuesAsync(sub, 52));
    }

    [Fact]
    public async Task Connection_Denied_IsANackWithCodeAndText_AndCounted()
    {
        await using var node = await StartNodeAsync(o =>
            o.Auth.Tokens.Add(new TokenEntry { Name = "feed", TokenHash = PasswordHasher.HashToken("tok-1"), Subscribe = ["/>"], Publish = ["/FX/*"] }));
        await using var pub = await ConnectAsync(node, new RttpConnectionOptions { Token = "tok-1" });

        var refused = await Assert.ThrowsAsync<PublishRejectedException>(() => pub.PublishAsync("/EQ/VOD", N(1), PublishOptions.Acknowledged));
        Assert.Equal(RttpErrorCode.Denied, refused.Code);
        Assert.Equal("DENIED", refused.CodeName);
        Assert.Equal("feed may not publish to /EQ/VOD", refused.Text);
        Assert.Equal("/EQ/VOD", refused.Subject);
        Assert.Null(refused.RetryAfter);
        Assert.Equal(1, pub.Nacks);

        await pub.PublishAsync("/FX/GBP", N(1), PublishOptions.Acknowledged);
        Assert.Equal(1, pub.Nacks);
    }

    [Fact]
    public async Task Connection_WindowHoldsLinesBack_NackUnavailableCarriesRetryAfter_LostConnectionIsOutcomeUnknown()
    {
        await using var server = new ScriptedServer();
        await using var pub = await RttpConnection.ConnectAsync("127.0.0.1", server.Port, new RttpConnectionOptions { MaxUnacknowledged = 1 });
        var peer = await server.NextAsync();
        var first = pub.BeginPublish("/A/x", N(1));
        var second = pub.BeginPublish("/A/x", N(2));
        var third = pub.BeginPublish("/A/x", N(3), replace: true);
        var ping = pub.PingAsync(); // not a publication: not held by the window

        var line = await peer.NextAsync();
        Assert.Equal("PUB /A/x @ack=1 n=1", line);
        Assert.StartsWith("PING", await peer.NextAsync(), StringComparison.Ordinal); // n=2 waits for a slot
        await ping;
        Assert.False(second.Sent.IsCompleted);

        await peer.SendAsync("NACK 1 UNAVAILABLE @after=1000 no route to s3, the subject's owner\n");
        var refused = await Assert.ThrowsAsync<PublishRejectedException>(() => first.Acknowledged);
        Assert.Equal(RttpErrorCode.Unavailable, refused.Code);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.RetryAfter);
        Assert.Equal("no route to s3, the subject's owner", refused.Text);

        Assert.Equal("PUB /A/x @ack=2 n=2", await peer.NextAsync());
        await second.Sent;
        peer.Dispose(); // the connection ends before n=2 is answered; n=3 was never sent
        Assert.IsType<PublishOutcomeUnknownException>(await Assert.ThrowsAnyAsync<PublishException>(() => second.Acknowledged));
        await Assert.ThrowsAsync<RttpConnectionException>(() => third.Acknowledged);
        Assert.Equal(1, pub.Nacks);
        Assert.Equal(0, pub.Unacknowledged);
    }

    [Fact]
    public async Task FarmClient_ConnectionLostUnanswered_SendsTheLatestValueOfEachFieldAgain_OnceReconnected()
    {
        await using var server = new ScriptedServer();
        var options = new FarmClientOptions
        {
            ServiceName = "scripted.test",
            Port = server.Port,
            Resolver = new FixedResolver(IPAddress.Loopback),
            Selector = new OrderSelector("f1"),
            Random = new Random(7),
            HeartbeatTimeout = TimeSpan.FromMinutes(1), // the scripted server answers PINGs only when the test reads
        };
        await using var watch = new ClientWatch(options);
        var start = watch.StartAsync();
        var peer = await server.NextAsync();
        await start;

        var acked = watch.Client.PublishAsync("/R/x", [KeyValuePair.Create("a", "1")], PublishOptions.Acknowledged);
        var line1 = await peer.ExpectAsync("PUB ");
        var b2 = watch.Client.PublishAsync("/R/x", [KeyValuePair.Create("b", "2")], PublishOptions.Acknowledged);
        var line2 = await peer.ExpectAsync("PUB ");
        var a3 = watch.Client.PublishAsync("/R/x", [KeyValuePair.Create("a", "3")], PublishOptions.Acknowledged);
        var line3 = await peer.ExpectAsync("PUB ");
        Assert.EndsWith(" a=1", line1, StringComparison.Ordinal);
        Assert.EndsWith(" b=2", line2, StringComparison.Ordinal);
        Assert.EndsWith(" a=3", line3, StringComparison.Ordinal);

        await peer.SendAsync($"ACK {ScriptedServer.Peer.AckId(line1)}\n");
        await acked;
        peer.Dispose(); // b=2 and a=3 unanswered

        // The client comes back (the same server, once more) and sends b=2 a=3 as one publication:
        // the latest value of every field, never a=1 after a=3.
        var again = await server.NextAsync();
        var republished = await again.ExpectAsync("PUB ");
        Assert.StartsWith("PUB /R/x @ack=", republished, StringComparison.Ordinal);
        Assert.Equal(["a=3", "b=2"], republished.Split(' ')[3..].Order(StringComparer.Ordinal));
        Assert.False(b2.IsCompleted || a3.IsCompleted);
        await again.SendAsync($"ACK {ScriptedServer.Peer.AckId(republished)}\n");
        await Task.WhenAll(b2, a3);
        Assert.Equal(1, watch.Client.Republished);
        await watch.StepsInOrderAsync(0, (StepKind.Republished, s => s.StartsWith("/R/x: 2 publication(s)", StringComparison.Ordinal))); // steps reach the watcher through a channel: awaited, not read at once
        Assert.Equal(0, watch.Client.Unacknowledged);
    }

    [Fact]
    public async Task FarmClient_OneHop_PublicationsGoStraightToTheOwner_NothingIsForwarded()
    {
        await using var farm = await LoopbackFarm.StartAsync("127.0.31");
        await RoutesUpAsync(farm);
        var subject = SubjectOwnedBy(farm, "s3", "/CT/ONEHOP");
        await using var sub = await RttpConnection.ConnectAsync(farm.AddressOf("s4").ToString(), LoopbackFarm.Port);
        await sub.SubscribeAsync([subject]);

        await using var watch = new ClientWatch(ClientWatch.Options(farm, new OrderSelector("s2"), seed: 3));
        await watch.StartAsync();
        Assert.Equal("s2", watch.Client.ServerId);

        for (var i = 1; i <= 20; i++)
        {
            await watch.Client.PublishAsync(subject, N(i), PublishOptions.Acknowledged);
        }

        for (var i = 21; i <= 30; i++)
        {
            await watch.Client.PublishAsync(subject, N(i)); // fire and forget takes the same way
        }

        using (var patience = new CancellationTokenSource(LoopbackFarm.Patience))
        {
            await watch.Client.WhenAcknowledgedAsync(patience.Token);
        }

        // Straight to s3: no server passed a publication on (the owner has one user: the
        // client's publish-only connection).
        Assert.Equal(["s3"], watch.Client.OwnerConnections);
        Assert.Equal(0, await MetricAsync(farm["s2"], "streamfarm_route_forwarded_total"));
        Assert.Equal(0, await MetricAsync(farm["s4"], "streamfarm_route_forwarded_total"));
        Assert.Equal(1, await MetricAsync(farm["s3"], "streamfarm_users"));
        await watch.StepsInOrderAsync(0, (StepKind.OwnerConnected, s => s.StartsWith("publishing directly to s3", StringComparison.Ordinal)));
        Assert.Equal(0, watch.Client.Nacks);

        // A subscriber on a third server gets every value once, in order.
        Assert.Equal(Enumerable.Range(1, 30).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), await ValuesAsync(sub, 30));
    }

    [Fact]
    public async Task FarmClient_WithoutOneHop_AcknowledgedThroughTheServingServerAndItsRoute()
    {
        await using var farm = await LoopbackFarm.StartAsync("127.0.31");
        await RoutesUpAsync(farm);
        var subject = SubjectOwnedBy(farm, "s3", "/CT/TWOHOPS");
        await using var sub = await RttpConnection.ConnectAsync(farm.AddressOf("s4").ToString(), LoopbackFarm.Port);
        await sub.SubscribeAsync([subject]);

        await using var watch = new ClientWatch(ClientWatch.Options(farm, new OrderSelector("s2"), seed: 4) with { OneHop = false });
        await watch.StartAsync();
        var forwardedBefore = await MetricAsync(farm["s2"], "streamfarm_route_forwarded_total");
        for (var i = 1; i <= 20; i++)
        {
            await watch.Client.PublishAsync(subject, N(i), PublishOptions.Acknowledged);
        }

        Assert.Empty(watch.Client.OwnerConnections);
        Assert.Equal(20, await MetricAsync(farm["s2"], "streamfarm_route_forwarded_total") - forwardedBefore);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), await ValuesAsync(sub, 20));
    }

    private static async Task RoutesUpAsync(LoopbackFarm farm)
    {
        foreach (var node in farm.Nodes)
        {
            while (await MetricAsync(node, "streamfarm_routes_up") != 2)
            {
                await Task.Delay(50);
            }
        }

        await Eventually.TrueAsync(
            () => farm.Nodes.All(n => n.Server.Farm.Current.Members.Count(m => m.Route.Length > 0 && m.State == "active" && m.Liveness == "alive") == 3),
            () => "every table names every server's route");
    }

    /// <summary>One value of a server's <c>/metrics</c> (a counter or gauge without labels).</summary>
    private static async Task<long> MetricAsync(StreamFarmNode node, string name)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://{node.HttpEndPoint}") };
        var text = await http.GetStringAsync("/metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return line is null ? 0 : (long)double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string SubjectOwnedBy(LoopbackFarm farm, string owner, string prefix)
    {
        var ownership = new Ownership(farm.Ids);
        return Enumerable.Range(0, 1000).Select(i => $"{prefix}{i}").First(s => ownership.OwnerOf(s) == owner);
    }

    /// <summary>The values of <c>n</c> a subscriber receives (after NOT_FOUND), checking that seq goes up by one.</summary>
    private static async Task<List<string>> ValuesAsync(RttpConnection sub, int count)
    {
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        var values = new List<string>();
        ulong seq = 0;
        while (values.Count < count)
        {
            var m = await sub.Messages.ReadAsync(patience.Token);
            if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update)
            {
                Assert.True(seq == 0 || m.Seq == seq + 1, $"seq {m.Seq} after {seq}");
                seq = m.Seq;
                values.Add(m.Fields.Single(f => f.Key == "n").Value);
            }
        }

        return values;
    }
}
