using BenchmarkDotNet.Running;
using StreamFarm.Benchmarks.Receive;

if (args is ["--receive-check", ..])
{
    // The receive benchmarks without BenchmarkDotNet: each case set up, a few blocks through, and
    // the bytes allocated per message (every thread) counted over the last of them.
    // An optional third argument runs only the cases whose name contains it (e.g. Pooled).
    ReceiveCheck.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200, args.Length > 2 ? args[2] : "");
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
