using System.Globalization;
using System.Net;
using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>
/// A StreamFarm server started as <c>streamfarm node --id sK --listen IP --tcp-port 0 --http-port 0
/// --gossip-port P --seeds SEED --gossip-key KEY --preset lan|local</c>. Its view is HTTP <c>/farm</c>;
/// its status change is one RTTP client (<c>HELLO 1</c>), which makes its users count 1.
/// </summary>
internal sealed class StreamFarmMember : MembershipMember
{
    private readonly HttpClient _http;
    private FarmLinesClient? _client;
    private System.Net.Sockets.Socket? _churn;
    private volatile string? _httpBase;
    private volatile string? _rttp;

    public StreamFarmMember(ServerLauncher launcher, HttpClient http, string id, string ip, int gossipPort, string seed, string key, string preset)
        : base(id, ip, launcher.FileName, launcher.Arguments.Concat(
        [
            "node", "--id", id, "--listen", ip, "--tcp-port", "0", "--http-port", "0", "--gossip-port", Num(gossipPort),
            "--seeds", seed, "--gossip-key", key, "--preset", preset, "--farm-name", "membership-bench", "--log-level", "Warning",
        ]))
    {
        _http = http;
    }

    public override async Task<IReadOnlyDictionary<string, MemberSeen>?> PollAsync(CancellationToken cancel)
    {
        if (_httpBase is not { } baseUrl)
        {
            return null;
        }

        try
        {
            using var response = await _http.GetAsync(baseUrl + "/farm", cancel);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancel);
            using var doc = await JsonDocument.ParseAsync(body, cancellationToken: cancel);
            var seen = new Dictionary<string, MemberSeen>(StringComparer.Ordinal);
            foreach (var m in doc.RootElement.EnumerateArray())
            {
                var liveness = m.GetProperty("liveness").GetString() ?? "";
                if (m.GetProperty("state").GetString() == "leaving" && liveness == "dead")
                {
                    liveness = "left";
                }

                seen[m.GetProperty("id").GetString() ?? ""] = new MemberSeen(liveness, m.GetProperty("users").GetInt32());
            }

            return seen;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or InvalidOperationException or KeyNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// One RTTP client (<c>HELLO</c>), which makes the users count 1. It reads what it is sent and
    /// answers PING, so the server's idle timeout does not cut it (and turn users back to 0) later in
    /// the run.
    /// </summary>
    public override async Task ChangeStatusAsync(CancellationToken cancel) => _client = await ConnectClientAsync("membership-bench", cancel);

    /// <summary>
    /// One more client (a bare socket: <c>HELLO</c>, nothing read) on every other call, closed on the
    /// calls between.
    /// </summary>
    public override async Task ToggleUserAsync(CancellationToken cancel)
    {
        if (_churn is { } open)
        {
            _churn = null;
            open.Dispose();
            return;
        }

        if (_rttp is not { } rttp || !IPEndPoint.TryParse(rttp, out var endpoint))
        {
            throw new BenchException($"{Id}: its RTTP address is not known yet");
        }

        var socket = new System.Net.Sockets.Socket(endpoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancel);
            await socket.SendAsync("HELLO 1 client=churn\n"u8.ToArray(), System.Net.Sockets.SocketFlags.None, cancel);
            _churn = socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>An RTTP client of this member that logs the FARM table lines it is sent (it counts as a user).</summary>
    public Task<FarmLinesClient> WatchFarmAsync(CancellationToken cancel) => ConnectClientAsync("farm-watcher", cancel);

    /// <summary>The member's own gossip counters from /metrics: packets (datagrams + stream messages) and bytes sent.</summary>
    public async Task<(double Packets, double Bytes)?> GossipSentAsync(CancellationToken cancel)
    {
        if (_httpBase is not { } baseUrl)
        {
            return null;
        }

        try
        {
            var text = await _http.GetStringAsync(baseUrl + "/metrics", cancel);
            double? packets = null;
            double? bytes = null;
            foreach (var line in text.Split('\n'))
            {
                if (line.StartsWith("streamfarm_gossip_packets_total{direction=\"sent\"}", StringComparison.Ordinal))
                {
                    packets = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("streamfarm_gossip_bytes_total{direction=\"sent\"}", StringComparison.Ordinal))
                {
                    bytes = double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
                }
            }

            return packets is { } p && bytes is { } b ? (p, b) : null;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or FormatException or OperationCanceledException)
        {
            return null;
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _churn?.Dispose();
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        await base.DisposeAsync();
    }

    private async Task<FarmLinesClient> ConnectClientAsync(string name, CancellationToken cancel)
    {
        if (_rttp is not { } rttp || !IPEndPoint.TryParse(rttp, out var endpoint))
        {
            throw new BenchException($"{Id}: its RTTP address is not known yet");
        }

        return await FarmLinesClient.ConnectAsync(endpoint, name, TimeSpan.FromSeconds(10), cancel);
    }

    protected override void OnLine(string line)
    {
        // "  RTTP/TCP   127.0.0.2:40021", "  HTTP       http://127.0.0.2:41234  (status page, ...)", "  Gossip     127.0.0.2:7401 ..."
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length >= 2 && parts[0] == "RTTP/TCP")
        {
            _rttp = parts[1];
        }
        else if (parts.Length >= 2 && parts[0] == "HTTP" && parts[1].StartsWith("http://", StringComparison.Ordinal))
        {
            _httpBase = parts[1];
        }
        else if (parts.Length >= 2 && parts[0] == "Gossip")
        {
            MarkReady(); // printed once the membership has started (and sent its join)
        }
    }
}
