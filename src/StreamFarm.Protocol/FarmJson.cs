using System.Text.Json;
using System.Text.Json.Serialization;

namespace StreamFarm.Protocol;

/// <summary>
/// The farm table as JSON, shared by HTTP <c>/farm</c> and <c>streamfarm farm --json</c>:
/// an array of servers with <c>id, group, state, liveness, users, capacity, addresses</c>.
/// </summary>
public static class FarmJson
{
    public static string Serialize(FarmSnapshot snapshot, bool indented = false) =>
        JsonSerializer.Serialize(snapshot.Members.Select(ToJson).ToArray(), indented ? FarmJsonContext.Indented.ServerJsonArray : FarmJsonContext.Default.ServerJsonArray);

    public static ServerJson ToJson(FarmMember m) =>
        new(m.Id, m.Group, m.State, m.Liveness, m.Users, m.Capacity, new AddressesJson(m.Tcp, m.Ws, m.Http, m.External.Length > 0 ? m.External : null, m.Tls.Length > 0 ? m.Tls : null, m.Route.Length > 0 ? m.Route : null, m.Wss.Length > 0 ? m.Wss : null));
}

public sealed record ServerJson(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("group")] string Group,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("liveness")] string Liveness,
    [property: JsonPropertyName("users")] int Users,
    [property: JsonPropertyName("capacity")] int Capacity,
    [property: JsonPropertyName("addresses")] AddressesJson Addresses);

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
