using System.Globalization;
using System.Text;
using System.Text.Json;
using StreamFarm.Faults.Tests.Checking;
using StreamFarm.Faults.Tests.Clients;
using StreamFarm.Faults.Tests.Farm;

namespace StreamFarm.Faults.Tests.Hosts;

/// <summary>
/// The product's own client as users run it, on the clients' host: <c>streamfarm sub SUBJECTS
/// --service stream --dns RESOLVER --json -v</c>, which finds the farm by name through the resolver
/// (DNS, first server, farm table, chosen server) and moves between servers by itself. Each JSON line
/// it prints is recorded as the wire line it stands for (<c>IMAGE</c>, <c>UPDATE</c> with
/// <c>@merged</c>, <c>STATUS</c>), all in one session: the client resubscribes on its own after a
/// move, and its first message from the new server is an <c>IMAGE</c>, as the checker expects
/// of any new session. Its connection steps (<c>-v</c>) are its log.
/// </summary>
internal sealed class CliSubscriber : ISubscriber
{
    private readonly Lock _lock = new();
    private readonly List<SubLine> _lines = [];
    private readonly List<string> _log = [];
    private NodeProcess? _process;

    private CliSubscriber(string name) => Name = name;

    public string Name { get; }

    /// <summary>Whether the command is still running (it gives up, exit 1, when no server is found for 30 s).</summary>
    public bool Running => _process is { HasExited: false };

    /// <summary>The addresses each DNS resolution gave (its <c>resolved:</c> steps).</summary>
    public IReadOnlyList<string> Resolutions()
    {
        lock (_lock)
        {
            return [.. _log.Where(l => l.Contains("] resolved: ", StringComparison.Ordinal))];
        }
    }

    public static CliSubscriber Start(string name, HostNetwork net, string resolver, IEnumerable<string> subjects, string logDir)
    {
        var s = new CliSubscriber(name);
        s._process = NodeProcess.Start(
            net.StreamfarmOnClientHost(["sub", .. subjects, "--service", "stream", "--dns", resolver, "--json", "-v"]),
            Path.Combine(logDir, $"{name}.process.log"),
            s.OnLine);
        return s;
    }

    public IReadOnlyList<SubLine> Lines()
    {
        lock (_lock)
        {
            return [.. _lines];
        }
    }

    public IReadOnlyList<string> Log()
    {
        lock (_lock)
        {
            return [.. _log];
        }
    }

    private void OnLine(string line, bool error)
    {
        var at = DateTime.UtcNow;
        if (error || !line.StartsWith('{'))
        {
            lock (_lock)
            {
                _log.Add($"{at:HH:mm:ss.fff} {line}");
            }

            return;
        }

        try
        {
            using var doc = JsonDocument.Parse(line);
            var m = doc.RootElement;
            var subject = m.GetProperty("subject").GetString()!;
            var server = m.GetProperty("server").GetString() ?? "?";
            var wire = new StringBuilder();
            switch (m.GetProperty("type").GetString())
            {
                case "status":
                    wire.Append(CultureInfo.InvariantCulture, $"STATUS {subject} {m.GetProperty("status").GetString()}");
                    break;
                case var type:
                    wire.Append(CultureInfo.InvariantCulture, $"{(type == "image" ? "IMAGE" : "UPDATE")} {subject} {m.GetProperty("epoch").GetUInt64()} {m.GetProperty("seq").GetUInt64()}");
                    if (m.TryGetProperty("merged", out var merged))
                    {
                        wire.Append(CultureInfo.InvariantCulture, $" @merged={merged.GetInt64()}");
                    }

                    foreach (var f in m.GetProperty("fields").EnumerateObject())
                    {
                        wire.Append(CultureInfo.InvariantCulture, $" {f.Name}={Escape(f.Value.GetString() ?? "")}");
                    }

                    break;
            }

            lock (_lock)
            {
                _lines.Add(new SubLine(Name, 1, server, at, wire.ToString()));
            }
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            lock (_lock)
            {
                _log.Add($"{at:HH:mm:ss.fff} unreadable output: {line} ({e.Message})");
            }
        }
    }

    /// <summary>RTTP escaping (docs/protocol.md, section 1), so that the checker reads the value back.</summary>
    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(" ", "\\s", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
    }
}
