using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using StreamFarm.Protocol;

namespace StreamFarm.Benchmarks;

/// <summary>
/// The receive path: <see cref="RttpLineReader.TryReadLine"/> then <see cref="RttpParser.TryParse"/>
/// into one <see cref="RttpFrame"/> reused across iterations, as a connection does.
/// </summary>
[MemoryDiagnoser]
public class ParseBenchmarks
{
    private const int MaxLine = RttpLimits.DefaultMaxLineBytes;

    private readonly RttpFrame _frame = new();
    private readonly RttpLimits _limits = RttpLimits.Default;
    private ReadOnlySequence<byte> _pub;
    private ReadOnlySequence<byte> _update;
    private ReadOnlySequence<byte> _pubSplit;
    private ReadOnlySequence<byte> _bulk;
    private ReadOnlySequence<byte> _bulkSegmented;

    /// <summary>Lines in the 64 KB buffer (to turn the per-buffer time into a per-line time).</summary>
    public int BulkLines { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        var pub = Encoding.UTF8.GetBytes(Lines.Pub + "\n");
        _pub = new ReadOnlySequence<byte>(pub);
        _update = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(Lines.Update + "\n"));
        _pubSplit = Segments.Split(pub, pub.Length / 2); // one line across two segments
        var bulk = Lines.Bulk(64 * 1024, out var count);
        BulkLines = count;
        _bulk = new ReadOnlySequence<byte>(bulk);
        _bulkSegmented = Segments.Chunks(bulk, 4096); // like a pipe's 4 KB segments

        // Fail fast if a line does not parse: a benchmark of the error path would be meaningless.
        if (ReadAndParsePub() != RttpVerb.Pub || ReadAndParseUpdate() != RttpVerb.Update
            || ReadAndParsePubAcrossSegments() != RttpVerb.Pub
            || ParseBuffer64K() != count || ParseBuffer64KInSegments() != count)
        {
            throw new InvalidOperationException("benchmark input does not parse");
        }
    }

    [Benchmark(Description = "ReadLine+Parse PUB (6 fields)")]
    public RttpVerb ReadAndParsePub() => ReadOne(_pub);

    [Benchmark(Description = "ReadLine+Parse UPDATE (@merged, 6 fields)")]
    public RttpVerb ReadAndParseUpdate() => ReadOne(_update);

    [Benchmark(Description = "ReadLine+Parse PUB split over 2 segments")]
    public RttpVerb ReadAndParsePubAcrossSegments() => ReadOne(_pubSplit);

    [Benchmark(Description = "ReadLine+Parse 64 KB buffer")]
    public int ParseBuffer64K() => ReadAll(_bulk);

    [Benchmark(Description = "ReadLine+Parse 64 KB in 4 KB segments")]
    public int ParseBuffer64KInSegments() => ReadAll(_bulkSegmented);

    private RttpVerb ReadOne(ReadOnlySequence<byte> buffer)
    {
        if (RttpLineReader.TryReadLine(ref buffer, MaxLine, out var line) != OperationStatus.Done
            || RttpParser.TryParse(line, _frame, _limits, out _) != RttpErrorCode.None)
        {
            return RttpVerb.None;
        }

        return _frame.Verb;
    }

    private int ReadAll(ReadOnlySequence<byte> buffer)
    {
        var n = 0;
        while (RttpLineReader.TryReadLine(ref buffer, MaxLine, out var line) == OperationStatus.Done)
        {
            if (RttpParser.TryParse(line, _frame, _limits, out _) != RttpErrorCode.None)
            {
                return -1;
            }

            n++;
        }

        return n;
    }
}
