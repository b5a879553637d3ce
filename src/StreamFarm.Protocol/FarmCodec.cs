using System.Buffers;
using System.Text;

namespace StreamFarm.Protocol;

/// <summary>Writes and reads the farm table lines (FARM, SERVER, FARMDEL).</summary>
public static class FarmCodec
{
    /// <summary>Writes <c>FARM v n</c> then one SERVER line per member.</summary>
    public static void WriteTable(IBufferWriter<byte> w, FarmSnapshot snapshot)
    {
        RttpWriter.WriteRaw(w, "FARM "u8);
        RttpWriter.WriteNumber(w, (ulong)snapshot.Version);
        RttpWriter.WriteRaw(w, " "u8);
        RttpWriter.WriteNumber(w, (ulong)snapshot.Members.Count);
        RttpWriter.WriteRaw(w, "\n"u8);
        foreach (var m in snapshot.Members)
        {
            WriteServer(w, snapshot.Version, m);
        }
    }

    /// <summary>Writes one SERVER line.</summary>
    public static void WriteServer(IBufferWriter<byte> w, long version, FarmMember m)
    {
        RttpWriter.WriteRaw(w, "SERVER "u8);
        RttpWriter.WriteNumber(w, (ulong)version);
        RttpWriter.WriteField(w, "id"u8, m.Id);
        RttpWriter.WriteField(w, "group"u8, m.Group);
        RttpWriter.WriteField(w, "state"u8, m.State);
        RttpWriter.WriteField(w, "liveness"u8, m.Liveness);
        RttpWriter.WriteField(w, "users"u8, m.Users);
        RttpWriter.WriteField(w, "capacity"u8, m.Capacity);
        RttpWriter.WriteField(w, "tcp"u8, m.Tcp);
        RttpWriter.WriteField(w, "ws"u8, m.Ws);
        RttpWriter.WriteField(w, "http"u8, m.Http);
        if (m.External.Length > 0)
        {
            RttpWriter.WriteField(w, "external"u8, m.External);
        }

        if (m.Tls.Length > 0)
        {
            RttpWriter.WriteField(w, "tls"u8, m.Tls);
        }

        if (m.Wss.Length > 0)
        {
            RttpWriter.WriteField(w, "wss"u8, m.Wss);
        }

        if (m.Route.Length > 0)
        {
            RttpWriter.WriteField(w, "route"u8, m.Route);
        }

        RttpWriter.WriteRaw(w, "\n"u8);
    }

    /// <summary>Writes <c>FARMDEL v id</c>.</summary>
    public static void WriteDelete(IBufferWriter<byte> w, long version, string id)
    {
        RttpWriter.WriteRaw(w, "FARMDEL "u8);
        RttpWriter.WriteNumber(w, (ulong)version);
        RttpWriter.WriteRaw(w, " "u8);
        RttpWriter.WriteRaw(w, Encoding.UTF8.GetBytes(id));
        RttpWriter.WriteRaw(w, "\n"u8);
    }

    /// <summary>Writes the lines that turn table <paramref name="from"/> into <paramref name="to"/>.</summary>
    public static void WriteDelta(IBufferWriter<byte> w, FarmSnapshot from, FarmSnapshot to)
    {
        foreach (var m in to.Members)
        {
            var old = from.Find(m.Id);
            if (old is null || old != m)
            {
                WriteServer(w, to.Version, m);
            }
        }

        foreach (var m in from.Members)
        {
            if (to.Find(m.Id) is null)
            {
                WriteDelete(w, to.Version, m.Id);
            }
        }
    }

    /// <summary>Reads a SERVER frame into a member (unknown fields ignored for forward compatibility).</summary>
    public static FarmMember ReadServer(RttpFrame frame)
    {
        string Get(ReadOnlySpan<byte> name, string fallback = "") =>
            frame.TryGetField(name, out var v) ? FieldEscaping.Unescape(v) : fallback;

        return new FarmMember
        {
            Id = Get("id"u8),
            Group = Get("group"u8, "default"),
            State = Get("state"u8, "active"),
            Liveness = Get("liveness"u8, "alive"),
            Users = int.TryParse(Get("users"u8, "0"), out var u) ? u : 0,
            Capacity = int.TryParse(Get("capacity"u8, "0"), out var c) ? c : 0,
            Tcp = Get("tcp"u8),
            Ws = Get("ws"u8),
            Http = Get("http"u8),
            External = Get("external"u8),
            Tls = Get("tls"u8),
            Wss = Get("wss"u8),
            Route = Get("route"u8),
        };
    }
}
