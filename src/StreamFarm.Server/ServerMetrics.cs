using System.Diagnostics.Metrics;

namespace StreamFarm.Server;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics), read from its counters when scraped, so
/// the hot path only bumps plain integers. Exported in Prometheus text by prometheus-net at /metrics.
/// </summary>
internal sealed class ServerMetrics : IDisposable
{
    public const string MeterPrefix = "StreamFarm.Server";

    public ServerMetrics(RttpServer server)
    {
        // One meter per server, so several nodes in one process (tests, demo) keep separate figures.
        Meter = new Meter($"{MeterPrefix}.{server.Options.Id}");
        Meter.CreateObservableGauge("streamfarm_connections", () => server.Connections, description: "Open client connections");
        Meter.CreateObservableGauge("streamfarm_users", () => server.Users, description: "Connected users (sessions past HELLO)");
        Meter.CreateObservableGauge("streamfarm_subscriptions", () => server.Subscriptions, description: "Active subscriptions");
        Meter.CreateObservableGauge("streamfarm_subjects", () => server.Subjects.Count, description: "Subjects held");
        Meter.CreateObservableCounter("streamfarm_messages_in", () => server.MessagesIn, description: "Messages received from clients");
        Meter.CreateObservableCounter("streamfarm_messages_out", () => server.MessagesOut, description: "Messages written to clients");
        Meter.CreateObservableCounter("streamfarm_conflations", () => server.Conflations, description: "Updates merged into waiting ones for slow consumers");
        Meter.CreateObservableCounter("streamfarm_slow_consumer_closes", () => server.SlowConsumerCloses, description: "Connections closed as slow consumers");
        Meter.CreateObservableCounter("streamfarm_rejected_full", () => server.RejectedFull, description: "Connections refused because the server was full");
        Meter.CreateObservableGauge("streamfarm_farm_servers", () => server.Farm.Current.Members.Count, description: "Servers in the farm table");
    }

    public Meter Meter { get; }

    public void Dispose() => Meter.Dispose();
}
