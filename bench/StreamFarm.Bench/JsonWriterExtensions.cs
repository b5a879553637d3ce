using System.Text.Json;

namespace StreamFarm.Bench;

/// <summary>Small helpers shared by the benchmarks' JSON reports.</summary>
internal static class JsonWriterExtensions
{
    /// <summary>Writes <c>"name": ["a", "b", ...]</c>.</summary>
    public static void WriteStringArray(this Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }
}
