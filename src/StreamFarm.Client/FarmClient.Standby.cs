namespace StreamFarm.Client;

/// <summary>
/// The optional warm standby (<see cref="FarmClientOptions.WarmStandby"/>): a second connection,
/// HELLO done and nothing subscribed, to another server the selector chose from the serving
/// server's table. Its messages (table changes, pings) are read and dropped until the connect loop
/// takes it over after a loss; then it is subscribed like any chosen server.
/// </summary>
public sealed partial class FarmClient
{
    private static readonly TimeSpan StandbyCheck = TimeSpan.FromMilliseconds(100);
    private readonly Lock _standbyLock = new();
    private Task _standbyLoop = Task.CompletedTask;
    private Standby? _standby;

    /// <summary>The id of the server of the warm standby connection, if there is one now.</summary>
    public string? StandbyServerId
    {
        get
        {
            lock (_standbyLock)
            {
                return _standby?.Connection.ServerId;
            }
        }
    }

    /// <summary>Opens a standby when there is none, and drops one that ended, serves already, or was lost.</summary>
    private async Task KeepStandbyAsync()
    {
        var cancel = _stop.Token;
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                await Task.Delay(StandbyCheck, _options.Connection.Time, cancel);
                var serving = Volatile.Read(ref _connection);
                Standby? current;
                lock (_standbyLock)
                {
                    current = _standby;
                    if (current is not null && (current.Connection.HasEnded || current.Connection.ServerId == serving?.ServerId || IsSuspected(current.Connection.ServerId)))
                    {
                        _standby = null;
                    }
                    else
                    {
                        current = null;
                    }
                }

                if (current is not null)
                {
                    await current.StopReadingAsync();
                    await current.Connection.CloseAsync("standby no longer needed");
                }

                if (serving is null || StandbyServerId is not null)
                {
                    continue;
                }

                var choice = Choose(serving.Farm, new HashSet<string>(StringComparer.Ordinal) { serving.ServerId });
                if (choice is null || choice.Server.Id == serving.ServerId || !TryParse(AddressOf(choice.Server), out var host, out var port))
                {
                    continue;
                }

                RttpConnection connection;
                try
                {
                    connection = await RttpConnection.ConnectAsync(host, port, _ownConnection, cancel);
                }
                catch (RttpConnectionException)
                {
                    continue; // tried again at the next check
                }

                lock (_standbyLock)
                {
                    _standby = new Standby(connection, cancel);
                }

                Step(StepKind.StandbyReady, $"warm standby on {connection.ServerId} at {connection.Endpoint} ({choice.Reason})");
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // stopping
        }
    }

    /// <summary>The standby, no longer read by its drain loop, if it is still open; null otherwise.</summary>
    private async Task<RttpConnection?> TakeStandbyAsync()
    {
        Standby? standby;
        lock (_standbyLock)
        {
            standby = _standby;
            _standby = null;
        }

        if (standby is null)
        {
            return null;
        }

        await standby.StopReadingAsync();
        if (standby.Connection.HasEnded || IsSuspected(standby.Connection.ServerId))
        {
            await standby.Connection.DisposeAsync();
            return null;
        }

        return standby.Connection;
    }

    /// <summary>A standby connection and the loop that reads and drops its messages.</summary>
    private sealed class Standby
    {
        private readonly CancellationTokenSource _reading;
        private readonly Task _reader;

        public Standby(RttpConnection connection, CancellationToken stop)
        {
            Connection = connection;
            _reading = CancellationTokenSource.CreateLinkedTokenSource(stop);
            _reader = DrainAsync();
        }

        public RttpConnection Connection { get; }

        public async Task StopReadingAsync()
        {
            await _reading.CancelAsync();
            await _reader;
            _reading.Dispose();
        }

        private async Task DrainAsync()
        {
            try
            {
                await foreach (var _ in Connection.Messages.ReadAllAsync(_reading.Token))
                {
                    // table changes are kept by the connection itself; nothing is subscribed
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or RttpConnectionException or IOException)
            {
                // taken over, or ended (HasEnded says so)
            }
        }
    }
}
