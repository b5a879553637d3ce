using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>Settings of <c>./bench.sh subjects</c>.</summary>
public sealed record SubjectsSettings
{
    /// <summary>Subjects held by the server, one fresh server per size.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [10_000, 100_000, 1_000_000];

    public int Runs { get; init; } = 1;

    /// <summary>Subjects each subscriber connection takes (at most the server's limits.maxSubscriptionsPerConnection, 10,000 by default).</summary>
    public int SubjectsPerSubscriber { get; init; } = 10_000;

    /// <summary>The loopback address the server listens on.</summary>
    public string Address { get; init; } = "127.0.63.1";
}

/// <summary>One server holding <see cref="Subjects"/> subjects: what each phase took.</summary>
/// <param name="Subjects">Subjects the server held.</param>
/// <param name="Run">Which run (1, 2, ...).</param>
/// <param name="RestKiB">RSS of the fresh server before any subject.</param>
/// <param name="LoadedKiB">RSS once every subject exists and the updates passed (no subscriber).</param>
/// <param name="Create">Publishing a first value of every subject (one connection, pipelined, until PONG).</param>
/// <param name="Update">Publishing a second value of every subject, no subscriber.</param>
/// <param name="Subscribe">Subscribing to every subject, until every IMAGE arrived.</param>
/// <param name="Fanout">Publishing a third value of every subject, until each subscriber had an UPDATE of each of its subjects.</param>
/// <param name="Subscribers">Subscriber connections.</param>
public sealed record SubjectsRun(int Subjects, int Run, long RestKiB, long LoadedKiB, SubjectsPhase Create, SubjectsPhase Update, SubjectsPhase Subscribe, SubjectsPhase Fanout, int Subscribers)
{
    public double BytesPerSubject => (LoadedKiB - RestKiB) * 1024.0 / Subjects;
}

/// <summary>How long a phase took, the server's CPU in it and the load generator's (this process: the publisher and the subscribers).</summary>
public sealed record SubjectsPhase(TimeSpan Elapsed, double ServerCpuSeconds, double ClientCpuSeconds, int Operations)
{
    /// <summary>The load generator's CPU in the phase, in cores (CPU seconds per second).</summary>
    public double ClientCores => ClientCpuSeconds / Elapsed.TotalSeconds;

    public double PerSecond => Operations / Elapsed.TotalSeconds;

    /// <summary>Server CPU per operation, µs.</summary>
    public double CpuMicros => ServerCpuSeconds * 1e6 / Operations;
}

/// <summary>
/// How a server's cost grows with the subjects it holds (issue 16): for each size, a fresh server
/// gets one value of each subject (<c>PUB /c/i bid=.. ask=..</c> over one connection, pipelined,
/// ended by a <c>PING</c>), a second value of each, then subscribers take every subject
/// (<see cref="SubjectsSettings.SubjectsPerSubscriber"/> each, all at once, 100 subjects per
/// <c>SUB</c> line) until each has every <c>IMAGE</c>, then a third value of each subject is
/// published until every subscriber has an <c>UPDATE</c> of each of its subjects (merged ones
/// count: conflation is the server's answer to a reader that falls behind). Memory per subject is
/// the RSS added by the subjects, read 2 s after the second pass.
/// </summary>
public static class SubjectsBenchmark
{
    private const int SubjectsPerSubLine = 100;
    private static readonly TimeSpan PhaseTimeout = TimeSpan.FromMinutes(5);

