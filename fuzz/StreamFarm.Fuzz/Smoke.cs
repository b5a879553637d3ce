using System.Diagnostics;

namespace StreamFarm.Fuzz;

/// <summary>What a smoke run found: the first input that threw (saved), and how much was tried.</summary>
public sealed record SmokeResult(string Target, long Executions, TimeSpan Elapsed, byte[]? Crash, Exception? Error, string? SavedTo);

/// <summary>
/// A bounded, seeded, in-process mutation run over a target's corpus (no AFL needed): byte flips,
/// interesting values, insertions, deletions, duplications and splices of corpus entries. Much
/// weaker than coverage-guided AFL++ (scripts/fuzz.sh), but it runs in CI on every change, and
/// the same seed replays the same inputs.
/// </summary>
public static class Smoke
{
    private static readonly byte[] Interesting = [0, 1, 0x7F, 0x80, 0xFF, (byte)'\n', (byte)'\r', (byte)' ', (byte)'=', (byte)'\\', (byte)'@', (byte)'/', 0xC0, 0xC3, 0xE2, 0xF0];

    public static SmokeResult Run(string target, IReadOnlyList<byte[]> corpus, int seed, long maxExecutions, TimeSpan maxTime, string? crashDir = null) =>
        Run(Targets.All[target], target, corpus, seed, maxExecutions, maxTime, crashDir);

    public static SmokeResult Run(Action<byte[]> run, string target, IReadOnlyList<byte[]> corpus, int seed, long maxExecutions, TimeSpan maxTime, string? crashDir = null)
    {
        var random = new Random(seed);
        var sw = Stopwatch.StartNew();
        var executions = 0L;
        var pool = corpus.Count > 0 ? corpus : [[]];
        foreach (var entry in pool)
        {
            if (Try(run, entry, out var error))
            {
                executions++;
                continue;
            }

            return Found(target, executions, sw.Elapsed, entry, error!, crashDir);
        }

        while (executions < maxExecutions && sw.Elapsed < maxTime)
        {
            var input = Mutate(pool[random.Next(pool.Count)], pool, random);
            executions++;
            if (!Try(run, input, out var error))
            {
                return Found(target, executions, sw.Elapsed, input, error!, crashDir);
            }
        }

        return new SmokeResult(target, executions, sw.Elapsed, null, null, null);
    }

    private static bool Try(Action<byte[]> run, byte[] input, out Exception? error)
    {
        try
        {
            run(input);
            error = null;
            return true;
        }
        catch (Exception ex)
        {
            error = ex;
            return false;
        }
    }

    private static SmokeResult Found(string target, long executions, TimeSpan elapsed, byte[] input, Exception error, string? crashDir)
    {
        string? path = null;
        if (crashDir is not null)
        {
            Directory.CreateDirectory(crashDir);
            path = Path.Combine(crashDir, $"{target}-crash-{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(input))[..16]}.bin");
            File.WriteAllBytes(path, input);
        }

        return new SmokeResult(target, executions, elapsed, input, error, path);
    }

    /// <summary>One to eight stacked mutations of <paramref name="source"/>.</summary>
    public static byte[] Mutate(byte[] source, IReadOnlyList<byte[]> pool, Random random)
    {
        var data = new List<byte>(source);
        var count = 1 + random.Next(8);
        for (var m = 0; m < count; m++)
        {
            var at = data.Count == 0 ? 0 : random.Next(data.Count);
            switch (random.Next(8))
            {
                case 0 when data.Count > 0:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when data.Count > 0:
                    data[at] = Interesting[random.Next(Interesting.Length)];
                    break;
                case 2:
                    data.Insert(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 3 when data.Count > 0:
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + random.Next(16)));
                    break;
                case 4 when data.Count > 0:
                    var length = Math.Min(data.Count - at, 1 + random.Next(64));
                    data.InsertRange(random.Next(data.Count + 1), data.GetRange(at, length));
                    break;
                case 5:
                    var other = pool[random.Next(pool.Count)];
                    if (other.Length > 0)
                    {
                        var from = random.Next(other.Length);
                        data.InsertRange(at, other.AsSpan(from, Math.Min(other.Length - from, 1 + random.Next(128))).ToArray());
                    }

                    break;
                case 6 when data.Count > 1:
                    // a 16-bit length or count field set to a boundary value (binary formats)
                    var value = random.Next(4) switch { 0 => 0, 1 => 0xFFFF, 2 => data.Count, _ => random.Next(0x10000) };
                    data[at] = (byte)(value >> 8);
                    if (at + 1 < data.Count)
                    {
                        data[at + 1] = (byte)value;
                    }

                    break;
                default:
                    data.Add((byte)random.Next(256));
                    break;
            }
        }

        return [.. data];
    }

    /// <summary>The corpus files of a target (<c>fuzz/corpus/&lt;target&gt;</c>).</summary>
    public static List<byte[]> LoadCorpus(string directory) =>
        Directory.Exists(directory) ? [.. Directory.GetFiles(directory).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)] : [];
}
