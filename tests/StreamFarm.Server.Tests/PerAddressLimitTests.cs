using System.Net;
using System.Net.Sockets;
using System.Text;
using StreamFarm.Server.Auth;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>
/// What one client address may hold or spend (docs/operations.md, "Limits that protect the
/// server"): RTTP sessions over TCP and WebSocket, HTTP connections, HTTP requests, failed logins.
/// Each limit refuses the one client with a clear answer and leaves another address untouched.
/// </summary>
public sealed class PerAddressLimitTests
{
    private static readonly IPAddress Other = IPAddress.Parse("127.0.0.2");

    private static async Task<string?> HelloAsync(LineClient c)
    {
        await c.SendAsync("HELLO 1 client=limits");
        return await c.NextAsync();
    }

    [Fact]
    public async Task RttpSessions_OverTheLimitFromOneAddress_GetErrFull_OthersAndLaterOnesGetIn()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxConnectionsPerAddress = 3);
        var held = new List<LineClient>();
        for (var i = 0; i < 3; i++)
        {
            var c = await LineClient.ConnectAsync(node.TcpEndPoint);
            Assert.StartsWith("WELCOME ", await HelloAsync(c), StringComparison.Ordinal);
            held.Add(c);
        }

        await using (var fourth = await LineClient.ConnectAsync(node.TcpEndPoint))
        {
            var refused = await fourth.NextAsync();
            Assert.StartsWith("ERR FULL @after=1000 too many connections from 127.0.0.1 (at most 3 per address)", refused, StringComparison.Ordinal);
            Assert.Null(await fourth.NextAsync()); // closed
        }

        await using (var other = await LineClient.ConnectAsync(node.TcpEndPoint, from: Other))
        {
            Assert.StartsWith("WELCOME ", await HelloAsync(other), StringComparison.Ordinal);
        }

        await held[0].DisposeAsync();
        await Eventually.TrueAsync(() => node.Server.SessionsPerAddress.OpenFrom(IPAddress.Loopback) == 2, "the closed session is released");
        await using (var again = await LineClient.ConnectAsync(node.TcpEndPoint))
        {
            Assert.StartsWith("WELCOME ", await HelloAsync(again), StringComparison.Ordinal);
        }

        Assert.Equal(1, node.Server.SessionsPerAddress.Refused);
        foreach (var c in held.Skip(1))
        {
            await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task WebSocketSessions_CountWithTcpOnes()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxConnectionsPerAddress = 2);
        await using var tcp = await LineClient.ConnectAsync(node.TcpEndPoint);
        Assert.StartsWith("WELCOME ", await HelloAsync(tcp), StringComparison.Ordinal);
        await using var ws = await Wire.OpenAsync(node, "ws");
        await using var refused = await WsWire.ConnectAsync(node);
        Assert.StartsWith("ERR FULL @after=1000 too many connections from 127.0.0.1", await refused.NextAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpConnections_OverTheLimitFromOneAddress_Get503_OthersGetIn()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.MaxConnectionsPerAddress = 2);
        using var first = await OpenHttpAsync(node, null);
        using var second = await OpenHttpAsync(node, null);
        await Eventually.TrueAsync(() => node.Server.HttpPerAddress.OpenFrom(IPAddress.Loopback) == 2, "both connections are counted");
        using var third = await OpenHttpAsync(node, null);
        var answer = await ReadAllAsync(third);
        Assert.StartsWith("HTTP/1.1 503 Service Unavailable", answer, StringComparison.Ordinal);
        Assert.Contains("too many connections from your address", answer, StringComparison.Ordinal);

        using var other = await OpenHttpAsync(node, Other);
        await other.GetStream().WriteAsync("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK", await ReadAllAsync(other), StringComparison.Ordinal);
        Assert.Equal(1, node.Server.HttpPerAddress.Refused);
    }

    [Fact]
    public async Task HttpRequests_OverTheRateFromOneAddress_Get429_OthersDoNot()
    {
        await using var node = await TestNode.StartAsync(o => o.Limits.HttpRequestsPerSecondPerAddress = 5);
        using var http = new HttpClient();
        // 60 at once: more than the bucket holds (10) however slow the machine is.
        var codes = (await Task.WhenAll(Enumerable.Range(0, 60).Select(async _ => (await http.GetAsync(new Uri($"http://{node.HttpEndPoint}/healthz"))).StatusCode))).ToList();

        Assert.Contains(HttpStatusCode.TooManyRequests, codes);
        Assert.Contains(HttpStatusCode.OK, codes);
        using var other = await OpenHttpAsync(node, Other);
        await other.GetStream().WriteAsync("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK", await ReadAllAsync(other), StringComparison.Ordinal);
    }

    [Fact]
    public async Task FailedLogins_OverTheLimitFromOneAddress_AreRefusedUnchecked_OthersCanLogIn()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Auth.Users.Add(new UserEntry { Name = "alice", PasswordHash = PasswordHasher.HashPassword("s3cret", 1000) });
            o.Auth.MaxFailuresPerAddress = 3;
        });
        for (var i = 0; i < 3; i++)
        {
            await using var guess = await LineClient.ConnectAsync(node.TcpEndPoint);
            await guess.SendAsync($"HELLO 1 user=alice password=guess{i}");
            Assert.StartsWith("ERR AUTH_FAILED wrong credentials", await guess.NextAsync(), StringComparison.Ordinal);
        }

        await using (var right = await LineClient.ConnectAsync(node.TcpEndPoint))
        {
            await right.SendAsync("HELLO 1 user=alice password=s3cret");
            var refused = await right.NextAsync();
            Assert.Matches(@"^ERR AUTH_FAILED @after=\d+ too many failed logins from 127\.0\.0\.1: try again in \d+ s$", refused);
        }

        await using (var other = await LineClient.ConnectAsync(node.TcpEndPoint, from: Other))
        {
            await other.SendAsync("HELLO 1 user=alice password=s3cret");
            Assert.StartsWith("WELCOME ", await other.NextAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(3, node.Server.AuthThrottle.Failures);
        Assert.Equal(1, node.Server.AuthThrottle.Throttled);
    }

    private static async Task<TcpClient> OpenHttpAsync(StreamFarmNode node, IPAddress? from)
    {
        var tcp = from is null ? new TcpClient(AddressFamily.InterNetwork) : new TcpClient(new IPEndPoint(from, 0));
        await tcp.ConnectAsync(node.HttpEndPoint);
        return tcp;
    }

    private static async Task<string> ReadAllAsync(TcpClient tcp)
    {
        using var cts = new CancellationTokenSource(LineClient.Patience);
        var buffer = new byte[8192];
        var text = new StringBuilder();
        try
        {
            int n;
            while ((n = await tcp.GetStream().ReadAsync(buffer, cts.Token)) > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (IOException)
        {
            // reset after the answer
        }

        return text.ToString();
    }
}
