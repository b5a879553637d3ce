using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Bench;

/// <summary>
/// A server under test, run as a child process on its own loopback address and free ports: started,
/// probed until it accepts TCP connections, asked for its CPU time (from /proc/PID/stat), and stopped
/// with SIGTERM (then killed if it does not leave in time).
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private const int KeptOutputLines = 40;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly string _statPath;

    private ServerProcess(ServerKind kind, Process process, IPEndPoint endpoint, string commandLine)
    {
        Kind = kind;
        _process = process;
        Endpoint = endpoint;
        CommandLine = commandLine;
        Pid = process.Id;
        _statPath = $"/proc/{Pid}/stat";
    }

    public ServerKind Kind { get; }

    /// <summary>Where clients connect (RTTP over TCP, or the NATS client port).</summary>
    public IPEndPoint Endpoint { get; }

    public int Pid { get; }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>From the start of the process to its first successful readiness probe.</summary>
    public TimeSpan StartedIn { get; private set; }

    /// <summary>Utime + stime clock ticks the server has used so far (ticks per second: <see cref="NativeMethods.ClockTicksPerSecond"/>).</summary>
    public long CpuTicks() => ReadCpuTicks(_statPath);

    /// <summary>The last lines the server wrote on stdout and stderr (for error reports).</summary>
    public IReadOnlyList<string> RecentOutput()
    {
        lock (_output)
        {
            return [.. _output];
        }
    }

    /// <summary>Starts a StreamFarm node: <c>{launcher} node --id b1 --listen IP --tcp-port P --http-port Q --log-level Warning</c>.</summary>
    public static Task<ServerProcess> StartStreamFarmAsync(ServerLauncher launcher, IPAddress ip, CancellationToken cancel)
    {
        var tcp = FreePort(ip);
        var http = FreePort(ip);
        var args = launcher.Arguments.Concat(["node", "--id", "b1", "--listen", ip.ToString(), "--tcp-port", Num(tcp), "--http-port", Num(http), "--log-level", "Warning"]);
        return StartAsync(ServerKind.StreamFarm, launcher.FileName, args, new IPEndPoint(ip, tcp), cancel);
    }

    /// <summary>Starts nats-server with its defaults on IP and a free client port.</summary>
    public static Task<ServerProcess> StartNatsAsync(string natsServer, IPAddress ip, CancellationToken cancel)
    {
        var port = FreePort(ip);
        return StartAsync(ServerKind.Nats, natsServer, ["-a", ip.ToString(), "-p", Num(port)], new IPEndPoint(ip, port), cancel);
    }

    /// <summary>Asks the server to stop (SIGTERM) and waits; kills it if it is still there after 10 s.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        if (NativeMethods.Terminate(Pid))
        {
            using var timeout = new CancellationTokenSource(StopTimeout);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
                return;
            }
            catch (OperationCanceledException)
            {
                // fall through to kill
            }
        }

        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            _process.Dispose();
        }
    }

    /// <summary>Utime + stime (fields 14 and 15) of a /proc/PID/stat file.</summary>
    public static long ReadCpuTicks(string statPath)
    {
        var stat = File.ReadAllText(statPath);
        // The command name (field 2) is in parentheses and may contain spaces: count from after it.
        var rest = stat.AsSpan(stat.LastIndexOf(')') + 2);
        Span<Range> parts = stackalloc Range[16];
        var n = rest.Split(parts, ' ');
        if (n < 13)
        {
            throw new InvalidDataException($"unexpected {statPath}: {stat}");
        }

        // rest starts at field 3 (state): utime is field 14, stime field 15.
        return long.Parse(rest[parts[11]], CultureInfo.InvariantCulture) + long.Parse(rest[parts[12]], CultureInfo.InvariantCulture);
    }

    /// <summary>A port nobody listens on at the moment (the OS picks it; a tiny race is accepted).</summary>
    public static int FreePort(IPAddress ip)
    {
        var listener = new TcpListener(ip, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>
    /// Starts <paramref name="fileName"/> with <paramref name="args"/> (a farm member, a clustered
    /// nats-server) and returns once <paramref name="endpoint"/> accepts TCP connections.
    /// </summary>
    /// <remarks>
    /// With <paramref name="ready"/>, readiness is that probe answering true (polled every 2 ms, for
    /// start-up timing), not the endpoint accepting TCP connections (polled every 100 ms).
    /// </remarks>
    public static async Task<ServerProcess> StartAsync(ServerKind kind, string fileName, IEnumerable<string> args, IPEndPoint endpoint, CancellationToken cancel,
        Func<CancellationToken, Task<bool>>? ready = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        var commandLine = string.Join(' ', info.ArgumentList.Prepend(fileName));
        Process process;
        var clock = Stopwatch.StartNew();
        try
        {
            process = Process.Start(info) ?? throw new BenchException($"could not start {commandLine}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"could not start {commandLine}: {e.Message}", e);
        }

        var server = new ServerProcess(kind, process, endpoint, commandLine);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilReadyAsync(ready, cancel);
            server.StartedIn = clock.Elapsed;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    private async Task WaitUntilReadyAsync(Func<CancellationToken, Task<bool>>? ready, CancellationToken cancel)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw new BenchException($"{Kind.Name()} exited with code {_process.ExitCode} while starting ({CommandLine}): {string.Join(" | ", RecentOutput())}");
            }

            if (ready is not null)
            {
                if (await ready(cancel))
                {
                    return;
                }

                if (deadline.Elapsed > StartTimeout)
                {
                    throw new BenchException($"{Kind.Name()} was not ready within {StartTimeout.TotalSeconds:0} s ({CommandLine}): {string.Join(" | ", RecentOutput())}");
                }

                await Task.Delay(2, cancel);
                continue;
            }

            using (var probe = new Socket(Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
            {
                try
                {
                    await probe.ConnectAsync(Endpoint, cancel);
                    return;
                }
                catch (SocketException) when (deadline.Elapsed < StartTimeout)
                {
                    // not listening yet
                }
                catch (SocketException e)
                {
                    throw new BenchException($"{Kind.Name()} did not accept connections on {Endpoint} within {StartTimeout.TotalSeconds:0} s: {e.Message}", e);
                }
            }

            await Task.Delay(100, cancel);
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Enqueue(line);
            while (_output.Count > KeptOutputLines)
            {
                _output.Dequeue();
            }
        }
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}

/// <summary>How to run the StreamFarm server: a program and the arguments before <c>node ...</c> (for example <c>dotnet streamfarm.dll</c>).</summary>
public sealed record ServerLauncher(string FileName, IReadOnlyList<string> Arguments);
