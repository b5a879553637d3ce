using System.Diagnostics;
using StreamFarm.Client;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;

namespace StreamFarm.Bench;

/// <summary>One lightweight client of the balance benchmark: it connects, says HELLO, and stays.</summary>
internal interface IBalanceClient : IAsyncDisposable
{
    /// <summary>The server it is on, or null while it is between servers.</summary>
    string? ServerId { get; }

    /// <summary>Completes once it is connected the first time.</summary>
    Task StartAsync(CancellationToken cancel);
}

/// <summary>A <see cref="FarmClient"/> with a given selector: the two-step connect and its failover.</summary>
internal sealed class FarmBalanceClient(IServiceResolver resolver, int port, IServerSelector selector) : IBalanceClient
{
    private readonly FarmClient _client = new(new FarmClientOptions
    {
        ServiceName = ClientBenchFarm.ServiceName,
        Port = port,
        Resolver = resolver,
        Selector = selector,
        Random = new Random(),
        Connection = new RttpConnectionOptions { ClientName = "bench-balance" },
    });

    public string? ServerId => _client.ServerId;

    public Task StartAsync(CancellationToken cancel) => _client.StartAsync(cancel);

    public ValueTask DisposeAsync() => _client.DisposeAsync();

    /// <summary>The selector a policy name stands for, always filtered to active, alive servers.</summary>
    public static IServerSelector Selector(string policy) => policy switch
    {
        "random" => Selectors.Random().ActiveOnly(),
        "fewest" => Selectors.FewestUsers().ActiveOnly(),
        "p2c" => Selectors.PowerOfTwoChoices().ActiveOnly(),
        "weighted" => Selectors.Weighted().ActiveOnly(),
        _ => throw new ArgumentException($"no selector for policy '{policy}'", nameof(policy)),
    };
}

/// <summary>
/// "DNS alone": an <see cref="RttpConnection"/> to the first address DNS gives, without the second
/// step (no farm table, no choice). When the connection is lost it asks DNS again after the same
/// jittered backoff as FarmClient's default policy (no retry of the same server first).
/// </summary>
internal sealed class DnsOnlyBalanceClient(IServiceResolver resolver, int port) : IBalanceClient
{
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Random _random = new();
    private RttpConnection? _connection;
    private Task _loop = Task.CompletedTask;

    public string? ServerId => Volatile.Read(ref _connection)?.ServerId;

    public async Task StartAsync(CancellationToken cancel)
    {
        _loop = RunAsync(_stop.Token);
        await _first.Task.WaitAsync(cancel);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        if (Interlocked.Exchange(ref _connection, null) is { } c)
        {
            await c.CloseAsync("client stopping");
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken cancel)
    {
        var policy = ExponentialBackoff.Default(_random);
        var round = 0;
        var lostAt = Stopwatch.GetTimestamp();
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                if (round > 0)
                {
                    await Task.Delay(policy.NextDelay(new RetryContext(round - 1, Stopwatch.GetElapsedTime(lostAt)))!.Value, cancel);
                }

                round++;
                RttpConnection connection;
                try
                {
                    var addresses = await resolver.ResolveAsync(ClientBenchFarm.ServiceName, cancel);
                    if (addresses.Count == 0)
                    {
                        continue;
                    }

                    connection = await RttpConnection.ConnectAsync(addresses[0].ToString(), port, new RttpConnectionOptions { ClientName = "bench-balance-dns" }, cancel);
                }
                catch (Exception e) when (e is RttpConnectionException or DnsClient.DnsResponseException or IOException or System.Net.Sockets.SocketException)
                {
                    continue;
                }

                Volatile.Write(ref _connection, connection);
                _first.TrySetResult();
                try
                {
                    await foreach (var m in connection.Messages.ReadAllAsync(cancel))
                    {
                        _ = m; // FARM updates: read and ignored
                    }
                }
                catch (Exception e) when (e is RttpConnectionException or IOException)
                {
                    // lost
                }

                if (cancel.IsCancellationRequested)
                {
                    return;
                }

                Interlocked.CompareExchange(ref _connection, null, connection);
                await connection.DisposeAsync();
                round = 1;
                lostAt = Stopwatch.GetTimestamp();
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // disposed
        }
    }
}
