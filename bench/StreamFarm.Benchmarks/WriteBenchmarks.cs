using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using StreamFarm.Protocol;

namespace StreamFarm.Benchmarks;

/// <summary>The send path: lines written into one <see cref="ArrayBufferWriter{T}"/> reset before each operation.</summary>
[MemoryDiagnoser]
public class WriteBenchmarks
{
    private readonly ArrayBufferWriter<byte> _writer = new(4096);
    private byte[] _subject = [];
    private byte[] _escapedFields = [];
    private string _venue = "";

    [GlobalSetup]
    public void Setup()
    {
        _subject = "/FX/GBPUSD"u8.ToArray();
        _escapedFields = Encoding.UTF8.GetBytes(Lines.EscapedFields);
        _venue = "LSE IOB";
        if (WriteUpdate() != Lines.Update.Length + 1)
        {
            throw new InvalidOperationException("WriteUpdate does not write the expected line: " + Encoding.UTF8.GetString(_writer.WrittenSpan));
        }
    }

    [Benchmark(Description = "WriteUpdate (@merged, 6 escaped fields)")]
    public int WriteUpdate()
    {
        _writer.ResetWrittenCount();
        RttpWriter.WriteUpdate(_writer, _subject, 1732861234000, 42, 3, _escapedFields);
        return _writer.WrittenCount;
    }

    [Benchmark(Description = "WriteField x6 (escaping, string and long values)")]
    public int WriteFields()
    {
        _writer.ResetWrittenCount();
        RttpWriter.WriteRaw(_writer, "PUB /FX/GBPUSD"u8);
        RttpWriter.WriteField(_writer, "bid"u8, "1.2702");
        RttpWriter.WriteField(_writer, "ask"u8, "1.2704");
        RttpWriter.WriteField(_writer, "bidSize"u8, 1_000_000);
        RttpWriter.WriteField(_writer, "askSize"u8, 2_500_000);
        RttpWriter.WriteField(_writer, "venue"u8, _venue);
        RttpWriter.WriteField(_writer, "time"u8, "12:00:01.250"u8);
        RttpWriter.WriteRaw(_writer, "\n"u8);
        return _writer.WrittenCount;
    }
}
