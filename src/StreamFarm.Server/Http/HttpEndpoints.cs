using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebSockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Prometheus;
using StreamFarm.Protocol;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server.Http;

/// <summary>The HTTP side: the dashboard at /, the price grid at /grid, the static status page at /status, /farm, /healthz, /metrics and WebSocket RTTP at /rttp.</summary>
internal static class HttpEndpoints
{
    /// <summary>
    /// The node's HTTP pipeline: the request rate limit per address (when set), WebSocket upgrades,
    /// the restricted paths' check, then the routes below. Paths match as ASP.NET Core's routing
    /// matched them when these were minimal-API endpoints: case-insensitive, a trailing slash
    /// ignored; a known path asked with another method answers 405 with <c>Allow</c>, an unknown
    /// one 404.
    /// </summary>
    public static RequestDelegate Build(RttpServer server, CollectorRegistry registry, ILoggerFactory logging, HttpRateLimiter? rateLimit)
    {
        var http = server.Options.Http;
        var metrics = new MetricServerMiddleware(_ => Task.CompletedTask, new MetricServerMiddleware.Settings { Registry = registry });
        RequestDelegate routes = context => RouteAsync(context, server, http, metrics);
        RequestDelegate restricted = async context =>
        {
            // The restricted read-only paths (http.restricted) need the administrative credential.
            var path = context.Request.Path.Value ?? "";
            if (http.Restricted.Contains(path, StringComparer.Ordinal) && Denied(context, http) is { } denied)
            {
                await denied.ExecuteAsync(context);
                return;
            }

            await routes(context);
        };
        var webSockets = new WebSocketMiddleware(restricted, Options.Create(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15) }), logging);
        if (rateLimit is null)
        {
            return webSockets.Invoke;
        }

        return async context =>
        {
            // Requests per client address (a token bucket: a page load's burst passes, a flood gets 429).
            if (!rateLimit.TryTake(context.Connection.RemoteIpAddress))
            {
                context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                return;
            }

            await webSockets.Invoke(context);
        };
    }

    private static Task RouteAsync(HttpContext context, RttpServer server, HttpOptions http, MetricServerMiddleware metrics)
    {
        var path = context.Request.Path.Value ?? "/";
        if (path.Length > 1 && path[^1] == '/')
        {
            path = path[..^1];
        }

        var get = HttpMethods.IsGet(context.Request.Method);
        switch (path.ToLowerInvariant())
        {
            case "/healthz":
                return get ? Text(context, server.IsStopping ? Results.Text("stopping\n", statusCode: 503) : Results.Text("ok\n")) : NotAllowed(context, "GET");
            case "/farm":
                return get ? Text(context, Results.Text(FarmJson.Serialize(server.Farm.Current), "application/json")) : NotAllowed(context, "GET");
            case "/metrics":
                return metrics.Invoke(context);
            case "/rttp":
                return AcceptWebSocketAsync(context, server);
            case "/":
                // The live dashboard (and the sample price grid) over RTTP/WebSocket; the server-rendered
                // status page stays at /status (and at / when the pages were not built into this assembly).
                return !get ? NotAllowed(context, "GET")
                    : Text(context, Pages.Available ? Pages.Serve("dashboard.html")
                        : http.Restricted.Contains("/status") && Denied(context, http) is { } denied ? denied // "/" is the status page then: the same rule
                        : Results.Content(StatusPage(server), "text/html; charset=utf-8"));
            case "/grid":
                return get ? Text(context, Pages.Serve("grid.html")) : NotAllowed(context, "GET");
            case "/favicon.ico":
                return get ? Text(context, Results.NoContent()) : NotAllowed(context, "GET");
            case "/status":
                return get ? Text(context, Results.Content(StatusPage(server), "text/html; charset=utf-8")) : NotAllowed(context, "GET");
            case "/admin/drain":
                return HttpMethods.IsPost(context.Request.Method) ? DrainAsync(context, server, http) : NotAllowed(context, "POST");
        }

        // /assets/{name}: one segment after /assets/.
        if (path.StartsWith("/assets/", StringComparison.OrdinalIgnoreCase) && path.Length > "/assets/".Length && path.IndexOf('/', "/assets/".Length) < 0)
        {
            return get ? Text(context, Pages.Serve(path["/assets/".Length..])) : NotAllowed(context, "GET");
        }

        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }

    private static Task Text(HttpContext context, IResult result) => result.ExecuteAsync(context);

    private static Task NotAllowed(HttpContext context, string allow)
    {
        context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
        context.Response.Headers.Allow = allow;
        return Task.CompletedTask;
    }

    /// <summary>POST /admin/drain?spreadSeconds=N: clients are moved to other servers over N seconds (default 10).</summary>
    private static Task DrainAsync(HttpContext context, RttpServer server, HttpOptions http)
    {
        int? spreadSeconds = null;
        var raw = context.Request.Query["spreadSeconds"];
        if (!StringValues.IsNullOrEmpty(raw))
        {
            if (!int.TryParse(raw.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest; // as the generated binding answered
                return Task.CompletedTask;
            }

            spreadSeconds = parsed;
        }

        if (Denied(context, http) is { } denied)
        {
            return denied.ExecuteAsync(context);
        }

        server.BeginDrain(TimeSpan.FromSeconds(Math.Clamp(spreadSeconds ?? 10, 0, 3600)));
        return Results.Text($"draining: {server.Connections} client(s) will be moved\n").ExecuteAsync(context);
    }

    /// <summary>
    /// Null when the request may use an administrative (or restricted) endpoint: with
    /// <c>http.adminTokenHash</c>, it carries <c>Authorization: Bearer &lt;token&gt;</c>; without
    /// one, it comes from loopback. Otherwise the answer to send (401 or 403).
    /// </summary>
    private static IResult? Denied(HttpContext context, HttpOptions http)
    {
        if (http.AdminTokenHash is { } hash)
        {
            var header = context.Request.Headers.Authorization.ToString();
            if (header.StartsWith("Bearer ", StringComparison.Ordinal) && Auth.PasswordHasher.VerifyToken(header["Bearer ".Length..].Trim(), hash))
            {
                return null;
            }

            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"streamfarm\"";
            return Results.Text("this needs the administrative token: Authorization: Bearer <token> (http.adminTokenHash)\n", statusCode: StatusCodes.Status401Unauthorized);
        }

        return context.Connection.RemoteIpAddress is { } remote && IPAddress.IsLoopback(remote)
            ? null
            : Results.Text("accepted from loopback only (set http.adminTokenHash to allow it from elsewhere with a token)\n", statusCode: StatusCodes.Status403Forbidden);
    }

    /// <summary>
    /// Whether a WebSocket from this page's origin may be opened: no <c>Origin</c> (not a
    /// browser), a page of this server itself, or an origin of <c>http.allowedOrigins</c> (any when
    /// the list is empty). Browsers send <c>Origin</c> on every WebSocket handshake and scripts
    /// cannot forge it, so this stops other sites' pages from using a visitor's network position.
    /// </summary>
    internal static bool OriginAllowed(HttpContext context, HttpOptions http)
    {
        var origin = context.Request.Headers.Origin.ToString();
        if (origin.Length == 0 || http.AllowedOrigins.Count == 0)
        {
            return true;
        }

        var own = $"{context.Request.Scheme}://{context.Request.Host}";
        return string.Equals(origin, own, StringComparison.OrdinalIgnoreCase)
            || http.AllowedOrigins.Any(o => string.Equals(o, origin, StringComparison.OrdinalIgnoreCase));
    }

    private static async Task AcceptWebSocketAsync(HttpContext context, RttpServer server)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("RTTP over WebSocket: open a WebSocket to this URL\n");
            return;
        }

        if (!OriginAllowed(context, server.Options.Http))
        {
            server.CountOriginRefused();
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync($"pages from {context.Request.Headers.Origin} may not open a WebSocket here (http.allowedOrigins)\n");
            return;
        }

        TransportAbort.SizeSendBuffer(context.Features, server.Options.Limits.SocketSendBufferBytes);
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var bridge = new WebSocketBridge(socket, server.Options.Limits.MaxLineBytes, server.Time);
        var remote = $"ws:{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
        await bridge.RunAsync(
            async (pipe, _) =>
            {
                var end = await server.RunSessionCoreAsync(pipe, remote);
                return end.Cut ? TimeSpan.Zero : end.GraceLeft; // cut: its grace period is over
            },
            () =>
            {
                socket.Abort();
                TransportAbort.Reset(context.Features, context.Abort);
            },
            context.RequestAborted);
    }

    private static string StatusPage(RttpServer server)
    {
        var farm = server.Farm.Current;
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=2>")
          .Append("<title>StreamFarm ").Append(WebUtility.HtmlEncode(server.Options.Id)).Append("</title>")
          .Append("<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style></head><body>")
          .Append("<h1>StreamFarm server ").Append(WebUtility.HtmlEncode(server.Options.Id)).Append("</h1>")
          .Append("<p>connections ").Append(server.Connections).Append(" &middot; users ").Append(server.Users)
          .Append(" &middot; subjects ").Append(server.Subjects.Count).Append(" &middot; subscriptions ").Append(server.Subscriptions)
          .Append(" &middot; messages in ").Append(server.MessagesIn).Append(" / out ").Append(server.MessagesOut)
          .Append(" &middot; conflations ").Append(server.Conflations).Append("</p>")
          .Append("<h2>Farm (version ").Append(farm.Version).Append(")</h2><table><tr><th>id</th><th>group</th><th>state</th><th>liveness</th><th>users</th><th>capacity</th><th>tcp</th><th>ws</th></tr>");
        foreach (var m in farm.Members)
        {
            sb.Append("<tr>");
            foreach (var cell in new[] { m.Id, m.Group, m.State, m.Liveness, m.Users.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Capacity.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Tcp, m.Ws })
            {
                sb.Append("<td>").Append(WebUtility.HtmlEncode(cell)).Append("</td>");
            }

            sb.Append("</tr>");
        }

        sb.Append("</table><p><a href=/farm>/farm</a> &middot; <a href=/metrics>/metrics</a> &middot; <a href=/healthz>/healthz</a></p></body></html>");
        return sb.ToString();
    }
}
