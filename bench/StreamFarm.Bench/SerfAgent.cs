using System.Globalization;
using System.Net;

namespace StreamFarm.Bench;

/// <summary>
/// A serf agent started as <c>serf agent -node=nK -bind=IP:7946 -rpc-addr=IP:7373 -encrypt=KEY
/// -profile=lan -tag users=0 [-join=SEED]</c>. Its view is the RPC
/// <c>members</c> call (what <c>serf members -format=json</c> prints: failed = dead); its status change
/// is the RPC <c>tags</c> call with users=1 (what <c>serf tags -set users=1</c> does).
/// </summary>
internal sealed class SerfAgent : MembershipMember
{
    public const int GossipPort = 7946;
    public const int RpcPort = 7373;
    private readonly IPEndPoint _rpc;
    private SerfRpcClient? _client;
    private SerfRpcClient? _tags;
    private bool _two;

    public SerfAgent(string serf, string id, string ip, string? seed, string key)
        : base(id, ip, serf, Arguments(id, ip, seed, key))
    {
        _rpc = new IPEndPoint(IPAddress.Parse(ip), RpcPort);
        RpcAddress = $"{ip}:{RpcPort}";
    }

    public string RpcAddress { get; }

    /// <summary>The version line of <c>serf version</c>, or "unknown".</summary>
    public static async Task<string> VersionAsync(string serf, CancellationToken cancel)
    {
        try
        {
            var run = await ChildProcess.RunToEndAsync(serf, ["version"], TimeSpan.FromSeconds(5), cancel);
            return run.FirstLine() ?? "unknown";
        }
        catch (BenchException)
        {
            return "unknown";
        }
    }

    public override async Task<IReadOnlyDictionary<string, MemberSeen>?> PollAsync(CancellationToken cancel)
    {
        try
        {
            _client ??= await SerfRpcClient.ConnectAsync(_rpc, cancel);
            var seen = new Dictionary<string, MemberSeen>(StringComparer.Ordinal);
            foreach (var m in await _client.MembersAsync(cancel))
            {
                var liveness = m.Status switch
                {
                    "alive" => "alive",
                    "failed" => "dead",
                    "left" or "leaving" => "left",
                    _ => m.Status,
                };
                int? users = m.Tags.TryGetValue("users", out var u) && int.TryParse(u, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
                seen[m.Name] = new MemberSeen(liveness, users);
            }

            MarkReady();
            return seen;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidDataException or OperationCanceledException or ObjectDisposedException)
        {
            // A call cut short leaves the connection mid-response: start again with a new one.
            await DropClientAsync();
            return null;
        }
    }

    public override async Task ChangeStatusAsync(CancellationToken cancel)
    {
        // A connection of its own, so the change is not queued behind a poll.
        await using var client = await SerfRpcClient.ConnectAsync(_rpc, cancel);
        await client.SetTagsAsync(new Dictionary<string, string> { ["users"] = "1" }, cancel);
    }

    public override async Task ToggleUserAsync(CancellationToken cancel)
    {
        _tags ??= await SerfRpcClient.ConnectAsync(_rpc, cancel);
        _two = !_two;
        await _tags.SetTagsAsync(new Dictionary<string, string> { ["users"] = _two ? "2" : "1" }, cancel);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_tags is { } tags)
        {
            _tags = null;
            await tags.DisposeAsync();
        }

        await DropClientAsync();
        await base.DisposeAsync();
    }

    protected override void OnLine(string line)
    {
        // "    2026/01/01 00:00:00 [INFO] serf: EventMemberJoin: n2 127.0.121.2": its own, once serf runs.
        if (line.Contains($"EventMemberJoin: {Id} ", StringComparison.Ordinal))
        {
            MarkReady();
        }
    }

    private static List<string> Arguments(string id, string ip, string? seed, string key)
    {
        List<string> args =
        [
            "agent", $"-node={id}", $"-bind={ip}:{GossipPort}", $"-rpc-addr={ip}:{RpcPort}", $"-encrypt={key}",
            "-profile=lan", "-tag", "users=0", "-log-level=info",
        ];
        if (seed is not null)
        {
            args.Add($"-join={seed}"); // the seed is up before the others start

        }

        return args;
    }

    private async Task DropClientAsync()
    {
        if (_client is { } c)
        {
            _client = null;
            await c.DisposeAsync();
        }
    }
}
