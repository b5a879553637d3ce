using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using NATS.Client.Core;
using StreamFarm.Client;
using StreamFarm.Client.Discovery;
using StreamFarm.Client.Selection;

namespace StreamFarm.Bench;

/// <summary>Settings of <see cref="IdleClientsBenchmark"/>.</summary>
public sealed record IdleClientsSettings
{
    public int Clients { get; init; } = 1000;

    /// <summary>Seconds after the last client subscribed before the window opens.</summary>
    public double Settle { get; init; } = 5;

    /// <summary>Seconds over which the CPU of the server and of the clients' process is read.</summary>
    public double Window { get; init; } = 30;

    public int Runs { get; init; } = 3;

    public string Prefix { get; init; } = "127.0.59";

    /// <summary>The FarmClients' <see cref="FarmClientOptions.HeartbeatTimeout"/> (over 3 s, they ask the server for rarer pings: HELLO <c>ping=</c>).</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(3);
}

/// <summary>One window of one system.</summary>
public sealed record IdleClientsRun(string System, int Run, int Clients, double ServerCores, double ClientCores, long ServerVoluntarySwitches, double Seconds)
{
    /// <summary>Server CPU per client and second of rest, in microseconds.</summary>
    public double ServerMicrosPerClientSecond => ServerCores * 1e6 / Clients;

    public double ClientMicrosPerClientSecond => ClientCores * 1e6 / Clients;
}

/// <summary>
/// What clients at rest cost: N subscribed clients of each system's own .NET library (StreamFarm's
/// <see cref="FarmClient"/> with its defaults, NATS.Net's <see cref="NatsConnection"/> with its
/// defaults), one subject each of 100, nothing published; after a settle, the server's CPU and
/// this process's CPU (where the clients run) over a window. What each pays for is its keep-alive:
/// StreamFarm's server PINGs a connection it has sent nothing to every second (to be able to tell
/// a hung server in 3 s), nats-server every 2 minutes. Alternating, a different system first each
/// run; the server is a fresh process each time.
/// </summary>
public static class IdleClientsBenchmark
{
    public static async Task<List<IdleClientsRun>> RunAsync(IdleClientsSettings s, ServerLauncher streamFarm, string natsServer, TextWriter progress, CancellationToken cancel)
    {
        var runs = new List<IdleClientsRun>();
        for (var run = 1; run <= s.Runs; run++)
        {
            for (var i = 0; i < 2; i++)
            {
                var nats = (i + run) % 2 == 0;
                var ip = IPAddress.Parse($"{s.Prefix}.{(nats ? 2 : 1).ToString(CultureInfo.InvariantCulture)}");
                await using var server = nats
                    ? await ServerProcess.StartNatsAsync(natsServer, ip, cancel)
                    : await ServerProcess.StartStreamFarmAsync(streamFarm, ip, cancel);
                var clients = new List<IAsyncDisposable>(s.Clients);
                try
                {
                    for (var k = 0; k < s.Clients; k++)
                    {
                        var subject = "/IDLE/" + (k % 100).ToString(CultureInfo.InvariantCulture);
                        clients.Add(nats ? await NatsClientAsync(server.Endpoint, subject, cancel) : await FarmClientAsync(server.Endpoint, subject, s.Heartbeat, cancel));
                    }

                    await Task.Delay(TimeSpan.FromSeconds(s.Settle), cancel);
                    var (serverTicks, switches, clientCpu, clock) = (server.CpuTicks(), VoluntarySwitches(server.Pid), Environment.CpuUsage.TotalTime, Stopwatch.StartNew());
                    await Task.Delay(TimeSpan.FromSeconds(s.Window), cancel);
                    var seconds = clock.Elapsed.TotalSeconds;
                    var result = new IdleClientsRun(
                        nats ? "nats-server (NATS.Net)" : $"StreamFarm (FarmClient, HeartbeatTimeout {s.Heartbeat.TotalSeconds:0} s)",
                        run,
                        s.Clients,
                        (server.CpuTicks() - serverTicks) / (double)NativeMethods.ClockTicksPerSecond() / seconds,
                        (Environment.CpuUsage.TotalTime - clientCpu).TotalSeconds / seconds,
                        VoluntarySwitches(server.Pid) - switches,
                        seconds);
                    runs.Add(result);
                    progress.WriteLine($"bench: {result.System}, run {run}: {s.Clients:N0} idle clients: server {result.ServerCores:0.000} cores ({result.ServerMicrosPerClientSecond:0.0} µs per client and second, {result.ServerVoluntarySwitches / seconds / s.Clients:0.00} context switches), clients' process {result.ClientCores:0.000} cores");
                }
                finally
                {
                    foreach (var c in clients)
                    {
                        await c.DisposeAsync();
                    }

                    await server.StopAsync();
                }
            }
        }

        return runs;
    }

    private static async Task<IAsyncDisposable> FarmClientAsync(IPEndPoint endpoint, string subject, TimeSpan heartbeat, CancellationToken cancel)
    {
        var client = new FarmClient(new FarmClientOptions
        {
            ServiceName = "idle.bench",
            Port = endpoint.Port,
            Resolver = new Fixed(endpoint.Address),
            Selector = Selectors.Random(),
            HeartbeatTimeout = heartbeat,
            Connection = new RttpConnectionOptions { ClientName = "bench-idle" },
        });
        await client.SubscribeAsync([subject], cancel);
        await client.StartAsync(cancel);
        return client;
    }

    private static async Task<IAsyncDisposable> NatsClientAsync(IPEndPoint endpoint, string subject, CancellationToken cancel)
    {
        var connection = new NatsConnection(new NatsOpts { Url = $"nats://{endpoint}", Name = "bench-idle" });
        await connection.ConnectAsync();
        var sub = await connection.SubscribeCoreAsync<byte[]>(subject.TrimStart('/').Replace('/', '.'), cancellationToken: cancel);
        return new NatsIdle(connection, sub);
    }

    private static long VoluntarySwitches(int pid)
    {
        long total = 0;
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/task"))
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        total += long.Parse(line.AsSpan("voluntary_ctxt_switches:".Length).Trim(), CultureInfo.InvariantCulture);
                    }
                }
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return total;
    }

    public static string Report(IReadOnlyList<IdleClientsRun> runs, IdleClientsSettings s)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Idle clients, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {s.Clients:N0} subscribed clients (each system's own .NET library, defaults), {s.Window:0} s window after {s.Settle:0} s; median (min–max) of {s.Runs} runs.");
        sb.AppendLine();
        sb.AppendLine("| system | server cores | server µs per client and second | server context switches per client and second | clients' process cores |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var g in runs.GroupBy(r => r.System))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {g.Key} | {Stat(g.Select(r => r.ServerCores), "0.000")} | {Stat(g.Select(r => r.ServerMicrosPerClientSecond), "0.0")} | {Stat(g.Select(r => r.ServerVoluntarySwitches / r.Seconds / r.Clients), "0.00")} | {Stat(g.Select(r => r.ClientCores), "0.000")} |");
        }

        return sb.ToString();

        static string Stat(IEnumerable<double> values, string format) => LatencySummary.MedianRange(values, format);
    }

    private sealed class Fixed(IPAddress address) : IServiceResolver
    {
        public Task<IReadOnlyList<IPAddress>> ResolveAsync(string name, CancellationToken cancel) => Task.FromResult<IReadOnlyList<IPAddress>>([address]);
    }

    private sealed class NatsIdle(NatsConnection connection, INatsSub<byte[]> sub) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await sub.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
