using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using StreamFarm.Server.Auth;
using StreamFarm.Server.Http;
using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>The HTTP side's access rules (http.*): WebSocket origins, the administrative token, restricted paths.</summary>
public sealed class HttpAccessTests
{
    private const string AdminToken = "admin-s3cret-token";

    private static async Task<WebSocketState> OpenAsync(StreamFarmNode node, string? origin)
    {
        using var ws = new ClientWebSocket();
        if (origin is not null)
        {
            ws.Options.SetRequestHeader("Origin", origin);
        }

        try
        {
            await ws.ConnectAsync(new Uri($"ws://{node.HttpEndPoint}/rttp"), CancellationToken.None);
            return ws.State;
        }
        catch (WebSocketException)
        {
            return WebSocketState.Closed;
        }
    }

    [Fact]
    public async Task WebSocket_FromAnOriginNotAllowed_Is403_OthersOpen()
    {
        await using var node = await TestNode.StartAsync(o => o.Http.AllowedOrigins = ["https://app.example"]);
        Assert.Equal(WebSocketState.Open, await OpenAsync(node, "https://app.example"));
        Assert.Equal(WebSocketState.Open, await OpenAsync(node, null)); // not a browser
        Assert.Equal(WebSocketState.Open, await OpenAsync(node, $"http://{node.HttpEndPoint}")); // its own pages
        Assert.Equal(WebSocketState.Closed, await OpenAsync(node, "https://evil.example"));
        Assert.Equal(1, node.Server.OriginRefused);

        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{node.HttpEndPoint}/rttp");
        request.Headers.Add("Origin", "https://evil.example");
        request.Headers.Add("Connection", "Upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("http.allowedOrigins", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminEndpoints_WithATokenConfigured_NeedIt_EvenFromLoopback()
    {
        await using var node = await TestNode.StartAsync(o => o.Http.AdminTokenHash = PasswordHasher.HashToken(AdminToken));
        using var http = new HttpClient { BaseAddress = new Uri($"http://{node.HttpEndPoint}") };
        using (var none = await http.PostAsync("/admin/drain?spreadSeconds=0", null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Post, "/admin/drain?spreadSeconds=0"))
        {
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "guess");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        }

        Assert.False(node.Server.IsDraining);
        using var right = new HttpRequestMessage(HttpMethod.Post, "/admin/drain?spreadSeconds=0");
        right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(right)).StatusCode);
        Assert.True(node.Server.IsDraining);
    }

    [Fact]
    public async Task RestrictedPaths_NeedTheAdminToken_OthersStayOpen()
    {
        await using var node = await TestNode.StartAsync(o =>
        {
            o.Http.AdminTokenHash = PasswordHasher.HashToken(AdminToken);
            o.Http.Restricted = ["/metrics", "/farm"];
        });
        using var http = new HttpClient { BaseAddress = new Uri($"http://{node.HttpEndPoint}") };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/farm")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/status")).StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        Assert.Contains("streamfarm_connections", await http.GetStringAsync("/metrics"), StringComparison.Ordinal);
        Assert.StartsWith("[", await http.GetStringAsync("/farm"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not an origin")]
    [InlineData("https://app.example/path")]
    [InlineData("ftp://app.example")]
    public void AllowedOrigins_ThatAreNotOrigins_AreRefusedAtStart(string origin) =>
        Assert.Throws<ArgumentException>(() => new HttpOptions { AllowedOrigins = [origin] }.Validate());

    [Fact]
    public void Restricted_UnknownPath_IsRefusedAtStart() =>
        Assert.Throws<ArgumentException>(() => new HttpOptions { Restricted = ["/rttp"] }.Validate());
}
