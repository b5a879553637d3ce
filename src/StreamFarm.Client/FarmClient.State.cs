using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using StreamFarm.Client.Selection;

namespace StreamFarm.Client;

/// <summary>
/// State and events. Transitions happen on the client's loop; events are raised in order by one
/// owned task, never on the loop and never under a lock, so a slow handler delays only other events.
/// </summary>
public sealed partial class FarmClient
{
    private readonly Channel<Action> _events = Channel.CreateBounded<Action>(new BoundedChannelOptions(1_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private Task _eventPump = Task.CompletedTask;
    private int _state;
    private int _started;
    private bool _everConnected;
    private ServerChoice? _lastChoice;

    /// <summary>Where the client stands.</summary>
    public FarmClientState State => (FarmClientState)Volatile.Read(ref _state);

    /// <summary>The state changed.</summary>
    public event EventHandler<FarmClientStateChangedEventArgs>? StateChanged;

    /// <summary>Connected the first time (with the selector's choice).</summary>
    public event EventHandler<FarmServerEventArgs>? Connected;

    /// <summary>The serving server was lost (closed, hung, said BYE) or asked the client to move.</summary>
    public event EventHandler<FarmServerEventArgs>? Lost;

    /// <summary>Moved to another server because the server asked (MOVE), without a loss.</summary>
    public event EventHandler<FarmServerEventArgs>? Moved;

    /// <summary>Served again after a loss (subscriptions restored).</summary>
    public event EventHandler<FarmServerEventArgs>? Recovered;

    /// <summary>Starts the loops once (<see cref="StartAsync"/>, or the first stream subscription).</summary>
    private void EnsureStarted()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1)
        {
            return;
        }

        _eventPump = PumpEventsAsync();
        SetState(FarmClientState.Connecting);
        _loop = RunAsync();
        if (_options.Standby != StandbyMode.None)
        {
            _standbyLoop = KeepStandbyAsync();
        }

        if (_options.OneHop)
        {
            _sweeper = SweepLinksAsync();
        }
    }

    private void SetState(FarmClientState state)
    {
        var previous = (FarmClientState)Interlocked.Exchange(ref _state, (int)state);
        if (previous != state)
        {
            Raise(StateChanged, new FarmClientStateChangedEventArgs(previous, state));
        }
    }

    /// <summary>The connection now serving is <paramref name="connection"/>: Connected the first time, Recovered after a loss, Moved after a MOVE.</summary>
    private void Served(RttpConnection connection, bool moved)
    {
        var choice = Interlocked.Exchange(ref _lastChoice, null);
        if (choice?.Server.Id != connection.ServerId)
        {
            choice = null;
        }

        var args = new FarmServerEventArgs(connection.ServerId, connection.Endpoint, choice?.Reason ?? "the first server", choice);
        if (!_everConnected)
        {
            _everConnected = true;
            Raise(Connected, args);
        }
        else
        {
            Raise(moved ? Moved : Recovered, args);
        }

        SetState(FarmClientState.Connected);
    }

    private void LostServer(RttpConnection connection, string why)
    {
        SetState(FarmClientState.Reconnecting);
        Raise(Lost, new FarmServerEventArgs(connection.ServerId, connection.Endpoint, why, null));
    }

    private void Raise<T>(EventHandler<T>? handler, T args)
    {
        if (handler is not null)
        {
            _events.Writer.TryWrite(() => handler(this, args));
        }
    }

    private async Task PumpEventsAsync()
    {
        await foreach (var raise in _events.Reader.ReadAllAsync())
        {
            try
            {
                raise();
            }
            catch (Exception ex)
            {
                Log.HandlerFailed(_logger, ex);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 5001, Level = LogLevel.Debug, Message = "{Kind}: {Text}")]
        public static partial void Step(ILogger logger, StepKind kind, string text);

        [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "{Kind}: {Text}")]
        public static partial void Notable(ILogger logger, StepKind kind, string text);

        [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "{Kind}: {Text}")]
        public static partial void Trouble(ILogger logger, StepKind kind, string text);

        [LoggerMessage(EventId = 5004, Level = LogLevel.Error, Message = "an event handler of the application threw")]
        public static partial void HandlerFailed(ILogger logger, Exception ex);
    }
}
