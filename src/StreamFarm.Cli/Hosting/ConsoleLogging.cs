using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace StreamFarm.Cli.Hosting;

/// <summary>
/// The node's log: one line per entry on standard output,
/// <c>HH:mm:ss.fff info: Category[event] message</c> (UTC; the level coloured on a terminal), as the
/// console logger's simple formatter writes it with <c>SingleLine</c>, a UTC timestamp and that
/// format; <c>Microsoft.*</c> categories from Warning up.
/// </summary>
/// <remarks>
/// Built by hand rather than through <c>LoggerFactory.Create(b =&gt; b.AddSimpleConsole(...))</c>:
/// that way runs a dependency-injection container whose options, monitors and formatter options are
/// open generic registrations, and in the native executable each of them is a type built at run
/// time; it was 30 % of a node's start-up CPU there (docs/benchmarks.md, "Footprint"). The console
/// logger's provider (its queue and writer thread) is the library's; only the formatter is ours,
/// because the library's simple formatter takes its options from that container alone.
/// </remarks>
internal static class ConsoleLogging
{
    public static ILoggerFactory Create(LogLevel minimum)
    {
        var filters = new LoggerFilterOptions { MinLevel = minimum };
        // Kestrel's start-up lines would call the RTTP port http://.
        filters.Rules.Add(new LoggerFilterRule(null, "Microsoft", LogLevel.Warning, null));
        var console = new ConsoleLoggerProvider(
            new FixedOptions(new ConsoleLoggerOptions { FormatterName = SingleLineFormatter.FormatterName }),
            [new SingleLineFormatter(colors: !Console.IsOutputRedirected)]);
        // Added, not passed to the constructor: the factory disposes only the providers added to it,
        // and disposing the console provider is what writes out its queue before the process ends.
        var factory = new LoggerFactory([], filters);
        factory.AddProvider(console);
        return factory;
    }

    private sealed class FixedOptions(ConsoleLoggerOptions value) : IOptionsMonitor<ConsoleLoggerOptions>
    {
        public ConsoleLoggerOptions CurrentValue => value;

        public ConsoleLoggerOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<ConsoleLoggerOptions, string?> listener) => null;
    }

    /// <summary>The simple console formatter's single-line output, UTC timestamp <c>HH:mm:ss.fff </c>, no scopes.</summary>
    private sealed class SingleLineFormatter(bool colors) : ConsoleFormatter(FormatterName)
    {
        public const string FormatterName = "streamfarm-single-line";

        public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
        {
            var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
            if (logEntry.Exception is null && message is null)
            {
                return;
            }

            textWriter.Write(DateTimeOffset.UtcNow.ToString("HH:mm:ss.fff ", System.Globalization.CultureInfo.CurrentCulture));
            var (level, color) = logEntry.LogLevel switch
            {
                LogLevel.Trace => ("trce", "\x1B[40m\x1B[37m"),
                LogLevel.Debug => ("dbug", "\x1B[40m\x1B[37m"),
                LogLevel.Information => ("info", "\x1B[40m\x1B[32m"),
                LogLevel.Warning => ("warn", "\x1B[40m\x1B[1m\x1B[33m"),
                LogLevel.Error => ("fail", "\x1B[41m\x1B[30m"),
                LogLevel.Critical => ("crit", "\x1B[41m\x1B[1m\x1B[37m"),
                _ => throw new ArgumentOutOfRangeException(nameof(logEntry), logEntry.LogLevel, "unknown log level"),
            };
            if (colors)
            {
                // The library's escape codes: background, foreground, the level, then both reset.
                textWriter.Write(color);
                textWriter.Write(level);
                textWriter.Write("\x1B[39m\x1B[22m\x1B[49m");
            }
            else
            {
                textWriter.Write(level);
            }

            textWriter.Write(": ");
            textWriter.Write(logEntry.Category);
            textWriter.Write('[');
            textWriter.Write(logEntry.EventId.Id);
            textWriter.Write(']');
            WriteOneLine(textWriter, message);
            WriteOneLine(textWriter, logEntry.Exception?.ToString());
            textWriter.Write(Environment.NewLine);
        }

        private static void WriteOneLine(TextWriter textWriter, string? text)
        {
            if (!string.IsNullOrEmpty(text))
            {
                textWriter.Write(' ');
                textWriter.Write(text.Replace(Environment.NewLine, " ", StringComparison.Ordinal));
            }
        }
    }
}
