using System.Globalization;
using Xunit.Abstractions;

namespace StreamFarm.Fuzz.Tests;

/// <summary>
/// A bounded, seeded mutation run of every fuzz target over its corpus (fuzz/corpus and the
/// generated seeds): none may throw. <c>FUZZ_SECONDS</c> (default 5 per target) and
/// <c>FUZZ_SEED</c> (default: the day) change the run; a crash prints the seed and saves the input
/// under fuzz/findings. The coverage-guided run is scripts/fuzz.sh (AFL++).
/// </summary>
public sealed class FuzzSmokeTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("rttp")]
    [InlineData("dns")]
    [InlineData("gossip")]
    public void Target_NeverThrows_OnMutatedCorpus(string target)
    {
        var seconds = double.TryParse(Environment.GetEnvironmentVariable("FUZZ_SECONDS"), CultureInfo.InvariantCulture, out var s) ? s : 5;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), CultureInfo.InvariantCulture, out var f) ? f : DateTime.UtcNow.DayOfYear;
        var root = FindRepoRoot();
        var corpus = Smoke.LoadCorpus(Path.Combine(root, "fuzz", "corpus", target));
        Assert.NotEmpty(corpus); // the checked-in seeds are found
        corpus.AddRange(Corpus.For(target).Values);
        var result = Smoke.Run(target, corpus, seed, long.MaxValue, TimeSpan.FromSeconds(seconds), Path.Combine(root, "fuzz", "findings"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{target}: {result.Executions:N0} inputs in {result.Elapsed.TotalSeconds:0.0} s, seed {seed}"));
        Assert.True(result.Error is null, $"{target} threw on an input (seed {seed}, saved to {result.SavedTo}; replay: dotnet streamfarm-fuzz.dll replay {target} <file>): {result.Error}");
        Assert.True(result.Executions > corpus.Count, "the run mutated inputs");
    }

    /// <summary>A mutation run is a function of its seed: a failure replays.</summary>
    [Fact]
    public void SameSeed_SameInputs()
    {
        var pool = Corpus.For("rttp").Values.ToList();
        var a = new Random(42);
        var b = new Random(42);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(Smoke.Mutate(pool[i % pool.Count], pool, a), Smoke.Mutate(pool[i % pool.Count], pool, b));
        }
    }

    /// <summary>The harness finds a planted bug: a target that throws on a byte the corpus lacks is caught, with the input.</summary>
    [Fact]
    public void PlantedBug_IsFound_WithItsInput()
    {
        static void Buggy(byte[] input)
        {
            if (input.Contains((byte)0xFF))
            {
                throw new InvalidOperationException("planted");
            }
        }

        var result = Smoke.Run(Buggy, "planted", [[.. "PING\n"u8]], 1, 1_000_000, TimeSpan.FromSeconds(30));
        Assert.IsType<InvalidOperationException>(result.Error);
        Assert.Contains((byte)0xFF, result.Crash!);
    }

    private static string FindRepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "StreamFarm.slnx")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new InvalidOperationException("StreamFarm.slnx not found above " + AppContext.BaseDirectory);
    }
}
