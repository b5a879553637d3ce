using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamFarm.Protocol;

/// <summary>
/// The farm table as JSON, shared by HTTP <c>/farm</c> and <c>streamfarm farm --json</c>:
/// an array of servers with <c>id, group, state, liveness, users, capacity, addresses</c>.
/// </summary>
public static class FarmJson
{
    /// <summary>The table's servers as a JSON array, one object per server (<see cref="ServerJson"/>).</summary>
    /// <param name="snapshot">The farm table.</param>
    /// <param name="indented">Indent for people to read; compact otherwise.</param>
    public static string Serialize(FarmSnapshot snapshot, bool indented = false) =>
        JsonSerializer.Serialize(snapshot.Members.Select(ToJson).ToArray(), indented ? FarmJsonContext.Indented.ServerJsonArray : FarmJsonContext.Default.ServerJsonArray);

    /// <summary>One server as its JSON object; addresses the server does not have are left out.</summary>
    public static ServerJson ToJson(FarmMember m) =>
        new(m.Id, m.Group, m.State, m.Liveness, m.Users, m.Capacity, new AddressesJson(m.Tcp, m.Ws, m.Http, m.External.Length > 0 ? m.External : null, m.Tls.Length > 0 ? m.Tls : null, m.Route.Length > 0 ? m.Route : null, m.Wss.Length > 0 ? m.Wss : null));
}

/// <summary>One server in the JSON farm table.</summary>
/// <param name="Id">The server's id (<see cref="FarmMember.Id"/>).</param>
/// <param name="Group">Its group.</param>
/// <param name="State"><c>joining</c>, <c>active</c>, <c>draining</c> or <c>leaving</c>.</param>
/// <param name="Liveness"><c>alive</c>, <c>suspect</c> or <c>dead</c>.</param>
/// <param name="Users">Client sessions it has now.</param>
/// <param name="Capacity">Client sessions it takes at most.</param>
/// <param name="Addresses">Where it is reached.</param>
public sealed record ServerJson(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("group")] string Group,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("liveness")] string Liveness,
    [property: JsonPropertyName("users")] int Users,
    [property: JsonPropertyName("capacity")] int Capacity,
    [property: JsonPropertyName("addresses")] AddressesJson Addresses);

/// <summary>Where one server is reached, in the JSON farm table; optional addresses are left out when empty.</summary>
/// <param name="Tcp">RTTP over TCP, <c>host:port</c>.</param>
/// <param name="Ws">RTTP over WebSocket, a <c>ws://</c> URL.</param>
/// <param name="Http">Base URL of the HTTP side (dashboard, <c>/farm</c>, <c>/metrics</c>).</param>
/// <param name="External">RTTP over TCP from outside the farm's network (NAT, load balancer), or null.</param>
/// <param name="Tls">RTTP over TLS, <c>host:port</c>, or null without TLS.</param>
/// <param name="Route">Where other servers open routes to it, or null without routes.</param>
/// <param name="Wss">RTTP over WebSocket with TLS, a <c>wss://</c> URL, or null without TLS.</param>
public sealed record AddressesJson(
    [property: JsonPropertyName("tcp")] string Tcp,
    [property: JsonPropertyName("ws")] string Ws,
    [property: JsonPropertyName("http")] string Http,
    [property: JsonPropertyName("external"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? External = null,
    [property: JsonPropertyName("tls"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Tls = null,
    [property: JsonPropertyName("route"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Route = null,
    [property: JsonPropertyName("wss"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Wss = null);

[JsonSerializable(typeof(ServerJson[]))]
internal sealed partial class FarmJsonContext : JsonSerializerContext
{
    private static FarmJsonContext? _indented;

    public static FarmJsonContext Indented => _indented ??= new FarmJsonContext(new JsonSerializerOptions { WriteIndented = true });
}
