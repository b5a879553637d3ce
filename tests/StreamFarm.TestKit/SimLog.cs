using Microsoft.Extensions.Logging;

namespace StreamFarm.TestKit;

/// <summary>Server logs of a simulation, in memory, stamped with simulated time and the server's id (for replaying one seed).</summary>
public sealed class SimLog(Func<long> nowMs, LogLevel minimum = LogLevel.Information)
{
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lock)
            {
                return [.. _lines];
            }
        }
    }

    public void Add(string source, string text)
    {
        lock (_lock)
        {
            _lines.Add($"{nowMs() / 1000.0,8:0.000}s {source} {text}");
        }
    }

    /// <summary>A logger factory whose lines carry <paramref name="source"/> (a server id).</summary>
    public ILoggerFactory For(string source) => LoggerFactory.Create(b => b.SetMinimumLevel(minimum).AddProvider(new Provider(this, source)));

    private sealed class Provider(SimLog log, string source) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(log, source, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(SimLog log, string source, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            log.Add(source, $"{category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception.GetType().Name + ": " + exception.Message)}");
    }
}
