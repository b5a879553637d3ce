using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>One RTTP session starting or ending on a server, numbered in the order they happened.</summary>
internal sealed record SessionEvent(long Seq, string Node, bool Started, string Session, string Remote);

/// <summary>
/// Records the servers' "session started/ended" log events (ids 1001 and 1002) in one global order,
/// so a test can tell which connection of a client opened or closed first across servers.
/// </summary>
internal sealed class SessionLog
{
    private readonly ConcurrentQueue<SessionEvent> _events = new();
    private long _seq;

    public IReadOnlyList<SessionEvent> Events => [.. _events.OrderBy(e => e.Seq)];

    /// <summary>The number of the last event so far: later events have a larger one.</summary>
    public long Mark() => Interlocked.Read(ref _seq);

    /// <summary>Records a node's client sessions; sessions from <paramref name="ignoredPrefix"/> (the farm's own addresses: routes) are left out.</summary>
    public ILoggerProvider For(string node, string? ignoredPrefix = null) => new Provider(this, node, ignoredPrefix);

    private sealed class Provider(SessionLog log, string node, string? ignoredPrefix) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(log, node, ignoredPrefix);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(SessionLog log, string node, string? ignoredPrefix) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id is not (1001 or 1002) || state is not IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                return;
            }

            string Value(string key) => Convert.ToString(values.FirstOrDefault(v => v.Key == key).Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
            if (ignoredPrefix is not null && Value("Remote").StartsWith(ignoredPrefix, StringComparison.Ordinal))
            {
                return;
            }
            lock (log._events)
            {
                // Numbered and queued under one lock: the order of numbers is the order of events.
                log._events.Enqueue(new SessionEvent(Interlocked.Increment(ref log._seq), node, eventId.Id == 1001, Value("Id"), Value("Remote")));
            }
        }
    }
}