    public static async Task<List<SubjectsRun>> RunAsync(SubjectsSettings s, ServerLauncher launcher, TextWriter progress, CancellationToken cancel)
    {
        var runs = new List<SubjectsRun>();
        for (var run = 1; run <= s.Runs; run++)
        {
            foreach (var n in s.Sizes)
            {
                var result = await MeasureAsync(s, launcher, n, run, cancel);
                runs.Add(result);
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"subjects {n:N0} run {run}: {result.BytesPerSubject:0} B/subject, create {result.Create.PerSecond:N0}/s, update {result.Update.PerSecond:N0}/s, subscribe {result.Subscribe.PerSecond:N0} images/s, fan-out {result.Fanout.PerSecond:N0} updates/s"));
            }
        }

        return runs;
    }

    private static async Task<SubjectsRun> MeasureAsync(SubjectsSettings s, ServerLauncher launcher, int n, int run, CancellationToken cancel)
    {
        await using var server = await ServerProcess.StartStreamFarmAsync(launcher, IPAddress.Parse(s.Address), cancel);
        await Task.Delay(2000, cancel);
        var rest = server.RssKiB();
        await using var publisher = await LineClient.ConnectAsync(server.Endpoint, "subjects-pub", cancel);

        var create = await PhaseAsync(server, n, () => PublishAllAsync(publisher, n, 1, cancel));
        var update = await PhaseAsync(server, n, () => PublishAllAsync(publisher, n, 2, cancel));
        await Task.Delay(2000, cancel);
        var loaded = server.RssKiB();

        var count = (n + s.SubjectsPerSubscriber - 1) / s.SubjectsPerSubscriber;
        var subscribers = new List<LineClient>(count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var from = i * s.SubjectsPerSubscriber;
                subscribers.Add(await LineClient.ConnectAsync(server.Endpoint, $"subjects-sub{i}", cancel, from, Math.Min(n, from + s.SubjectsPerSubscriber)));
            }

            var subscribe = await PhaseAsync(server, n, () => Task.WhenAll(subscribers.Select(c => c.SubscribeAllAsync(SubjectsPerSubLine, cancel))));
            var fanout = await PhaseAsync(server, n, async () =>
            {
                var updated = subscribers.Select(c => c.AllUpdatedAsync(cancel)).ToList();
                await PublishAllAsync(publisher, n, 3, cancel);
                await Task.WhenAll(updated);
            });
            return new SubjectsRun(n, run, rest, loaded, create, update, subscribe, fanout, count);
        }
        finally
        {
            foreach (var c in subscribers)
            {
                await c.DisposeAsync();
            }
        }
    }

    private static async Task<SubjectsPhase> PhaseAsync(ServerProcess server, int operations, Func<Task> phase)
    {
        var cpu = server.CpuTicks();
        var ownCpu = Environment.CpuUsage.TotalTime;
        var started = TimeProvider.System.GetTimestamp();
        var work = phase();
        if (await Task.WhenAny(work, Task.Delay(PhaseTimeout)) != work)
        {
            throw new BenchException($"a phase with {operations:N0} subjects did not end within {PhaseTimeout.TotalMinutes} minutes");
        }

        await work;
        var elapsed = TimeProvider.System.GetElapsedTime(started);
        return new SubjectsPhase(elapsed, (server.CpuTicks() - cpu) / (double)NativeMethods.ClockTicksPerSecond(), (Environment.CpuUsage.TotalTime - ownCpu).TotalSeconds, operations);
    }

    /// <summary>One publication per subject, written in 64 KiB chunks of whole lines, then PING: answered once the server applied them all.</summary>
    private static async Task PublishAllAsync(LineClient client, int n, int pass, CancellationToken cancel)
    {
        var chunk = new StringBuilder(70_000);
        for (var i = 0; i < n; i++)
        {
            chunk.Append(CultureInfo.InvariantCulture, $"PUB /c/{i} bid={i}.{pass}1 ask={i}.{pass}3\n");
            if (chunk.Length >= 64 * 1024)
            {
                await client.SendAsync(chunk.ToString(), cancel);
                chunk.Clear();
            }
        }

        await client.SendAsync(chunk.ToString(), cancel);
        await client.PingAsync(cancel);
    }

    public static string Report(IReadOnlyList<SubjectsRun> runs, string server)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"## Subjects per server: memory and rates ({server}; median (min–max) over {runs.Max(r => r.Run)} run(s))");
        sb.AppendLine();
        sb.AppendLine("| subjects | RSS held by the subjects, MiB | bytes per subject | create: subjects/s | create: server µs each | update: publications/s | update: server µs each | subscribe: images/s (subscribers) | subscribe: server µs each | fan-out: updates/s | fan-out: server µs each | load generator, cores: create / update / subscribe / fan-out |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var g in runs.GroupBy(r => r.Subjects))
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {g.Key:N0} | {S(g, r => (r.LoadedKiB - r.RestKiB) / 1024.0, "0.0")} | {S(g, r => r.BytesPerSubject, "0")} | {S(g, r => r.Create.PerSecond, "N0")} | {S(g, r => r.Create.CpuMicros, "0.00")} | {S(g, r => r.Update.PerSecond, "N0")} | {S(g, r => r.Update.CpuMicros, "0.00")} | {S(g, r => r.Subscribe.PerSecond, "N0")} ({g.First().Subscribers}) | {S(g, r => r.Subscribe.CpuMicros, "0.00")} | {S(g, r => r.Fanout.PerSecond, "N0")} | {S(g, r => r.Fanout.CpuMicros, "0.00")} | {M(g, r => r.Create.ClientCores)} / {M(g, r => r.Update.ClientCores)} / {M(g, r => r.Subscribe.ClientCores)} / {M(g, r => r.Fanout.ClientCores)} |");
        }

        return sb.ToString();
    }

    private static string M(IEnumerable<SubjectsRun> runs, Func<SubjectsRun, double> value) =>
        LatencySummary.Percentile([.. runs.Select(value).Order()], 50).ToString("0.00", CultureInfo.InvariantCulture);

    private static string S(IEnumerable<SubjectsRun> runs, Func<SubjectsRun, double> value, string format) => LatencySummary.MedianRange(runs.Select(value), format);

    /// <summary>
    /// A bare RTTP connection for this benchmark: writes whole lines under a lock, answers the
    /// server's PING, and counts the IMAGE and first UPDATE of each subject in its range
    /// (<c>/c/from</c> to <c>/c/(to-1)</c>). Any ERR or NOT_FOUND fails the benchmark.
    /// </summary>
    private sealed class LineClient : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly SemaphoreSlim _write = new(1, 1);
        private readonly int _from;
        private readonly int _to;
        private readonly bool[] _imaged;
        private readonly bool[] _updated;
        private readonly Task _reader;
        private readonly TaskCompletionSource _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _images = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _updates = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource? _pong;
        private int _imageCount;
        private int _updateCount;

        private LineClient(Socket socket, int from, int to)
        {
            _socket = socket;
            _from = from;
            _to = to;
            _imaged = new bool[to - from];
            _updated = new bool[to - from];
            _reader = Task.Run(ReadAsync);
        }

        public static async Task<LineClient> ConnectAsync(IPEndPoint endpoint, string name, CancellationToken cancel, int from = 0, int to = 0)
        {
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endpoint, cancel);
            var client = new LineClient(socket, from, to);
            await client.SendAsync($"HELLO 1 client={name}\n", cancel);
            await client._welcome.Task.WaitAsync(TimeSpan.FromSeconds(10), cancel);
            return client;
        }

        public async Task SendAsync(string lines, CancellationToken cancel)
        {
            var bytes = Encoding.ASCII.GetBytes(lines);
            await _write.WaitAsync(cancel);
            try
            {
                await _socket.SendAsync(bytes, cancel);
            }
            finally
            {
                _write.Release();
            }
        }

        public async Task PingAsync(CancellationToken cancel)
        {
            var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _pong, pong);
            await SendAsync("PING\n", cancel);
            await pong.Task.WaitAsync(cancel);
        }

        public async Task SubscribeAllAsync(int perLine, CancellationToken cancel)
        {
            var lines = new StringBuilder();
            for (var i = _from; i < _to; i += perLine)
            {
                lines.Append("SUB");
                for (var j = i; j < Math.Min(_to, i + perLine); j++)
                {
                    lines.Append(CultureInfo.InvariantCulture, $" /c/{j}");
                }

                lines.Append('\n');
            }

            await SendAsync(lines.ToString(), cancel);
            await _images.Task.WaitAsync(cancel);
        }

        public Task AllUpdatedAsync(CancellationToken cancel) => _updates.Task.WaitAsync(cancel);

        private async Task ReadAsync()
        {
            var buffer = new byte[256 * 1024];
            var filled = 0;
            try
            {
                while (true)
                {
                    if (filled == buffer.Length)
                    {
                        throw new BenchException("a line longer than 256 KiB");
                    }

                    var read = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                    if (read == 0)
                    {
                        throw new BenchException("the server closed the connection");
                    }

                    filled += read;
                    var start = 0;
                    int end;
                    while ((end = Array.IndexOf(buffer, (byte)'\n', start, filled - start)) >= 0)
                    {
                        await OnLineAsync(buffer.AsMemory(start, end - start));
                        start = end + 1;
                    }

                    Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                    filled -= start;
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or BenchException)
            {
                var failure = e as BenchException ?? new BenchException($"connection lost: {e.Message}");
                _welcome.TrySetException(failure);
                _images.TrySetException(failure);
                _updates.TrySetException(failure);
                Volatile.Read(ref _pong)?.TrySetException(failure);
            }
        }

        private async Task OnLineAsync(ReadOnlyMemory<byte> line)
        {
            var span = line.Span;
            if (span.StartsWith("IMAGE /c/"u8))
            {
                Count(span["IMAGE /c/".Length..], _imaged, ref _imageCount, _images);
            }
            else if (span.StartsWith("UPDATE /c/"u8))
            {
                Count(span["UPDATE /c/".Length..], _updated, ref _updateCount, _updates);
            }
            else if (span.SequenceEqual("PING"u8))
            {
                await SendAsync("PONG\n", CancellationToken.None);
            }
            else if (span.SequenceEqual("PONG"u8))
            {
                Interlocked.Exchange(ref _pong, null)?.TrySetResult();
            }
            else if (span.StartsWith("WELCOME"u8))
            {
                _welcome.TrySetResult();
            }
            else if (span.StartsWith("ERR"u8) || span.IndexOf(" NOT_FOUND"u8) >= 0)
            {
                throw new BenchException($"the server answered: {Encoding.ASCII.GetString(span)}");
            }
        }

        private void Count(ReadOnlySpan<byte> rest, bool[] seen, ref int count, TaskCompletionSource done)
        {
            var space = rest.IndexOf((byte)' ');
            if (space < 0 || !int.TryParse(rest[..space], NumberStyles.None, CultureInfo.InvariantCulture, out var i) || i < _from || i >= _to)
            {
                throw new BenchException($"a line for a subject this connection did not subscribe to: {Encoding.ASCII.GetString(rest)}");
            }

            if (!seen[i - _from])
            {
                seen[i - _from] = true;
                if (++count == seen.Length)
                {
                    done.TrySetResult();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Dispose();
            await _reader;
            _write.Dispose();
        }
    }
}
