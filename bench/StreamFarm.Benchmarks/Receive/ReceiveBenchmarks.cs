using System.Net;
using BenchmarkDotNet.Attributes;
using NATS.Client.Core;
using StreamFarm.Client;
using StreamFarm.Client.Discovery;

namespace StreamFarm.Benchmarks.Receive;

/// <summary>
/// The client's receive path, from socket bytes to the application's <c>await foreach</c>, next to
/// NATS.Net's. Each side reads from its own fake server on 127.0.0.1 (real sockets, see
/// <see cref="FakeServer"/>), which writes <see cref="Messages"/> messages per operation in one
/// send; the benchmark takes them one by one from the subscription's <c>IAsyncEnumerator</c>
/// (what <c>await foreach</c> does) and touches each payload. Messages/s = 1 / Mean; Allocated is
/// per message (<c>OperationsPerInvoke</c>), every thread of the process counted.
///
/// Per message:
/// - StreamFarm (<c>FarmClient.SubscribeAsync(subject)</c>, what docs/client.md shows and the
///   CLI's <c>sub</c> uses): one line <c>UPDATE /BENCH/S1 epoch seq v=value</c> is parsed, its
///   field unescaped, delivered through the connection's buffer and the subscription's buffer, the
///   subject's last value kept up to date (<c>TryGetRecord</c>), and handed over as a
///   <see cref="SubjectUpdate"/>; the benchmark reads <c>u["v"]</c>, a string.
/// - StreamFarm pooled (<c>FarmClient.SubscribePooledAsync(subject)</c>, opt-in): the same line is
///   parsed by the read loop into bytes, the last value kept from them, and a copy in a reused
///   buffer handed straight to the subscription as a <see cref="PooledSubjectMessage"/>; the
///   benchmark reads the value's bytes (<c>TryGetValue("v", ...)</c>) and disposes the message.
/// - NATS.Net (<c>NatsConnection.SubscribeAsync&lt;T&gt;(subject)</c>, core NATS, no JetStream):
///   one <c>MSG subject sid length</c> line and its payload are parsed and handed over as a
///   <c>NatsMsg&lt;T&gt;</c> (a struct) through the subscription's channel. With <c>T = string</c>
///   the payload becomes a string (the comparable case to StreamFarm's string field values); with
///   <c>T = NatsMemoryOwner&lt;byte&gt;</c> it is copied into a pooled buffer that the
///   application returns (<c>Dispose</c>): NATS.Net's zero-allocation path.
/// Both sides get the same payload bytes (<see cref="PayloadBytes"/>, printable, no escaping), and
/// both subscriptions buffer up to 10,000 messages, so nothing is dropped or conflated.
/// </summary>
[MemoryDiagnoser]
public class ReceiveBenchmarks
{
    /// <summary>Messages per operation (one block written by the fake server).</summary>
    public const int Messages = 1000;

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private FakeServer? _server;
    private FarmClient? _client;
    private RttpConnection? _connection;
    private NatsConnection? _nats;
    private IAsyncEnumerator<SubjectMessage>? _farm;
    private IAsyncEnumerator<PooledSubjectMessage>? _pooled;
    private IAsyncEnumerator<RttpMessage>? _rttp;
    private IAsyncEnumerator<NatsMsg<string>>? _natsString;
    private IAsyncEnumerator<NatsMsg<NatsMemoryOwner<byte>>>? _natsBytes;

    /// <summary>Bytes of the one field's value (StreamFarm) and of the payload (NATS).</summary>
    [Params(16, 128)]
    public int PayloadBytes { get; set; }

    [GlobalSetup(Target = nameof(StreamFarmFarmClient))]
    public void SetupFarmClient() => Run(async () =>
    {
        var (server, client) = StartFarmClient();
        _farm = client.SubscribeAsync(FakeRttpServer.Subject).GetAsyncEnumerator();
        var image = _farm.MoveNextAsync();
        server.WaitSubscribed(Patience);
        if (!await image || _farm.Current is not SubjectImage)
        {
            throw new InvalidOperationException("no image");
        }

        await StreamFarmFarmClient(); // warm: one block through
    });

    [GlobalSetup(Target = nameof(StreamFarmPooled))]
    public void SetupPooled() => Run(async () =>
    {
        var (server, client) = StartFarmClient();
        _pooled = client.SubscribePooledAsync(FakeRttpServer.Subject).GetAsyncEnumerator();
        var image = _pooled.MoveNextAsync();
        server.WaitSubscribed(Patience);
        if (!await image || _pooled.Current.Kind != RttpMessageKind.Image)
        {
            throw new InvalidOperationException("no image");
        }

        _pooled.Current.Dispose();
        await StreamFarmPooled(); // warm: one block through
    });

    // A fake server and a FarmClient that resolves the service to it (the two FarmClient cases).
    private (FakeRttpServer Server, FarmClient Client) StartFarmClient()
    {
        var server = new FakeRttpServer(Messages, PayloadBytes);
        _server = server;
        var client = new FarmClient(new FarmClientOptions
        {
            ServiceName = "bench.farm.test",
            Port = server.Port,
            Resolver = new LoopbackResolver(),
            MessageBuffer = 10_000,
        });
        _client = client;
        return (server, client);
    }

