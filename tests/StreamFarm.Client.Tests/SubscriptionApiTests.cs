using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using StreamFarm.Client.Tests.Kit;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests;

/// <summary>
/// The client as an application uses it: a stream of typed messages per subscription, the last
/// value of a subject, state and events, and the client built by dependency injection from
/// configuration. Three real servers on 127.0.43.2-4; outcomes awaited, never timed.
/// </summary>
public sealed class SubscriptionApiTests
{
    private const string Subnet = "127.0.43";

    private static CancellationToken Patience() => new CancellationTokenSource(LoopbackFarm.Patience).Token;

    [Fact]
    public async Task SubscribeAsync_TypedImageThenUpdates_ALaterSubscriberStartsFromTheCurrentImage_LastOneOutUnsubscribes()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/API/A");
        var factory = new CountingFactory();
        await using var client = new FarmClient(ClientWatch.Options(farm, Selection.Selectors.Default(), seed: 1) with { ConnectionFactory = factory });

        var first = new List<SubjectMessage>();
        await foreach (var m in client.SubscribeAsync("/API/A", Patience()))
        {
            first.Add(m);
            if (first.Count == 4)
            {
                // A second subscriber while the first goes on: its first message is the current image.
                await foreach (var late in client.SubscribeAsync("/API/A", Patience()))
                {
                    var image = Assert.IsType<SubjectImage>(late);
                    Assert.True(image.Seq >= ((SubjectUpdate)first[^1]).Seq, $"{image.Seq} after {((SubjectUpdate)first[^1]).Seq}");
                    Assert.NotNull(image["n"]);
                    break;
                }

                Assert.True(client.TryGetRecord("/API/A", out _)); // the first stream still follows it
                break;
            }
        }

        var firstImage = Assert.IsType<SubjectImage>(first[0]);
        Assert.Equal("/API/A", firstImage.Subject);
        Assert.Equal(Continuity.Continuous, firstImage.Continuity);
        Assert.Equal(client.ServerId, firstImage.Server);
        var updates = first.Skip(1).Cast<SubjectUpdate>().ToList();
        Assert.All(updates, u => Assert.Equal(firstImage.Epoch, u.Epoch));
        Assert.True(updates.Zip(updates.Skip(1)).All(p => p.Second.Seq > p.First.Seq));
        Assert.All(updates, u => Assert.NotNull(u["n"]));

        // Both streams ended: the subject is forgotten (and unsubscribed on the server).
        Assert.False(client.TryGetRecord("/API/A", out _));
        Assert.True(factory.Connects > 0, "sessions open through the connection factory");
    }

    [Fact]
    public async Task GetAsync_TheLastValue_OrNullWhenNothingWasPublished()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/API/G");
        await using var client = new FarmClient(ClientWatch.Options(farm, Selection.Selectors.Default(), seed: 2));
        await client.StartAsync(Patience());

        var record = await client.GetAsync("/API/G", Patience());
        Assert.NotNull(record);
        Assert.Equal("/API/G", record.Subject);
        Assert.NotNull(record["n"]);
        Assert.Equal(SubjectStatus.Ok, record.Status);
        Assert.Null(await client.GetAsync("/API/NEVER", Patience()));

        // Subscribed through the channel API: the view follows the stream without a subscription of its own.
        await client.SubscribeAsync(["/API/G"]);
        await Eventually.TrueAsync(() => client.TryGetRecord("/API/G", out var r) && r.Seq > record.Seq, () => "the record moves on");
    }

    [Fact]
    public async Task State_AndEvents_ConnectedThenLostAndMovedWhenTheServerStops()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var client = new FarmClient(ClientWatch.Options(farm, Selection.Selectors.Default(), seed: 3));
        var states = new List<FarmClientState>();
        var events = new List<string>();
        var connected = new TaskCompletionSource<FarmServerEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var moved = new TaskCompletionSource<FarmServerEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.StateChanged += (_, e) => { lock (states) { states.Add(e.Current); } };
        client.Connected += (_, e) => { lock (events) { events.Add("connected " + e.ServerId); } connected.TrySetResult(e); };
        client.Lost += (_, e) => { lock (events) { events.Add("lost " + e.ServerId); } };
        client.Moved += (_, e) => { lock (events) { events.Add("moved " + e.ServerId); } moved.TrySetResult(e); };
        Assert.Equal(FarmClientState.Created, client.State);

        await client.StartAsync(Patience());
        var first = await connected.Task.WaitAsync(Patience());
        Assert.Equal(client.ServerId, first.ServerId);
        Assert.NotNull(first.Choice);
        Assert.Equal(first.ServerId, first.Choice.Server.Id);
        Assert.Equal(first.Choice.Reason, first.Reason);

        await farm[first.ServerId].StopAsync(); // MOVE SHUTDOWN
        var second = await moved.Task.WaitAsync(Patience());
        Assert.NotEqual(first.ServerId, second.ServerId);
        await Eventually.TrueAsync(() => client.State == FarmClientState.Connected, () => $"state {client.State}");
        lock (events)
        {
            Assert.Equal(["connected " + first.ServerId, "lost " + first.ServerId, "moved " + second.ServerId], events);
        }

        lock (states)
        {
            Assert.Equal([FarmClientState.Connecting, FarmClientState.Connected, FarmClientState.Reconnecting, FarmClientState.Connected], states);
        }
    }

    [Fact]
    public async Task AddStreamFarmClient_BindsConfiguration_AndTheResolvedClientStreams()
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        await using var publisher = await FarmPublisher.StartAsync(farm, "/API/DI");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["StreamFarm:ServiceName"] = LoopbackFarm.ServiceName,
            ["StreamFarm:Port"] = LoopbackFarm.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["StreamFarm:Dns"] = farm.DnsEndPoint.ToString(),
            ["StreamFarm:Policy"] = "fewest",
            ["StreamFarm:ClientName"] = "di-test",
            ["StreamFarm:Overflow"] = "DropOldest",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddStreamFarmClient(configuration.GetSection("StreamFarm"));
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IFarmClient>();
        Assert.Same(client, provider.GetRequiredService<FarmClient>());

        await foreach (var m in client.SubscribeAsync("/API/DI", Patience()))
        {
            Assert.IsType<SubjectImage>(m);
            break;
        }

        Assert.Equal(FarmClientState.Connected, client.State);
        Assert.Contains(client.ServerId, farm.Ids);
    }

    private sealed class CountingFactory : IRttpConnectionFactory
    {
        private int _connects;

        public int Connects => Volatile.Read(ref _connects);

        public Task<RttpConnection> ConnectAsync(string host, int port, RttpConnectionOptions options, CancellationToken cancel)
        {
            Interlocked.Increment(ref _connects);
            return RttpConnection.ConnectAsync(host, port, options, cancel);
        }
    }
}
