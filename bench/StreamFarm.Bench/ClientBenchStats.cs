namespace StreamFarm.Bench;

/// <summary>Summary statistics of the client benchmarks: nearest-rank percentiles over a handful of runs.</summary>
public sealed record LatencySummary(int Count, double Min, double Median, double P99, double Max, double Mean)
{
    /// <summary>Summarises <paramref name="values"/> (milliseconds); all zeros when there are none.</summary>
    public static LatencySummary Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return new LatencySummary(0, 0, 0, 0, 0, 0);
        }

        return new LatencySummary(sorted.Length, sorted[0], Percentile(sorted, 50), Percentile(sorted, 99), sorted[^1], sorted.Average()) { P90 = Percentile(sorted, 90), P999 = Percentile(sorted, 99.9) };
    }

    /// <summary>The 90th percentile (nearest rank).</summary>
    public double P90 { get; init; }

    /// <summary>The 99.9th percentile (nearest rank): with fewer than 1,000 samples, the maximum or next to it.</summary>
    public double P999 { get; init; }

    /// <summary>"median (min–max)" of <paramref name="values"/> in <paramref name="format"/>, the median alone for one value, "—" for none.</summary>
    public static string MedianRange(IEnumerable<double> values, string format)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == 0)
        {
            return "—";
        }

        var median = Percentile(sorted, 50).ToString(format, System.Globalization.CultureInfo.InvariantCulture);
        return sorted.Count == 1 ? median : $"{median} ({sorted[0].ToString(format, System.Globalization.CultureInfo.InvariantCulture)}–{sorted[^1].ToString(format, System.Globalization.CultureInfo.InvariantCulture)})";
    }

    /// <summary>
    /// The nearest-rank percentile of sorted values: the smallest value with at least p % of the values
    /// at or below it. With 20 values p99 is the largest; the median of an even count is the lower middle.
    /// </summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return 0;
        }

        var rank = (int)Math.Ceiling(p / 100 * sorted.Count);
        return sorted[Math.Clamp(rank, 1, sorted.Count) - 1];
    }
}

/// <summary>The machine's one-minute load average, to show how busy it was around a run.</summary>
public static class LoadAverage
{
    /// <summary>The first field of /proc/loadavg, or "?" when it cannot be read.</summary>
    public static string Now()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }
}
