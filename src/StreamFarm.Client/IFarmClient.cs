using System.Threading.Channels;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// A client of a farm (<see cref="FarmClient"/>), as an application sees it: subscriptions as
/// streams of typed messages, last values, publishing, state and events. For fakes in the
/// application's own tests, and for <c>services.AddStreamFarmClient(...)</c>.
/// </summary>
public interface IFarmClient : IAsyncDisposable
{
    /// <summary>Where the client stands.</summary>
    FarmClientState State { get; }

    /// <summary>The id of the server serving the client, if connected.</summary>
    string? ServerId { get; }

    /// <summary>The latest farm table.</summary>
    FarmSnapshot Table { get; }

    /// <summary>Every connection step (for logs and diagnostics).</summary>
    ChannelReader<ConnectionStep> Steps { get; }

    /// <summary>Messages of the subjects subscribed with <see cref="SubscribeAsync(IEnumerable{string}, CancellationToken)"/>, and errors.</summary>
    ChannelReader<FarmMessage> Messages { get; }

    /// <summary>The state changed.</summary>
    event EventHandler<FarmClientStateChangedEventArgs>? StateChanged;

    /// <summary>Connected the first time.</summary>
    event EventHandler<FarmServerEventArgs>? Connected;

    /// <summary>The serving server was lost or asked the client to move.</summary>
    event EventHandler<FarmServerEventArgs>? Lost;

    /// <summary>Moved to another server at the server's request.</summary>
    event EventHandler<FarmServerEventArgs>? Moved;

    /// <summary>Served again after a loss.</summary>
    event EventHandler<FarmServerEventArgs>? Recovered;

    /// <summary>The application fell behind and a buffer overflowed.</summary>
    event EventHandler<OverflowEventArgs>? Overflowed;

    /// <summary>Starts the client; completes once connected and subscribed the first time.</summary>
    Task StartAsync(CancellationToken cancel = default);

    /// <summary>One subject's messages, typed, for as long as the enumeration goes on.</summary>
    IAsyncEnumerable<SubjectMessage> SubscribeAsync(string subject, CancellationToken cancel = default);

    /// <summary>Subscribes; the messages arrive on <see cref="Messages"/>.</summary>
    Task SubscribeAsync(IEnumerable<string> subjects, CancellationToken cancel = default);

    /// <summary>Ends subscriptions made for <see cref="Messages"/>.</summary>
    Task UnsubscribeAsync(IEnumerable<string> subjects, CancellationToken cancel = default);

    /// <summary>The last value of a subject (subscribing for a moment if needed); null when there is none.</summary>
    Task<SubjectRecord?> GetAsync(string subject, CancellationToken cancel = default);

    /// <summary>The last value of a subscribed subject, if its image has arrived.</summary>
    bool TryGetRecord(string subject, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SubjectRecord? record);

    /// <summary>Publishes fire and forget.</summary>
    Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, bool replace = false, CancellationToken cancel = default);

    /// <summary>Publishes as <paramref name="options"/> say (acknowledged: completes on ACK, throws on NACK; waits for the window: back-pressure).</summary>
    Task PublishAsync(string subject, IEnumerable<KeyValuePair<string, string>> fields, PublishOptions options, CancellationToken cancel = default);

    /// <summary>Waits until every tracked publication made so far is answered.</summary>
    Task WhenAcknowledgedAsync(CancellationToken cancel = default);
}
