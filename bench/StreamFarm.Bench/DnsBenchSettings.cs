namespace StreamFarm.Bench;

/// <summary>What <c>./bench.sh dns</c> does: the same dnsperf load against Knot and our responder.</summary>
public sealed record DnsBenchSettings
{
    /// <summary>dnsperf <c>-c</c>: client sockets (source ports).</summary>
    public int Clients { get; init; } = 8;

    /// <summary>dnsperf <c>-T</c>: load-generator threads.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>dnsperf <c>-q</c>: most queries outstanding.</summary>
    public int MaxOutstanding { get; init; } = 100;

    /// <summary>dnsperf <c>-l</c>: the measured run per server.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>An unreported dnsperf run before each measured one (JIT, caches, socket buffers).</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Each server's processes on the machine's last core, dnsperf on the others (<c>taskset</c>),
    /// and Knot with one UDP worker, as many as our responder's UDP loops: each server then has one
    /// core of its own and the load generator the rest, so queries per second say what one core of
    /// each server answers rather than how the two share the machine with dnsperf.
    /// </summary>
    public bool Pin { get; init; }

    /// <summary>Measured runs per server, alternating Knot and StreamFarm.</summary>
    public int Runs { get; init; } = 1;

    /// <summary>Knot's loopback address; StreamFarm's three servers use the next three (the first answers DNS).</summary>
    public string KnotAddress { get; init; } = "127.0.54.1";

    public string StreamFarmAddress { get; init; } = "127.0.54.2";

    public int Port { get; init; } = 5300;

    public string Zone { get; init; } = "farm.test";

    public string Knotd { get; init; } = "/usr/sbin/knotd";

    public string Dnsperf { get; init; } = "/usr/bin/dnsperf";

    /// <summary>The query mix, one <c>name type</c> per line, in dnsperf's input format.</summary>
    public IReadOnlyList<string> Queries => [$"stream.{Zone} A", $"s1.{Zone} A", $"_rttp._tcp.stream.{Zone} SRV", $"nonexistent.{Zone} A"];

    public void Validate()
    {
        if (Clients is < 1 or > 1000 || Threads is < 1 or > 64 || MaxOutstanding is < 1 or > 65535)
        {
            throw new ArgumentException("clients must be 1-1000, threads 1-64, outstanding queries 1-65535");
        }

        if (Duration < TimeSpan.FromSeconds(1) || Warmup < TimeSpan.Zero || Runs is < 1 or > 20)
        {
            throw new ArgumentException("the duration must be at least 1 s, the warm-up not negative, runs 1-20");
        }

        if (!System.Net.IPAddress.TryParse(KnotAddress, out var k) || !System.Net.IPAddress.TryParse(StreamFarmAddress, out var s) || !System.Net.IPAddress.IsLoopback(k) || !System.Net.IPAddress.IsLoopback(s))
        {
            throw new ArgumentException("the servers' addresses must be loopback addresses (127.x)");
        }

        if (Pin && Environment.ProcessorCount < 2)
        {
            throw new ArgumentException("--pin needs at least 2 cores (one for the server, the rest for dnsperf)");
        }

        if (Port is < 1 or > 65535)
        {
            throw new ArgumentException("the port must be between 1 and 65535");
        }
    }
}
