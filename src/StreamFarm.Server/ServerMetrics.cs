using Prometheus;
using StreamFarm.Membership;

namespace StreamFarm.Server;

/// <summary>
/// The server's Prometheus metrics (prometheus-net), one registry per server so several nodes in one
/// process (tests, demo) keep separate figures. Values are read from the server's plain counters
/// just before each scrape, so the hot path only bumps integers.
/// </summary>
internal sealed class ServerMetrics
{
    public ServerMetrics(RttpServer server, MembershipNode? membership = null, Tls.CertificateStore? certificates = null)
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
        var perAddress = f.CreateCounter("streamfarm_rejected_per_address_total", "Connections refused because their client address had limits.maxConnectionsPerAddress open (rttp: ERR FULL; http: 503)", "kind");
        var originRefused = f.CreateCounter("streamfarm_websocket_origin_refused_total", "WebSocket handshakes refused because their page's origin is not in http.allowedOrigins");
        var authFailures = f.CreateCounter("streamfarm_auth_failures_total", "Logins refused for missing or wrong credentials");
        var authThrottled = f.CreateCounter("streamfarm_auth_throttled_total", "Logins refused unchecked because their address failed auth.maxFailuresPerAddress times within auth.failureWindow");
        var memberUsers = f.CreateGauge("streamfarm_farm_member_users", "Users of each server in the farm table", "member", "group");
        var memberUp = f.CreateGauge("streamfarm_farm_member_alive", "1 when the farm table shows the server alive and active, else 0", "member", "state", "liveness");
        var gossipPackets = f.CreateCounter("streamfarm_gossip_packets_total", "Membership packets", "direction");
        var gossipBytes = f.CreateCounter("streamfarm_gossip_bytes_total", "Membership bytes", "direction");
        var gossipDropped = f.CreateCounter("streamfarm_gossip_dropped_total", "Membership packets dropped", "reason");
        var routesUp = f.CreateGauge("streamfarm_routes_up", "Routes from this server to other servers that are connected");
        var routesIn = f.CreateGauge("streamfarm_route_sessions", "Routes from other servers to this one");
        var forwarded = f.CreateCounter("streamfarm_route_forwarded_total", "Publications forwarded to their subjects' owners");
        var routeDropped = f.CreateCounter("streamfarm_route_dropped_total", "Publications this server could not pass on to their owner (no route, buffer full, or passed around too often); each one's publisher was told");
        var routeDroppedFor = f.CreateCounter("streamfarm_route_dropped_reasons_total", "streamfarm_route_dropped_total by reason: no_route, full (8 MiB waited for the owner), hops (the tables disagreed), peer (the server it went to could not pass it on), stalled (the owner's route down too long), expired (kept because its publisher had gone, it found no owner for 30 s)", "reason");
        var redispatched = f.CreateCounter("streamfarm_route_redispatched_total", "Publications passed on again to a subject's new owner after the old one was lost");
        var refusals = f.CreateCounter("streamfarm_route_refusals_total", "Peers found gone because their route port refused a connection (their subjects moved at once)");
        var restarts = f.CreateCounter("streamfarm_route_peer_restarts_total", "Peers found started again (a new life in their route HELLO) while the route to their old process still looked up; the route was opened again at once");
        var standby = f.CreateCounter("streamfarm_route_standby_asked_total", "Subjects whose successor this server (their owner) asked to keep a standby copy (STANDBY)");
        var unacked = f.CreateGauge("streamfarm_route_unacked", "Publications sent to owners and not acknowledged yet");
        var rejected = f.CreateCounter("streamfarm_publications_rejected_total", "Publications this server accepted and then had to refuse (NACK or ERR UNAVAILABLE)");
        var terms = f.CreateCounter("streamfarm_ownership_terms_total", "New ownership terms: pauses longer than the farm's shortest verdict, and dead verdicts heard");
        var rejoining = f.CreateGauge("streamfarm_rejoining", "1 while this server re-joins the farm after a pause or a dead verdict (shown as joining, owning nothing)");
        var seeds = f.CreateCounter("streamfarm_route_seeds_total", "Records sent to a subject's new owner");
        var seedsParked = f.CreateCounter("streamfarm_route_seeds_parked_total", "Records (hand-overs, copies) kept back to be sent again: they went round between servers whose tables disagreed on the owner, or found no room (or no route) to it");
        var publicationsParked = f.CreateCounter("streamfarm_route_publications_parked_total", "Publications that could not be passed on and whose publisher could not be told (it had gone): kept back and sent again to whoever owns the subject, instead of being dropped");
        var seedsLost = f.CreateCounter("streamfarm_route_seeds_lost_total", "Records given up after finding no owner for 30 s (the servers' tables disagreed that long)");
        var seedsWaiting = f.CreateGauge("streamfarm_route_seeds_waiting", "Records (and publications whose publisher had gone) kept back, waiting to be sent again to their owner");
        var slowRoutes = f.CreateCounter("streamfarm_route_slow_closes_total", "Routes cut because their buffer stayed full");
        var ownersSynced = f.CreateGauge("streamfarm_owners_synced", "1 when every other server this one reaches has confirmed the current subject owners since they last changed (the owners barrier): no hand-over or copy is on its way");
        var silentRoutes = f.CreateCounter("streamfarm_route_silent_closes_total", "Routes closed because nothing came from the peer for three ping intervals");
        var rebalance = f.CreateCounter("streamfarm_rebalance_moves_total", "Clients asked to move (MOVE REBALANCE) because this server had far more than its share");
        var rss = f.CreateGauge("process_resident_memory_bytes", "Resident memory of the process (RSS)");
        var heap = f.CreateGauge("dotnet_gc_heap_size_bytes", "Managed heap size after the last garbage collection (live objects and fragmentation; 0 before the first)");
        var committed = f.CreateGauge("dotnet_gc_committed_bytes", "Memory the garbage collector has committed from the OS");
        var gcs = f.CreateCounter("dotnet_gc_collections_total", "Garbage collections of any generation");
        var gen2 = f.CreateCounter("dotnet_gc_gen2_collections_total", "Full (generation 2) garbage collections");
        var gcPause = f.CreateCounter("dotnet_gc_pause_seconds_total", "Time every thread of the process was suspended by the garbage collector");
        var poolQueue = f.CreateGauge("dotnet_threadpool_queue_length", "Work items waiting for a thread-pool thread (a queue that stays long means the process is short of CPU)");
        var stalls = f.CreateCounter("streamfarm_stalls_total", "Housekeeping ticks that came more than 1.5 s late (a paused or starved process): clients' waiting input is not applied late");
        var slowTicks = f.CreateCounter("streamfarm_tick_slow_callbacks_total", "Timer callbacks on the process's tick thread (membership probes, housekeeping, status) that ran longer than 100 ms and held up the others");
        var pauses = f.CreateCounter("streamfarm_pauses_total", "Housekeeping ticks that came later than the pause limit (2 s): the server re-joined the farm owning nothing for a while");
        var routeLinks = f.CreateGauge("streamfarm_route_links", "Route links this server keeps (one per other server in its table, plus servers gone whose publications are not handed over yet)");
        var tlsReloads = f.CreateCounter("streamfarm_tls_certificate_reloads_total", "Times the certificate files changed and the new certificate was taken");
        var tlsSuites = f.CreateCounter("streamfarm_tls_suite_refused_total", "TLS connections closed right after the handshake because the negotiated suite is not on the allow-list (a client offering nothing modern)");
        var shown = new HashSet<string[]>();
        Registry.AddBeforeCollectCallback(() =>
        {
            foreach (var labels in shown)
            {
                (labels.Length == 2 ? memberUsers : memberUp).RemoveLabelled(labels);
            }

            shown.Clear();
            foreach (var m in server.Farm.Current.Members)
            {
                string[] u = [m.Id, m.Group];
                string[] a = [m.Id, m.State, m.Liveness];
                memberUsers.WithLabels(u).Set(m.Users);
                memberUp.WithLabels(a).Set(m.Liveness == "alive" && m.State == "active" ? 1 : 0);
                shown.Add(u);
                shown.Add(a);
            }

            if (membership is not null)
            {
                gossipPackets.WithLabels("sent").IncTo(membership.Stats.PacketsSent + membership.Stats.StreamsSent);
                gossipPackets.WithLabels("received").IncTo(membership.Stats.PacketsReceived);
                gossipBytes.WithLabels("sent").IncTo(membership.Stats.BytesSent);
                gossipBytes.WithLabels("received").IncTo(membership.Stats.BytesReceived);
                foreach (var reason in Enum.GetValues<DropReason>())
                {
                    gossipDropped.WithLabels(reason.ToString()).IncTo(membership.Dropped(reason));
                }
            }

            perAddress.WithLabels("rttp").IncTo(server.SessionsPerAddress.Refused);
            perAddress.WithLabels("http").IncTo(server.HttpPerAddress.Refused);
            authFailures.IncTo(server.AuthThrottle.Failures);
            originRefused.IncTo(server.OriginRefused);
            if (certificates is not null)
            {
                tlsReloads.IncTo(certificates.Reloads);
                tlsSuites.IncTo(certificates.RefusedSuites);
            }

            authThrottled.IncTo(server.AuthThrottle.Throttled);
            rejected.IncTo(server.RejectedPublications);
            terms.IncTo(server.Subjects.Clock.Renounced);
            rejoining.Set(server.IsRejoining ? 1 : 0);
            if (server.Routes is { } routes)
            {
                redispatched.IncTo(routes.Redispatched);
                refusals.IncTo(routes.Refusals);
                restarts.IncTo(routes.RestartsSeen);
                standby.IncTo(routes.StandbyAsked);
                unacked.Set(routes.Unacknowledged);
                routesUp.Set(routes.RoutesUp);
                forwarded.IncTo(routes.Forwarded);
                routeDropped.IncTo(routes.Dropped);
                foreach (var reason in Enum.GetValues<Routes.RouteDropReason>())
                {
                    routeDroppedFor.WithLabels(DropReasonLabel(reason)).IncTo(routes.DroppedFor(reason));
                }
                seeds.IncTo(routes.SeedsSent);
                seedsParked.IncTo(routes.SeedsParked);
                seedsLost.IncTo(routes.SeedsLost);
                publicationsParked.IncTo(routes.PublicationsParked);
                seedsWaiting.Set(routes.SeedsWaiting);
                slowRoutes.IncTo(routes.SlowRoutes);
                silentRoutes.IncTo(routes.SilentRoutes);
                ownersSynced.Set(routes.AllSynced ? 1 : 0);
            }

            var gc = GC.GetGCMemoryInfo();
            rss.Set(Environment.WorkingSet);
            heap.Set(gc.HeapSizeBytes);
            committed.Set(gc.TotalCommittedBytes);
            gcs.IncTo(GC.CollectionCount(0));
            gen2.IncTo(GC.CollectionCount(2));
            gcPause.IncTo(GC.GetTotalPauseDuration().TotalSeconds);
            poolQueue.Set(ThreadPool.PendingWorkItemCount);
            stalls.IncTo(server.Subjects.Clock.Stalls);
            pauses.IncTo(server.Subjects.Clock.Pauses);
            slowTicks.IncTo((StreamFarm.Membership.TickThread.For(server.Time) as StreamFarm.Membership.TickThread)?.SlowCallbacks ?? 0);
            routeLinks.Set(server.Routes?.Links ?? 0);
            routesIn.Set(server.RouteSessions);
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
            rebalance.IncTo(server.RebalanceMoves);
        });
    }

    public CollectorRegistry Registry { get; }

    private static string DropReasonLabel(Routes.RouteDropReason reason) => reason switch
    {
        Routes.RouteDropReason.NoRoute => "no_route",
        Routes.RouteDropReason.Full => "full",
        Routes.RouteDropReason.Hops => "hops",
        Routes.RouteDropReason.Peer => "peer",
        Routes.RouteDropReason.Expired => "expired",
        _ => "stalled",
    };
}
