using System.Globalization;
using StreamFarm.Fuzz;

// streamfarm-fuzz TARGET                         AFL++ mode (stdin; see scripts/fuzz.sh)
// streamfarm-fuzz smoke TARGET|all [--seed N] [--seconds S] [--executions N] [--corpus DIR]
// streamfarm-fuzz replay TARGET FILE...          run saved inputs, print what they throw
// streamfarm-fuzz corpus DIR                     write the seed corpus of every target
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: streamfarm-fuzz TARGET | smoke TARGET|all [--seed N] [--seconds S] [--executions N] [--corpus DIR] | replay TARGET FILE... | corpus DIR");
    Console.Error.WriteLine("targets: " + string.Join(", ", TargetNames.All));
    return 2;
}

string? Option(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

switch (args[0])
{
    case "corpus" when args.Length == 2:
        Corpus.Write(args[1]);
        return 0;

    case "replay" when args.Length >= 3:
    {
        var failed = 0;
        foreach (var file in args.Skip(2))
        {
            try
            {
                Targets.All[args[1]](File.ReadAllBytes(file));
                Console.WriteLine($"{file}: ok");
            }
            catch (Exception ex)
            {
                failed++;
                Console.WriteLine($"{file}: {ex}");
            }
        }

        return failed == 0 ? 0 : 1;
    }

    case "smoke" when args.Length >= 2:
    {
        var seed = int.Parse(Option("--seed") ?? "1", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Option("--seconds") ?? "10", CultureInfo.InvariantCulture);
        var executions = long.Parse(Option("--executions") ?? long.MaxValue.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var corpusRoot = Option("--corpus") ?? Path.Combine("fuzz", "corpus");
        var targets = args[1] == "all" ? Targets.All.Keys.ToList() : [args[1]];
        var status = 0;
        foreach (var target in targets)
        {
            var corpus = Smoke.LoadCorpus(Path.Combine(corpusRoot, target));
            corpus.AddRange(Corpus.For(target).Values);
            var result = Smoke.Run(target, corpus, seed, executions, TimeSpan.FromSeconds(seconds / targets.Count), crashDir: Path.Combine("fuzz", "findings"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{target}: {result.Executions:N0} inputs in {result.Elapsed.TotalSeconds:0.0} s (seed {seed}): {(result.Error is null ? "no crash" : $"CRASH {result.Error.GetType().Name}: {result.Error.Message}, input saved to {result.SavedTo}")}"));
            if (result.Error is not null)
            {
                Console.WriteLine(result.Error);
                status = 1;
            }
        }

        return status;
    }

    default:
        // Nothing of the instrumented assemblies may run before SharpFuzz has set up AFL's
        // coverage map (their static constructors write to it): the target is looked up inside.
        if (!TargetNames.All.Contains(args[0], StringComparer.Ordinal))
        {
            Console.Error.WriteLine($"unknown target or command: {args[0]}");
            return 2;
        }

        // Under afl-fuzz: one process, many inputs; an exception is reported to AFL as a crash.
        var name = args[0];
        SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            Targets.All[name](buffer.ToArray());
        });
        return 0;
}
