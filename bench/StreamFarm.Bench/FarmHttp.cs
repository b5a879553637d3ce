using System.Globalization;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>What the benchmarks read from a StreamFarm server's HTTP port: its farm table (<c>/farm</c>) and its metrics (<c>/metrics</c>).</summary>
internal static class FarmHttp
{
    /// <summary>A server's table from /farm: id → "state/liveness"; null when it cannot answer.</summary>
    public static async Task<Dictionary<string, string>?> TableAsync(HttpClient http, string baseUrl, CancellationToken cancel)
    {
        try
        {
            await using var body = await http.GetStreamAsync(baseUrl + "/farm", cancel);
            using var doc = await JsonDocument.ParseAsync(body, cancellationToken: cancel);
            var table = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var m in doc.RootElement.EnumerateArray())
            {
                table[m.GetProperty("id").GetString() ?? ""] = $"{m.GetProperty("state").GetString()}/{m.GetProperty("liveness").GetString()}";
            }

            return table;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException or KeyNotFoundException or TaskCanceledException && !cancel.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The samples of /metrics that have no labels (name → value); null when the server cannot answer.</summary>
    public static async Task<Dictionary<string, double>?> MetricsAsync(HttpClient http, string baseUrl, CancellationToken cancel)
    {
        try
        {
            var text = await http.GetStringAsync(baseUrl + "/metrics", cancel);
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var line in text.Split('\n'))
            {
                // "name value": no labels, no comment
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                if (space > 0 && line[0] != '#' && line.IndexOf('{', 0, space) < 0
                    && double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                {
                    metrics[line[..space]] = value;
                }
            }

            return metrics;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !cancel.IsCancellationRequested)
        {
            return null;
        }
    }
}
