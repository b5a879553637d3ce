using System.Globalization;
using StreamFarm.Client;

namespace StreamFarm.Cli.Demo;

/// <summary>
/// A realistic, changing feed for the demo: FX pairs and equities as random walks, each subject
/// ticking at its own rate (from one tick every few seconds to tens per second). It publishes at
/// one server (routes carry every subject to subscribers on every server); if that server goes,
/// it goes on at the next one of its list.
/// </summary>
internal sealed class SamplePublisher(IReadOnlyList<RttpConnection> connections, int subjects, int seed)
{
    private static readonly string[] Currencies = ["USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK"];

    public static IReadOnlyList<string> SubjectNames(int count)
    {
        var names = new List<string>();
        for (var i = 0; i < Currencies.Length && names.Count < count; i++)
        {
            for (var j = 0; j < Currencies.Length && names.Count < count && names.Count < 40; j++)
            {
                if (i != j)
                {
                    names.Add($"/FX/{Currencies[i]}{Currencies[j]}");
                }
            }
        }

        for (var k = 0; names.Count < count; k++)
        {
            names.Add($"/EQ/STK{k:D3}.L");
        }

        return names;
    }

    public async Task RunAsync(CancellationToken cancel)
    {
        var random = new Random(seed);
        var names = SubjectNames(subjects);
        var state = names.Select(n => new Instrument(n, n.StartsWith("/FX/", StringComparison.Ordinal) ? 0.5 + random.NextDouble() : 10 + (random.NextDouble() * 990), 0.2 + (Math.Pow(random.NextDouble(), 3) * 20))).ToArray();
        var start = DateTime.UtcNow;
        foreach (var s in state)
        {
            await PublishAsync(s.Subject, Fields(s, random, full: true), replace: true, cancel);
        }

        var next = state.Select(s => start.AddSeconds(random.NextDouble() / s.Rate)).ToArray();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        while (await timer.WaitForNextTickAsync(cancel))
        {
            var now = DateTime.UtcNow;
            for (var i = 0; i < state.Length; i++)
            {
                if (next[i] > now)
                {
                    continue;
                }

                var s = state[i];
                s.Price *= 1 + ((random.NextDouble() - 0.5) * 0.0008);
                s.Volume += random.Next(1, 500);
                await PublishAsync(s.Subject, Fields(s, random, full: false), replace: false, cancel);
                next[i] = now.AddSeconds(-Math.Log(1 - random.NextDouble()) / s.Rate);
            }
        }
    }

    private int _current;

    /// <summary>The update at the current server, or the next one that takes it.</summary>
    private async Task PublishAsync(string subject, List<KeyValuePair<string, string>> fields, bool replace, CancellationToken cancel)
    {
        while (_current < connections.Count)
        {
            try
            {
                await connections[_current].PublishAsync(subject, fields, replace, cancel);
                return;
            }
            catch (RttpConnectionException)
            {
                _current++; // that server is gone; the next one takes the feed
            }
        }
    }

    private static List<KeyValuePair<string, string>> Fields(Instrument s, Random random, bool full)
    {
        var digits = s.Subject.StartsWith("/FX/", StringComparison.Ordinal) ? 5 : 2;
        var spread = s.Price * 0.0002;
        var list = new List<KeyValuePair<string, string>>
        {
            KeyValuePair.Create("bid", Math.Round(s.Price - spread, digits).ToString(CultureInfo.InvariantCulture)),
            KeyValuePair.Create("ask", Math.Round(s.Price + spread, digits).ToString(CultureInfo.InvariantCulture)),
            KeyValuePair.Create("volume", s.Volume.ToString(CultureInfo.InvariantCulture)),
            KeyValuePair.Create("time", DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)),
        };
        if (full)
        {
            list.Add(KeyValuePair.Create("name", s.Subject[(s.Subject.LastIndexOf('/') + 1)..]));
            list.Add(KeyValuePair.Create("venue", random.Next(2) == 0 ? "LSE IOB" : "XLON"));
        }

        return list;
    }

    private sealed class Instrument(string subject, double price, double rate)
    {
        public string Subject { get; } = subject;

        public double Price { get; set; } = price;

        public double Rate { get; } = rate;

        public long Volume { get; set; }
    }
}
