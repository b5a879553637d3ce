using System.Text;
using StreamFarm.Protocol;
using StreamFarm.Server.Auth;
using StreamFarm.Server.Subjects;

namespace StreamFarm.Server.Connections;

/// <summary>The handling of each client verb. Runs on the read loop only.</summary>
internal sealed partial class ClientSession
{
    private void Dispatch(RttpFrame frame)
    {
        if (!IsWelcomed && frame.Verb != RttpVerb.Hello)
        {
            SendError(RttpErrorCode.HelloRequired, "send HELLO <versions> first");
            return;
        }

        switch (frame.Verb)
        {
            case RttpVerb.Hello: OnHello(frame); break;
            case RttpVerb.Sub: OnSub(frame); break;
            case RttpVerb.Unsub: OnUnsub(frame); break;
            case RttpVerb.Pub: OnPub(frame, replace: false); break;
            case RttpVerb.PubImage: OnPub(frame, replace: true); break;
            case RttpVerb.Farm when frame.ArgCount > 0:
                // FARM <version> <count> is the server's table header; a client's FARM takes nothing.
                SendError(RttpErrorCode.Syntax, "usage: FARM (no arguments)");
                break;
            case RttpVerb.Farm: _server.SendFarmTable(this); break;
            case RttpVerb.Ping:
                Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WritePingPong(w, pong: true, frame.ArgCount > 0 ? frame.Arg(0) : default)));
                if (IsRoute && frame.ArgCount > 0 && frame.Arg(0).StartsWith("owners-"u8))
                {
                    _server.Routes?.OnPeerSynced(RoutePeer!, Encoding.ASCII.GetString(frame.Arg(0))); // the owners barrier (RouteManager)
                }

                break;
            case RttpVerb.Pong: break;
            case RttpVerb.Bye: Close(DisconnectReason.ClientBye, null); break;
            case RttpVerb.Auth when frame.ArgCount == 0 && !IsRoute: OnAuth(frame); break;
            case RttpVerb.Standby when IsRoute:
                // The peer owns these subjects and this server is next in line: keep copies.
                for (var i = 0; i < frame.ArgCount; i++)
                {
                    _server.Subjects.KeepStandby(frame.Arg(i));
                }

