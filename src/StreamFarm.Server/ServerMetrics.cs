using Prometheus;

namespace StreamFarm.Server;

/// <summary>
/// The server's Prometheus metrics (prometheus-net), one registry per server so several nodes in one
/// process (tests, demo) keep separate figures. Values are read from the server's plain counters
/// just before each scrape, so the hot path only bumps integers.
/// </summary>
internal sealed class ServerMetrics
{
    public ServerMetrics(RttpServer server)
    {
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        var connections = f.CreateGauge("streamfarm_connections", "Open client connections");
        var users = f.CreateGauge("streamfarm_users", "Connected users (sessions past HELLO)");
        var subscriptions = f.CreateGauge("streamfarm_subscriptions", "Active subscriptions");
        var subjects = f.CreateGauge("streamfarm_subjects", "Subjects held by this server");
        var farmServers = f.CreateGauge("streamfarm_farm_servers", "Servers in the farm table");
        var messagesIn = f.CreateCounter("streamfarm_messages_in_total", "Messages received from clients");
        var messagesOut = f.CreateCounter("streamfarm_messages_out_total", "Messages written to clients");
        var conflations = f.CreateCounter("streamfarm_conflations_total", "Updates merged into waiting ones for slow consumers");
        var slow = f.CreateCounter("streamfarm_slow_consumer_closes_total", "Connections closed as slow consumers");
        var full = f.CreateCounter("streamfarm_rejected_full_total", "Connections refused because the server was full");
        Registry.AddBeforeCollectCallback(() =>
        {
            connections.Set(server.Connections);
            users.Set(server.Users);
            subscriptions.Set(server.Subscriptions);
            subjects.Set(server.Subjects.Count);
            farmServers.Set(server.Farm.Current.Members.Count);
            messagesIn.IncTo(server.MessagesIn);
            messagesOut.IncTo(server.MessagesOut);
            conflations.IncTo(server.Conflations);
            slow.IncTo(server.SlowConsumerCloses);
            full.IncTo(server.RejectedFull);
        });
    }

    public CollectorRegistry Registry { get; }
}
