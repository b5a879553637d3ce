namespace StreamFarm.Bench;

/// <summary>A benchmark step failed: a server did not start, a connection broke, the run stalled.</summary>
public sealed class BenchException : Exception
{
    public BenchException()
    {
    }

    public BenchException(string message)
        : base(message)
    {
    }

    public BenchException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
