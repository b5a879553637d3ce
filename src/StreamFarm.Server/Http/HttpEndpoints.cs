using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Prometheus;
using StreamFarm.Protocol;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server.Http;

/// <summary>The HTTP side: the dashboard at /, the price grid at /grid, the static status page at /status, /farm, /healthz, /metrics and WebSocket RTTP at /rttp.</summary>
internal static class HttpEndpoints
{
    public static void Map(WebApplication app, RttpServer server, CollectorRegistry registry)
    {
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15) });
        app.MapGet("/healthz", () => server.IsStopping
            ? Results.Text("stopping\n", statusCode: 503)
            : Results.Text("ok\n"));
        app.MapGet("/farm", () => Results.Text(FarmJson.Serialize(server.Farm.Current), "application/json"));
        app.MapMetrics("/metrics", registry);
        app.Map("/rttp", (HttpContext context) => AcceptWebSocketAsync(context, server));
        // The live dashboard (and the sample price grid) over RTTP/WebSocket; the server-rendered
        // status page stays at /status (and at / when the pages were not built into this assembly).
        app.MapGet("/", () => Pages.Available ? Pages.Serve("dashboard.html") : Results.Content(StatusPage(server), "text/html; charset=utf-8"));
        app.MapGet("/grid", () => Pages.Serve("grid.html"));
        app.MapGet("/assets/{name}", (string name) => Pages.Serve(name));
        app.MapGet("/favicon.ico", () => Results.NoContent());
        app.MapGet("/status", () => Results.Content(StatusPage(server), "text/html; charset=utf-8"));
        app.MapPost("/admin/drain", (HttpContext context, int? spreadSeconds) =>
        {
            // Administrative: only from the machine itself.
            if (context.Connection.RemoteIpAddress is not { } remote || !IPAddress.IsLoopback(remote))
            {
                return Results.Text("drain is accepted from loopback only\n", statusCode: StatusCodes.Status403Forbidden);
            }

            server.BeginDrain(TimeSpan.FromSeconds(Math.Clamp(spreadSeconds ?? 10, 0, 3600)));
            return Results.Text($"draining: {server.Connections} client(s) will be moved\n");
        });
    }

    private static async Task AcceptWebSocketAsync(HttpContext context, RttpServer server)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("RTTP over WebSocket: open a WebSocket to this URL\n");
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
