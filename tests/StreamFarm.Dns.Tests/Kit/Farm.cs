using StreamFarm.Protocol;

namespace StreamFarm.Dns.Tests.Kit;

/// <summary>Farm tables and responders for the tests.</summary>
internal static class Farm
{
    /// <summary>A fake clock's start, for the rate limiter's tests.</summary>
    public static readonly DateTimeOffset Start = new(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);

    /// <summary>A client address outside every group network.</summary>
    public static readonly byte[] Client = [192, 0, 2, 1];

    /// <summary>A healthy server <c>s{n}</c> at 10.0.0.n, RTTP port 7400, WebSocket port 7481.</summary>
    public static FarmMember Server(int n, string state = "active", string liveness = "alive", int users = 0, int capacity = 1000, string group = "default", string? ip = null)
    {
        ip ??= $"10.0.{n / 250}.{(n % 250) + 1}";
        var host = ip.Contains(':', StringComparison.Ordinal) ? $"[{ip}]" : ip;
        return new FarmMember
        {
            Id = $"s{n}",
            Group = group,
            State = state,
            Liveness = liveness,
            Users = users,
            Capacity = capacity,
            Tcp = $"{host}:7400",
            Ws = $"ws://{host}:7481/rttp",
            Http = $"http://{host}:7480",
        };
    }

    /// <summary>The address <see cref="Server"/> gives server n by default.</summary>
    public static string Ip(int n) => $"10.0.{n / 250}.{(n % 250) + 1}";

    public static FarmSnapshot Table(params FarmMember[] members) => new(1, members);

    public static FarmSnapshot Healthy(int count) => Table([.. Enumerable.Range(1, count).Select(n => Server(n))]);

    public static DnsOptions Options(Action<DnsOptions>? configure = null)
    {
        var o = new DnsOptions { NameServerAddress = "192.0.2.53" };
        configure?.Invoke(o);
        return o;
    }

    public static DnsResponder Responder(FarmSnapshot table, Action<DnsOptions>? configure = null, int seed = 1) =>
        Responder(() => table, configure, seed);

    public static DnsResponder Responder(Func<FarmSnapshot> table, Action<DnsOptions>? configure = null, int seed = 1) =>
        new(Options(configure), table, new Random(seed));
}

/// <summary>Calls <see cref="DnsResponder.Respond"/> as the server does, with a 64 KiB buffer.</summary>
internal static class Ask
{
    public const byte Sentinel = 0xA5;

    /// <summary>The raw response, or an empty array when the responder sends nothing.</summary>
    public static byte[] Raw(DnsResponder responder, byte[] query, byte[]? client = null, bool tcp = false)
    {
        var buffer = new byte[65536];
        Array.Fill(buffer, Sentinel);
        var n = responder.Respond(query, buffer, client ?? Farm.Client, tcp);
        Assert.InRange(n, 0, 65535);
        return buffer[..n];
    }

    /// <summary>Asks and parses the answer strictly; the responder must answer.</summary>
    public static DnsMessage Message(DnsResponder responder, byte[] query, byte[]? client = null, bool tcp = false)
    {
        var raw = Raw(responder, query, client, tcp);
        Assert.NotEmpty(raw);
        var m = DnsMessage.Parse(raw);
        Assert.True(m.Qr);
        Assert.Equal(query[0], (byte)(m.Id >> 8));
        Assert.Equal(query[1], (byte)m.Id);
        Assert.False(m.Ra); // no recursion, ever
        return m;
    }

    public static DnsMessage Question(DnsResponder responder, string name, ushort type, ushort cls = Wire.In, bool edns = false, byte[]? client = null, bool tcp = false) =>
        Message(responder, Wire.Query(name, type, cls, edns: edns), client, tcp);
}