    [GlobalSetup(Target = nameof(StreamFarmConnection))]
    public void SetupConnection() => Run(async () =>
    {
        var server = new FakeRttpServer(Messages, PayloadBytes);
        _server = server;
        _connection = await RttpConnection.ConnectAsync("127.0.0.1", server.Port, new RttpConnectionOptions { MessageBuffer = 10_000 });
        await _connection.SubscribeAsync([FakeRttpServer.Subject]);
        server.WaitSubscribed(Patience);
        _rttp = _connection.Messages.ReadAllAsync().GetAsyncEnumerator();
        while (await _rttp.MoveNextAsync() && _rttp.Current.Kind != RttpMessageKind.Image)
        {
        }

        await StreamFarmConnection();
    });

    [GlobalSetup(Target = nameof(NatsString))]
    public void SetupNatsString() => Run(async () =>
    {
        _nats = await ConnectNatsAsync();
        _natsString = _nats.SubscribeAsync<string>(FakeNatsServer.Subject).GetAsyncEnumerator();
        await WarmNatsAsync(_natsString, NatsString);
    });

    [GlobalSetup(Target = nameof(NatsBytes))]
    public void SetupNatsBytes() => Run(async () =>
    {
        _nats = await ConnectNatsAsync();
        _natsBytes = _nats.SubscribeAsync<NatsMemoryOwner<byte>>(FakeNatsServer.Subject).GetAsyncEnumerator();
        await WarmNatsAsync(_natsBytes, NatsBytes);
    });

    [GlobalCleanup]
    public void Cleanup() => Run(async () =>
    {
        if (_farm is not null)
        {
            await _farm.DisposeAsync();
        }

        if (_pooled is not null)
        {
            await _pooled.DisposeAsync();
        }

        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        if (_natsString is not null)
        {
            await _natsString.DisposeAsync();
        }

        if (_natsBytes is not null)
        {
            await _natsBytes.DisposeAsync();
        }

        if (_nats is not null)
        {
            await _nats.DisposeAsync();
        }

        _server?.Dispose();
    });

    [Benchmark(Baseline = true, OperationsPerInvoke = Messages, Description = "NATS.Net NatsMemoryOwner<byte>")]
    public async Task<long> NatsBytes()
    {
        _server!.Go();
        var e = _natsBytes!;
        long sum = 0;
        for (var i = 0; i < Messages; i++)
        {
            if (!await e.MoveNextAsync())
            {
                throw new InvalidOperationException("ended");
            }

            using var data = e.Current.Data;
            sum += data.Span.Length;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Messages, Description = "NATS.Net string")]
    public async Task<long> NatsString()
    {
        _server!.Go();
        var e = _natsString!;
        long sum = 0;
        for (var i = 0; i < Messages; i++)
        {
            if (!await e.MoveNextAsync())
            {
                throw new InvalidOperationException("ended");
            }

            sum += e.Current.Data!.Length;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Messages, Description = "StreamFarm FarmClient.SubscribeAsync")]
    public async Task<long> StreamFarmFarmClient()
    {
        _server!.Go();
        var e = _farm!;
        long sum = 0;
        for (var i = 0; i < Messages; i++)
        {
            if (!await e.MoveNextAsync())
            {
                throw new InvalidOperationException("ended");
            }

            sum += ((SubjectUpdate)e.Current)["v"]!.Length;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Messages, Description = "StreamFarm FarmClient.SubscribePooledAsync")]
    public async Task<long> StreamFarmPooled()
    {
        _server!.Go();
        var e = _pooled!;
        long sum = 0;
        for (var i = 0; i < Messages; i++)
        {
            if (!await e.MoveNextAsync())
            {
                throw new InvalidOperationException("ended");
            }

            using var u = e.Current;
            if (u.Kind != RttpMessageKind.Update || !u.TryGetValue("v", out var v))
            {
                throw new InvalidOperationException("not an update with v");
            }

            sum += v.Length;
        }

        return sum;
    }

    [Benchmark(OperationsPerInvoke = Messages, Description = "StreamFarm RttpConnection.Messages")]
    public async Task<long> StreamFarmConnection()
    {
        _server!.Go();
        var e = _rttp!;
        long sum = 0;
        for (var i = 0; i < Messages; i++)
        {
            if (!await e.MoveNextAsync())
            {
                throw new InvalidOperationException("ended");
            }

            sum += e.Current.Fields[0].Value.Length;
        }

        return sum;
    }

    private async Task<NatsConnection> ConnectNatsAsync()
    {
        _server = new FakeNatsServer(Messages, PayloadBytes);
        var nats = new NatsConnection(new NatsOpts
        {
            Url = $"nats://127.0.0.1:{_server.Port}",
            Name = "bench",
            SubPendingChannelCapacity = 10_000,
        });
        await nats.ConnectAsync();
        return nats;
    }

    private async Task WarmNatsAsync<T>(IAsyncEnumerator<T> e, Func<Task<long>> block)
    {
        _ = e; // the subscription starts with the enumeration: its SUB goes out on the first MoveNextAsync
        var first = Task.Run(async () =>
        {
            _server!.WaitSubscribed(Patience);
            _server.Go();
        });
        for (var i = 0; i < Messages; i++)
        {
            if (!await e.MoveNextAsync())
            {
                throw new InvalidOperationException("ended");
            }

            if (e.Current is NatsMsg<NatsMemoryOwner<byte>> owned)
            {
                owned.Data.Dispose();
            }
        }

        await first;
        await block(); // warm: one more block through
    }

    private static void Run(Func<Task> action) => action().GetAwaiter().GetResult();

    private sealed class LoopbackResolver : IServiceResolver
    {
        public Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel) =>
            Task.FromResult<IReadOnlyList<IPAddress>>([IPAddress.Loopback]);
    }
}
