using System.Globalization;
using System.Text;
using StreamFarm.Client.Tests.Kit;

namespace StreamFarm.Client.Tests;

/// <summary>
/// An application that stops reading must not make a healthy server look dead: the client keeps
/// reading the socket (answering and counting pings), and what the application does not take in
/// time overflows as the options chose. Three real servers on 127.0.41.2-4; the application pauses
/// while a burst far larger than every buffer arrives. Nothing asserts on speed: the pause only has
/// to be longer than the heartbeat timeout.
/// </summary>
public sealed class PausedApplicationTests
{
    private const string Subnet = "127.0.41";
    private const int Burst = 30_000;

    [Theory]
    [InlineData(OverflowPolicy.Conflate)]
    [InlineData(OverflowPolicy.DropOldest)]
    [InlineData(OverflowPolicy.Wait)]
    public async Task ApplicationPaused_ServerStaysHealthy_ClientKeepsItAndOverflowsAsChosen(OverflowPolicy policy)
    {
        await using var farm = await LoopbackFarm.StartAsync(Subnet);
        var options = ClientWatch.Options(farm, Selection.Selectors.Default(), seed: 41) with
        {
            HeartbeatTimeout = TimeSpan.FromSeconds(1),
            MessageBuffer = 10,
            Overflow = policy,
            Connection = new RttpConnectionOptions { ClientName = "paused-app", MessageBuffer = 10 },
        };
        await using var client = new FarmClient(options);
        var overflowed = new TaskCompletionSource<OverflowEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Overflowed += (_, e) => overflowed.TrySetResult(e);
        var steps = new List<ConnectionStep>();
        var readSteps = Task.Run(async () =>
        {
            await foreach (var s in client.Steps.ReadAllAsync())
            {
                lock (steps)
                {
                    steps.Add(s);
                }
            }
        });
        await client.SubscribeAsync(["/CT/PAUSE"]);
        using (var patience = new CancellationTokenSource(LoopbackFarm.Patience))
        {
            await client.StartAsync(patience.Token);
        }

        var server = client.ServerId!;

        // The application reads nothing from here on, while a burst larger than every buffer arrives.
        await using (var publisher = await RttpConnection.ConnectAsync(farm.AddressOf(server).ToString(), LoopbackFarm.Port))
        {
            for (var from = 1; from <= Burst; from += 1_000)
            {
                var lines = new StringBuilder();
                for (var n = from; n < from + 1_000; n++)
                {
                    lines.Append(CultureInfo.InvariantCulture, $"PUB /CT/PAUSE n={n}\n");
                }

                await publisher.SendRawAsync(lines.ToString());
            }

            await publisher.PingAsync();
        }

        // The pause: three heartbeat timeouts and more (the server pings every second).
        await Task.Delay(TimeSpan.FromSeconds(4));

        string Describe()
        {
            lock (steps)
            {
                return string.Join('\n', steps.Select(s => $"  {s.Kind}: {s.Text}"));
            }
        }

        lock (steps)
        {
            Assert.DoesNotContain(steps, s => s.Kind is StepKind.Lost or StepKind.Retried or StepKind.Rediscovered);
        }

        Assert.Equal(server, client.ServerId);

        // The overflow was explicit: counted, and announced once as an event and a step.
        var announced = await overflowed.Task.WaitAsync(LoopbackFarm.Patience);
        Assert.Equal(policy, announced.Policy);
        Assert.Equal(10, announced.Capacity);
        Assert.True(policy switch
        {
            OverflowPolicy.Conflate => client.Conflated > 0 && client.Dropped == 0,
            OverflowPolicy.DropOldest => client.Dropped > 0 && client.Conflated == 0,
            _ => client.OverflowWaits > 0 && client.Conflated == 0 && client.Dropped == 0,
        }, $"conflated {client.Conflated}, dropped {client.Dropped}, waits {client.OverflowWaits}");
        lock (steps)
        {
            Assert.Contains(steps, s => s.Kind == StepKind.Overflowed);
        }

        // The application reads again: the last value published arrives (every policy keeps the newest).
        var last = 0;
        var merged = 0;
        using (var patience = new CancellationTokenSource(LoopbackFarm.Patience))
        {
            await foreach (var m in client.Messages.ReadAllAsync(patience.Token))
            {
                if (m.Message.Kind is RttpMessageKind.Image or RttpMessageKind.Update && m.Message.Fields.FirstOrDefault(f => f.Key == "n").Value is { } n)
                {
                    last = int.Parse(n, CultureInfo.InvariantCulture);
                    merged = Math.Max(merged, m.Message.Merged);
                    if (last == Burst)
                    {
                        break;
                    }
                }
            }
        }

        Assert.True(last == Burst, $"last n {last}; steps:\n{Describe()}");
        Assert.True(policy != OverflowPolicy.Conflate || merged > 1, "conflated updates say how many they stand for");
    }
}
