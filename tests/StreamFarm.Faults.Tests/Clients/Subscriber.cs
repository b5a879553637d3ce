using System.Net.Sockets;
using StreamFarm.Faults.Tests.Checking;

namespace StreamFarm.Faults.Tests.Clients;

/// <summary>What a subscriber of a scenario saw, for the checker: every line with its time, and its own log.</summary>
internal interface ISubscriber : IAsyncDisposable
{
    string Name { get; }

    IReadOnlyList<SubLine> Lines();

    IReadOnlyList<string> Log();
}

/// <summary>
/// A subscriber over raw RTTP: subscribes to every subject in one <c>SUB</c> and records every line
/// with the time it was read. When its connection is lost or it is asked to move, it reconnects
/// (to the same server first, then the others) and subscribes again: each connection is a session
/// of the same logical subscriber.
/// </summary>
internal sealed class Subscriber : ISubscriber
{
    private readonly Lock _lock = new();
    private readonly List<SubLine> _lines = [];
    private readonly List<string> _log = [];
    private readonly string[] _subjects;
    private readonly IReadOnlyList<(string Id, string Host)> _servers;
    private readonly int _port;
    private readonly Random _random;
    private readonly Func<Socket>? _socket;
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;
    private int _home;
    private int _session;

    public Subscriber(string name, IReadOnlyList<(string Id, string Host)> servers, int port, int homeIndex, string[] subjects, int seed, Func<Socket>? socket = null)
    {
        _socket = socket;
        Name = name;
        _servers = servers;
        _port = port;
        _home = homeIndex;
        _subjects = subjects;
        _random = new Random(seed);
    }

    public string Name { get; }

    public int Sessions => Volatile.Read(ref _session);

    public void Start() => _loop = Task.Run(LoopAsync);

    public IReadOnlyList<SubLine> Lines()
    {
        lock (_lock)
        {
            return [.. _lines];
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _lines.Count;
            }
        }
    }

    public IReadOnlyList<string> Log()
    {
        lock (_lock)
        {
            return [.. _log];
        }
    }

    private async Task LoopAsync()
    {
        var cancel = _stop.Token;
        for (var attempt = 0; !cancel.IsCancellationRequested; attempt++)
        {
            var (id, host) = _servers[(_home + attempt) % _servers.Count];
            var session = _session + 1;
            RawConnection? opened = null;
            var (c, why) = await RawConnection.OpenAsync(id, host, _port, Name, (line, at) => OnLine(opened, session, id, line, at), cancel, _socket);
            opened = c;
            if (c is null)
            {
                Note($"connect to {id}: {why}");
                if (attempt % _servers.Count == _servers.Count - 1)
                {
                    await Delay(200, cancel);
                }

                continue;
            }

            await using (c)
            {
                _home = (_home + attempt) % _servers.Count;
                attempt = -1; // the next connection tries this server first
                Volatile.Write(ref _session, session);
                Note($"session #{session} at {id}");
                await c.SendAsync("SUB " + string.Join(' ', _subjects));
                try
                {
                    await c.Completion.WaitAsync(cancel);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Note($"session #{session} at {id} ended: {c.EndReason}");
            }
        }
    }

    private void OnLine(RawConnection? c, int session, string server, string line, DateTime at)
    {
        if (line.StartsWith("FARM ", StringComparison.Ordinal) || line.StartsWith("SERVER ", StringComparison.Ordinal) || line.StartsWith("FARMDEL ", StringComparison.Ordinal) || line.StartsWith("PONG", StringComparison.Ordinal))
        {
            return;
        }

        lock (_lock)
        {
            _lines.Add(new SubLine(Name, session, server, at, line));
            if (line.StartsWith("MOVE ", StringComparison.Ordinal))
            {
                var wait = _random.Next(0, 1000);
                _ = Task.Delay(wait).ContinueWith(_ => c?.Close("moving (MOVE)"), TaskScheduler.Default);
            }
        }
    }

    private void Note(string text)
    {
        lock (_lock)
        {
            _log.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {text}");
        }
    }

    private static async Task Delay(int ms, CancellationToken cancel)
    {
        try
        {
            await Task.Delay(ms, cancel);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // stopped
        }

        _stop.Dispose();
    }
}