                break;
            default:
                SendError(RttpErrorCode.Syntax, $"{frame.Verb.ToString().ToUpperInvariant()} is sent by servers, not clients");
                break;
        }
    }

    private void OnHello(RttpFrame frame)
    {
        if (IsWelcomed)
        {
            SendError(RttpErrorCode.DuplicateHello, "HELLO was already accepted");
            return;
        }

        if (!SpeaksVersion1(frame.Arg(0)))
        {
            SendError(RttpErrorCode.Version, "this server speaks RTTP versions: 1");
            return;
        }

        ClientName = Field(frame, "client"u8);
        var isRoute = frame.TryGetField("route"u8, out var route);
        if (isRoute != OnRoutePort)
        {
            SendError(RttpErrorCode.AuthFailed, OnRoutePort
                ? $"this is the route port (servers of the farm only); clients connect to port {_server.Options.TcpPort}"
                : "routes connect to the route port (farm.routePort, 7402 by default)");
            return;
        }

        if (isRoute)
        {
            OnRouteHello(frame, Unescape(route));
            return;
        }

        if (frame.TryGetField("ping"u8, out var pingField) && !TryRequestKeepAlive(pingField))
        {
            SendError(RttpErrorCode.Syntax, "ping= is the keep-alive interval asked for, in milliseconds (a positive whole number)");
            return;
        }

        if (frame.TryGetField("stamps"u8, out var stamps))
        {
            if (!stamps.SequenceEqual("1"u8) && !stamps.SequenceEqual("0"u8))
            {
                SendError(RttpErrorCode.Syntax, "stamps= is 1 (record lines carry their writes' stamps) or 0");
                return;
            }

            _stampsAsked = stamps[0] == (byte)'1';
        }

        if (_server.Options.GroupOnly && Field(frame, "group"u8) is { } group && group != _server.Options.Group)
        {
            SendError(RttpErrorCode.WrongGroup, $"server {_server.Options.Id} serves group {_server.Options.Group} only, not {group}: choose a server of your group", $"@group={_server.Options.Group} @after=0");
            return;
        }

        var user = Field(frame, "user"u8);
        var password = Field(frame, "password"u8);
        var token = Field(frame, "token"u8);
        var address = Transport.AddressLimiter.AddressOf(Remote);
        if (_server.AuthThrottle.BlockedFor(address) is { } wait)
        {
            var ms = (long)Math.Ceiling(wait.TotalMilliseconds);
            SendError(RttpErrorCode.AuthFailed, $"too many failed logins from {address}: try again in {Math.Ceiling(wait.TotalSeconds):0} s", string.Create(System.Globalization.CultureInfo.InvariantCulture, $"@after={ms}"));
            return;
        }

        Permissions? permissions;
        if (token is not null && _server.Jwt is { } jwt && JwtAuthenticator.LooksLikeJwt(token))
        {
            var signed = jwt.Validate(token);
            if (signed.Refusal is { } why)
            {
                _server.AuthThrottle.Failed(address);
                SendError(why.Code, why.Text);
                return;
            }

            permissions = signed.Permissions;
            SetTokenLifetime(signed);
        }
        else if ((permissions = _server.Authenticator.Authenticate(user, password, token)) is null)
        {
            _server.AuthThrottle.Failed(address);
            SendError(RttpErrorCode.AuthFailed, user is null && token is null ? "this server requires credentials (user= password= or token=)" : "wrong credentials");
            return;
        }

        _permissions = permissions;
        Outbound.EnqueueControl(RenderWelcome());
        _server.SendFarmTable(this);
        _server.AnnounceStatusChange(); // one user more
    }

    // A signed token's end (UTC ticks; 0: the session's credentials do not expire) and id (jti, for revocation).
    private long _tokenExpires;
    private string? _tokenId;

    private void SetTokenLifetime(JwtResult signed)
    {
        _tokenId = signed.Id;
        Volatile.Write(ref _tokenExpires, signed.Expires.UtcTicks);
    }

    /// <summary>
    /// <c>AUTH token=&lt;jwt&gt;</c>: a new token for the same user before the old one expires. Its
    /// permissions replace the old ones, and held subscriptions they no longer allow end with
    /// <c>STATUS ... DENIED</c>. Answered <c>AUTH OK exp=&lt;unix seconds&gt;</c>; a token refused
    /// closes the session (<c>AUTH_FAILED</c>), as at HELLO.
    /// </summary>
    private void OnAuth(RttpFrame frame)
    {
        var token = Field(frame, "token"u8);
        if (_server.Jwt is not { } jwt || Volatile.Read(ref _tokenExpires) == 0)
        {
            SendError(RttpErrorCode.AuthFailed, "AUTH renews a signed token (JWT); this session did not log in with one");
            return;
        }

        if (token is null || !JwtAuthenticator.LooksLikeJwt(token))
        {
            SendError(RttpErrorCode.Syntax, "usage: AUTH token=<jwt>");
            return;
        }

        var signed = jwt.Validate(token);
        if (signed.Refusal is { } why)
        {
            SendError(why.Code, why.Text); // AUTH_EXPIRED or AUTH_FAILED, as at HELLO
            return;
        }

        if (signed.Permissions!.Principal != _permissions!.Principal)
        {
            SendError(RttpErrorCode.AuthFailed, $"a renewed token must name the same user ({_permissions.Principal}), not {signed.Permissions.Principal}");
            return;
        }

        _permissions = signed.Permissions;
        SetTokenLifetime(signed);
        var denied = _subscriptions.Keys.Where(s => !signed.Permissions.CanSubscribe(s)).ToList();
        foreach (var name in denied)
        {
            _subscriptions.Remove(name, out var record);
            _server.Subjects.Unsubscribe(record!, this);
            Outbound.EnqueueStatus(Encoding.UTF8.GetBytes(name), SubjectStatus.Denied);
        }

        _server.CountSubscriptions(-denied.Count);
        Volatile.Write(ref _subscriptionCount, _subscriptions.Count);
        var exp = signed.Expires.ToUnixTimeSeconds();
        Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteAscii(w, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"AUTH OK exp={exp}\n"))));
    }

    /// <summary>From the housekeeping tick: a session whose signed token expired (and was not renewed) or was revoked is closed.</summary>
    private bool TokenStillGood()
    {
        var expires = Volatile.Read(ref _tokenExpires);
        if (expires == 0)
        {
            return true;
        }

        if (_server.Time.GetUtcNow().UtcTicks > expires + _server.Options.Auth.Jwt.ClockSkew.Ticks)
        {
            CloseWithError(RttpErrorCode.AuthExpired, $"token expired at {new DateTimeOffset(expires, TimeSpan.Zero):yyyy-MM-ddTHH:mm:ssZ}; renew it before then with AUTH token=<jwt>", DisconnectReason.ProtocolError);
            return false;
        }

        if (_tokenId is { } id && _server.Jwt?.IsRevoked(id) == true)
        {
            CloseWithError(RttpErrorCode.AuthFailed, "token revoked", DisconnectReason.ProtocolError);
            return false;
        }

        return true;
    }

    /// <summary>
    /// The longest keep-alive interval a client may ask for in HELLO (<c>ping=</c>): a connection
    /// the server pings this rarely may show a frozen server's values as current for three times
    /// as long.
    /// </summary>
    internal static readonly TimeSpan MaxRequestedPing = TimeSpan.FromMinutes(5);

    /// <summary>
    /// HELLO's <c>ping=&lt;ms&gt;</c>: the client asks to be pinged this rarely when nothing else is
    /// sent to it (a dashboard that can learn of a frozen server in a minute rather than in three
    /// seconds, and costs the server a sixtieth as much at rest). Never more often than the server's
    /// own <c>limits.pingInterval</c>, never less than every <see cref="MaxRequestedPing"/>; the idle
    /// timeout grows in the same proportion (the client's quiet PONGs follow from both). WELCOME says
    /// what was granted. False when the value is not a positive whole number.
    /// </summary>
    private bool TryRequestKeepAlive(ReadOnlySpan<byte> field)
    {
        if (!long.TryParse(field, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) || ms <= 0)
        {
            return false;
        }

        _askedPingTicks = TimeSpan.FromMilliseconds(Math.Min(ms, (long)MaxRequestedPing.TotalMilliseconds)).Ticks;
        return true;
    }

    /// <summary>
    /// This session's keep-alive: the server's limits, or the interval its HELLO asked for (at least
    /// the server's own) with the idle timeout scaled in the server's proportion (<see cref="TryRequestKeepAlive"/>).
    /// </summary>
    private (TimeSpan Ping, TimeSpan Idle) KeepAlive
    {
        get
        {
            var limits = _server.Options.Limits;
            if (_askedPingTicks <= limits.PingInterval.Ticks)
            {
                return (limits.PingInterval, limits.IdleTimeout);
            }

            var ping = TimeSpan.FromTicks(_askedPingTicks);
            return (ping, TimeSpan.FromTicks((long)(ping.Ticks * (limits.IdleTimeout.Ticks / (double)limits.PingInterval.Ticks))));
        }
    }

    private long _askedPingTicks; // HELLO's ping=, capped at MaxRequestedPing; 0: none asked

    /// <summary>WELCOME; to a route, with this process's life (<see cref="Routes.RouteManager.Life"/>).</summary>
    private byte[] RenderWelcome(ulong life = 0)
    {
        var o = _server.Options;
        return RttpServer.Render(w =>
        {
            RttpWriter.WriteRaw(w, "WELCOME 1"u8);
            RttpWriter.WriteField(w, "server"u8, o.Id);
            RttpWriter.WriteField(w, "session"u8, Id);
            RttpWriter.WriteField(w, "maxline"u8, o.Limits.MaxLineBytes);
            var (ping, idle) = KeepAlive;
            RttpWriter.WriteField(w, "ping"u8, (long)ping.TotalMilliseconds);
            RttpWriter.WriteField(w, "idle"u8, (long)idle.TotalMilliseconds);
            if (life != 0)
            {
                RttpWriter.WriteAscii(w, $" life={life:x}");
                if (o.Farm.StandbyCopies)
                {
                    RttpWriter.WriteRaw(w, " standby=1"u8); // this server keeps standby copies: the peer may send STANDBY
                }
            }
            else if (_stampsAsked)
            {
                RttpWriter.WriteRaw(w, " stamps=1"u8);
            }

            RttpWriter.WriteRaw(w, "\n"u8);
        });
    }

    /// <summary>Another server of the farm opens a route (see <c>Routes/RouteAuth.cs</c>).</summary>
    private void OnRouteHello(RttpFrame frame, string from)
    {
        var routes = _server.Routes;
        var problem = routes is null
            ? "this server takes no routes (no farm key, or routes are off)"
            : routes.Auth.Verify(from, _server.Options.Id, Field(frame, "ts"u8), Field(frame, "nonce"u8), Field(frame, "mac"u8));
        if (problem is not null)
        {
            SendError(RttpErrorCode.AuthFailed, problem);
            return;
        }

        IsRoute = true;
        RoutePeer = from;
        ClientName = "route:" + from;
        _permissions = RoutePermissions;
        Outbound.EnqueueControl(RenderWelcome(routes!.Life)); // no farm table: membership is the route's source
        var life = Field(frame, "life"u8);
        routes.OnInboundRoute(from, life is not null && ulong.TryParse(life, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var l) ? l : 0);
    }

    private static readonly Permissions RoutePermissions = new("route", ["/>"], ["/>"], systemReadable: true);

    private void OnSub(RttpFrame frame)
    {
        var max = _server.Options.Limits.MaxSubscriptionsPerConnection;
        var added = 0;
        for (var i = 0; i < frame.ArgCount; i++)
        {
            var subject = frame.Arg(i);
            var name = Encoding.UTF8.GetString(subject);
            if (_subscriptions.TryGetValue(name, out var subscribed))
            {
                if (IsRoute)
                {
                    subscribed.Resend(this); // a replica checking its copy: the current image again
                }

                continue; // already subscribed: the client has the image and every update
            }

            if (!_permissions!.CanSubscribe(name))
            {
                Outbound.EnqueueStatus(subject, SubjectStatus.Denied);
                continue;
            }

            if (_subscriptions.Count >= max && !IsRoute)
            {
                SendError(RttpErrorCode.TooManySubs, $"at most {max} subscriptions per connection", "@subject=" + name);
                break;
            }

            _subscriptions[name] = _server.Subjects.Subscribe(subject, this);
            added++;
        }

        _server.CountSubscriptions(added);
        Volatile.Write(ref _subscriptionCount, _subscriptions.Count);
    }

    private void OnUnsub(RttpFrame frame)
    {
        var removed = 0;
        for (var i = 0; i < frame.ArgCount; i++)
        {
            var name = Encoding.UTF8.GetString(frame.Arg(i));
            if (_subscriptions.Remove(name, out var record))
            {
                removed++;
                _server.Subjects.Unsubscribe(record, this);
            }
        }

        _server.CountSubscriptions(-removed);
        Volatile.Write(ref _subscriptionCount, _subscriptions.Count);
    }

    private void OnPub(RttpFrame frame, bool replace)
    {
        if (IsRoute)
        {
            // Counted for the route's ACK (sent once the lines read together are handled). One this
            // server passes on to the subject's owner holds the ACK back until that owner
            // acknowledges it: the sender keeps it meanwhile, and gives it to a new owner itself if
            // the owners change (rather than have it arrive there by two paths, out of order).
            var index = Interlocked.Increment(ref _routePublications);
            var routes = _server.Routes;
            if (routes is null)
            {
                return;
            }

            var passedOn = routes.OwnerOf(frame.Arg(0)) is not null;
            if (passedOn)
            {
                lock (_ackLock)
                {
                    (_pendingHops ??= []).Add(index);
                }
            }

            var outcome = routes.OnRoutedPublication(frame, RoutePeer!, new PubOrigin(this, null) { RouteIndex = index });
            if (outcome == PublishOutcome.TooLarge)
            {
                // Refused here, before the batch's ACK: the sender tells its publisher.
                HopRefused(index, "the subject's record would not fit in one line (maxline)", RttpErrorCode.TooLarge);
            }
            else if (outcome != PublishOutcome.Forwarded && passedOn)
            {
                HopAcknowledged(index); // applied here after all (or refused): nothing to wait for
            }

            return;
        }

        // A client's publication carries @ack at most: the other attributes (stamps, seeds, hops,
        // merge counts) are the servers' own, and one passed on to a subject's owner would be
        // believed there (a forged far-future stamp would outlive every later write).
        for (var i = 0; i < frame.MetaCount; i++)
        {
            if (!frame.MetaName(i).SequenceEqual("ack"u8))
            {
                SendError(RttpErrorCode.Syntax, $"@{Encoding.UTF8.GetString(frame.MetaName(i))} is not an attribute a client may send (only @ack): nothing published", $"@subject={Encoding.UTF8.GetString(frame.Arg(0))}");
                return;
            }
        }

        byte[]? ackId = null;
        if (frame.TryGetMeta("ack"u8, out var id))
        {
            if (id.IsEmpty || id.Length > MaxAckIdBytes || id.ContainsAnyExcept(AckIdBytes))
            {
                SendError(RttpErrorCode.Syntax, $"@ack ids are 1 to {MaxAckIdBytes} characters of A-Z a-z 0-9 _ . : -");
                return;
            }

            ackId = id.ToArray();
        }

        var subject = frame.Arg(0);
        Span<char> chars = stackalloc char[subject.Length];
        var n = Encoding.UTF8.GetChars(subject, chars);
        if (!_permissions!.CanPublish(chars[..n]))
        {
            var text = $"{_permissions.Principal} may not publish to {chars[..n]}";
            if (ackId is null)
            {
                SendError(RttpErrorCode.Denied, text);
            }
            else
            {
                Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteNack(w, ackId, RttpErrorCode.Denied, text)));
            }

            return;
        }

        var origin = new PubOrigin(this, ackId);
        Settle(origin, _server.Subjects.Publish(subject, frame, replace, origin: origin), subject);
    }

    /// <summary>Longest <c>@ack</c> id a client may give.</summary>
    public const int MaxAckIdBytes = 64;

    // An id comes back as ACK's (or NACK's) first token: no '=', no escapes.
    private static readonly System.Buffers.SearchValues<byte> AckIdBytes = System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"u8);

    /// <summary>
    /// A publication this route session took (its <paramref name="index"/>-th) will not be applied:
    /// <c>NACK index UNAVAILABLE text</c> on the route, before the route's ACK moves past it, so the
    /// server that sent it tells its publisher (a NACK, never an ACK).
    /// </summary>
    internal void HopRefused(long index, string text, RttpErrorCode code = RttpErrorCode.Unavailable)
    {
        if (Volatile.Read(ref _closing) == 0)
        {
            var id = Encoding.ASCII.GetBytes(index.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteNack(w, id, code, text)));
        }

        HopAcknowledged(index);
    }

    /// <summary>A publication this route session passed on was acknowledged by its owner (or refused, and the route told): the route's ACK may move past it.</summary>
    internal void HopAcknowledged(long index)
    {
        lock (_ackLock)
        {
            if (_pendingHops is null || !_pendingHops.Remove(index))
            {
                return;
            }
        }

        SendRouteAck();
    }

    /// <summary>Sends <c>ACK n</c> on a route if n moved: every publication up to n applied, or acknowledged by its owner.</summary>
    private void SendRouteAck()
    {
        string? ack = null;
        lock (_ackLock)
        {
            var count = Interlocked.Read(ref _routePublications);
            var upTo = _pendingHops is { Count: > 0 } pending ? Math.Min(count, pending.Min - 1) : count;
            if (upTo > _routeAcknowledged)
            {
                _routeAcknowledged = upTo;

                // It carries this server's clock: a peer that only forwards publications keeps its
                // stamps ahead of what this server applied (see RecordClock).
                ack = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"ACK {upTo} @ts={_server.Subjects.Clock.Peek()}\n");
            }
        }

        if (ack is not null && Volatile.Read(ref _closing) == 0)
        {
            Outbound.EnqueueControl(System.Text.Encoding.ASCII.GetBytes(ack));
        }
    }

    /// <summary>
    /// Tells a publisher the outcome where it is known here: applied (or superseded by newer writes)
    /// is acknowledged; forwarded waits for the owner's route acknowledgement; dropped was told
    /// already; too large is refused (<c>TOO_LARGE</c>).
    /// </summary>
    internal static void Settle(PubOrigin origin, PublishOutcome outcome, ReadOnlySpan<byte> subject)
    {
        if (outcome is PublishOutcome.TooLarge)
        {
            Reject(origin, subject, "the subject's record would not fit in one line (maxline): publish fewer or shorter fields, or PUBIMAGE to replace it", RttpErrorCode.TooLarge);
            return;
        }

        if (origin.RouteIndex != 0 && origin.Session is { } route)
        {
            if (outcome is not PublishOutcome.Forwarded)
            {
                route.HopAcknowledged(origin.RouteIndex);
            }

            return;
        }

        if (outcome is PublishOutcome.Applied or PublishOutcome.Superseded && origin is { Session: { } session, AckId: { } ackId })
        {
            session.Acknowledge(ackId);
        }
    }

    /// <summary>A publication sent with <c>@ack=id</c> was applied by the subject's owner.</summary>
    internal void Acknowledge(byte[] ackId)
    {
        if (Volatile.Read(ref _closing) == 0)
        {
            Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteAck(w, ackId)));
        }
    }

    /// <summary>
    /// A publication the farm will not apply: <c>NACK id UNAVAILABLE</c> when the publisher asked
    /// for an acknowledgement, <c>ERR UNAVAILABLE @subject=...</c> otherwise. Never silent.
    /// </summary>
    internal static void Reject(PubOrigin origin, ReadOnlySpan<byte> subject, string text, RttpErrorCode code = RttpErrorCode.Unavailable)
    {
        if (origin.RouteIndex != 0)
        {
            origin.Session?.HopRefused(origin.RouteIndex, text, code);
            return;
        }

        if (origin.Session is not { } session || Volatile.Read(ref session._closing) != 0)
        {
            return;
        }

        session._server.CountRejected();
        string? retry = code == RttpErrorCode.Unavailable ? "@after=1000" : null; // sent again as it is, a record too large stays too large
        if (origin.AckId is { } ackId)
        {
            session.Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteNack(w, ackId, code, text, retry)));
        }
        else
        {
            string?[] parts = [subject.IsEmpty ? null : "@subject=" + Encoding.UTF8.GetString(subject), retry];
            var meta = string.Join(' ', parts.Where(p => p is not null));
            session.Outbound.EnqueueControl(RttpServer.Render(w => RttpWriter.WriteError(w, code, text, meta.Length == 0 ? null : meta)));
        }
    }

    private static bool SpeaksVersion1(ReadOnlySpan<byte> versions)
    {
        foreach (var range in versions.Split((byte)','))
        {
            if (versions[range].SequenceEqual("1"u8))
            {
                return true;
            }
        }

        return false;
    }

    private static string Unescape(ReadOnlySpan<byte> value) => FieldEscaping.Unescape(value);

    /// <summary>A HELLO field, unescaped; null when absent.</summary>
    private static string? Field(RttpFrame frame, ReadOnlySpan<byte> name) => frame.TryGetField(name, out var v) ? Unescape(v) : null;
}
