namespace StreamFarm.Client;

/// <summary>
/// The optional standby (<see cref="FarmClientOptions.Standby"/>): a second connection to another
/// server the selector chose from the serving server's table. Warm: HELLO done, nothing subscribed.
/// Hot: subscribed to the client's subjects too; its images and updates are kept as one record per
/// subject and never delivered. After a loss the connect loop takes it over: the application gets
/// each kept record as an image (labelled resumed, gap or fresh like any image after a move), then
/// the standby's live stream.
/// </summary>
public sealed partial class FarmClient
{
    private static readonly TimeSpan StandbyCheck = TimeSpan.FromMilliseconds(100);
    private readonly Lock _standbyLock = new();
    private Task _standbyLoop = Task.CompletedTask;
    private Standby? _standby;

    /// <summary>The id of the server of the standby connection, if there is one now.</summary>
    public string? StandbyServerId
    {
        get
        {
            lock (_standbyLock)
            {
                return _standby?.Connection.ServerId;
            }
        }
    }

    /// <summary>Opens a standby when there is none, drops one that ended, serves already, or was lost, and keeps a hot one's subscriptions in step.</summary>
    private async Task KeepStandbyAsync()
    {
        var cancel = _stop.Token;
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                await Task.Delay(StandbyCheck, _options.Connection.Time, cancel);
                var serving = Volatile.Read(ref _connection);
                Standby? current;
                Standby? dropped = null;
                lock (_standbyLock)
                {
                    current = _standby;
                    if (current is not null && (current.Connection.HasEnded || current.Connection.ServerId == serving?.ServerId || IsSuspected(current.Connection.ServerId)))
                    {
                        dropped = current;
                        current = _standby = null;
                    }
                }

                if (dropped is not null)
                {
                    await dropped.StopReadingAsync();
                    await dropped.Connection.CloseAsync("standby no longer needed");
                }

                if (current is not null)
                {
                    await current.FollowAsync(SubjectsNow(), cancel);
                    continue;
                }

                if (serving is null)
                {
                    continue;
                }

                var choice = Choose(serving.Farm, new HashSet<string>(StringComparer.Ordinal) { serving.ServerId });
                if (choice is null || choice.Server.Id == serving.ServerId || !TryParse(AddressOf(choice.Server), out var host, out var port))
                {
                    continue;
                }

                RttpConnection connection;
                try
                {
                    connection = await _factory.ConnectAsync(host, port, _ownConnection, cancel);
                }
                catch (RttpConnectionException)
                {
                    continue; // tried again at the next check
                }

                Unsuspect(connection.ServerId, $"{host}:{port}");

                var standby = new Standby(connection, _options.Standby == StandbyMode.Hot, cancel);
                await standby.FollowAsync(SubjectsNow(), cancel);
                lock (_standbyLock)
                {
                    _standby = standby;
                }

                Step(StepKind.StandbyReady, $"{(_options.Standby == StandbyMode.Hot ? "hot" : "warm")} standby on {connection.ServerId} at {connection.Endpoint} ({choice.Reason})");
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // stopping
        }
    }

    private List<string> SubjectsNow()
    {
        lock (_lock)
        {
            return [.. _subjects];
        }
    }

    /// <summary>The standby, no longer read by its own loop, if it is still open; null otherwise.</summary>
    private async Task<Standby?> TakeStandbyAsync()
    {
        Standby? standby;
        lock (_standbyLock)
        {
            standby = _standby;
            _standby = null;
        }

        if (standby is null)
        {
            return null;
        }

        await standby.StopReadingAsync();
        if (standby.Connection.HasEnded || IsSuspected(standby.Connection.ServerId))
        {
            await standby.Connection.DisposeAsync();
            return null;
        }

        return standby;
    }

    /// <summary>Makes the standby the serving connection: each kept record as an image, the rest subscribed now.</summary>
    private async Task PromoteAsync(Standby standby, CancellationToken cancel)
    {
        var connection = standby.Connection;
        var subjects = Adopt(connection);
        var missing = new List<string>();
        var images = 0;
        var behind = 0;
        foreach (var subject in subjects)
        {
            if (standby.Records.TryGetValue(subject, out var record) && !CatchUpIfBehind(subject, record))
            {
                images++;
                await DeliverAsync(Label(record, connection.ServerId), cancel);
            }
            else if (record is not null)
            {
                behind++;
            }
            else if (!standby.Subscribed.Contains(subject))
            {
                missing.Add(subject);
            }
            else
            {
                // Subscribed, but its image not read yet (still on the connection, or on its way
                // from the owner): what comes is let through only past what the application saw.
                CatchUpIfBehind(subject, null);
            }

            // The standby's server said the subject's data may be out of date (its owner or route
            // is gone) and has not said OK since: the application hears it with the image, not later.
            if (standby.Stale.TryGetValue(subject, out var stale))
            {
                await DeliverAsync(Label(stale, connection.ServerId), cancel);
            }
        }

        try
        {
            if (missing.Count > 0)
            {
                await connection.SubscribeAsync(missing, cancel);
            }

            Step(StepKind.Subscribed, $"{subjects.Count} subscription(s) on {connection.ServerId} ({images} image(s) from the standby's copy, {(behind > 0 ? $"{behind} copy(ies) behind what the application saw, withheld until the stream passes it, " : "")}{missing.Count} subscribed now)");
        }
        catch (Exception ex) when (ex is RttpConnectionException or IOException or ObjectDisposedException)
        {
            Step(StepKind.Failed, $"subscribing on {connection.ServerId}: {ex.Message}");
        }

        Served(connection, moved: false);
        _firstConnect.TrySetResult();
        PumpAll();
    }

    /// <summary>
    /// Subjects whose standby copy was behind what the application had already seen when the
    /// standby took over, with that position: the standby's stream is let through only from the
    /// first message past it (Protocol I2: a value never goes back).
    /// </summary>
    private readonly Dictionary<string, (ulong Epoch, ulong Seq)> _catchingUp = new(StringComparer.Ordinal);

    /// <summary>
    /// True when <paramref name="record"/> (the standby's copy; null: none read yet) is behind what the
    /// application saw of <paramref name="subject"/>: an older epoch, or the same epoch at a lower
    /// sequence number. The standby's server has the copy of a replica, which can lag the server the
    /// client was on (one more hop from the owner); shown as an image, it would move values back.
    /// Then the subject catches up on the standby's stream instead (<see cref="StillBehind"/>).
    /// </summary>
    private bool CatchUpIfBehind(string subject, RttpMessage? record)
    {
        lock (_lock)
        {
            if (_positions.TryGetValue(subject, out var seen) && (record is null || record.Epoch < seen.Epoch || (record.Epoch == seen.Epoch && record.Seq < seen.Seq)))
            {
                _catchingUp[subject] = seen;
                return true;
            }

            return false;
        }
    }

    /// <summary>
    /// For a subject catching up (<see cref="CatchUpIfBehind"/>): true for a message the application
    /// has seen already (an older epoch, an update at or below the position seen, an image below
    /// it), to be dropped; the first message past it ends the catch-up. Within one epoch the stream
    /// carries every update in order (I1), so the first update let through follows the last one seen.
    /// </summary>
    private bool StillBehind(RttpMessage m)
    {
        lock (_lock)
        {
            return StillBehindLocked(m.Kind, m.Subject, m.Epoch, m.Seq);
        }
    }

    /// <summary>As <see cref="StillBehind(RttpMessage)"/>, under <c>_lock</c>.</summary>
    private bool StillBehindLocked(RttpMessageKind kind, string subject, ulong epoch, ulong seq)
    {
        if (kind is not (RttpMessageKind.Image or RttpMessageKind.Update) || _catchingUp.Count == 0 || !_catchingUp.TryGetValue(subject, out var seen))
        {
            return false;
        }

        if (epoch < seen.Epoch || (epoch == seen.Epoch && (kind == RttpMessageKind.Update ? seq <= seen.Seq : seq < seen.Seq)))
        {
            return true;
        }

        _catchingUp.Remove(subject);
        if (kind == RttpMessageKind.Update)
        {
            _resubscribed.Remove(subject); // the stream goes on where the application was: no image to label
        }

        return false;
    }

    /// <summary>A standby connection and the loop that reads it: a hot one keeps each subject's record, a warm one drops everything.</summary>
    private sealed class Standby
    {
        private readonly CancellationTokenSource _reading;
        private readonly Task _reader;
        private readonly bool _hot;

        public Standby(RttpConnection connection, bool hot, CancellationToken stop)
        {
            Connection = connection;
            _hot = hot;
            _reading = CancellationTokenSource.CreateLinkedTokenSource(stop);
            _reader = ReadAsync();
        }

        public RttpConnection Connection { get; }

        /// <summary>Each subject's record as the standby server sent it (an image with the latest fields); only read once the loop stopped.</summary>
        public Dictionary<string, RttpMessage> Records { get; } = new(StringComparer.Ordinal);

        /// <summary>Each subject whose last status from the standby server (since its last image) is STALE, with that status line; only read once the loop stopped.</summary>
        public Dictionary<string, RttpMessage> Stale { get; } = new(StringComparer.Ordinal);

        /// <summary>Subjects subscribed on the standby (hot).</summary>
        public HashSet<string> Subscribed { get; } = new(StringComparer.Ordinal);

        /// <summary>Hot: subscribes to subjects new since, ends those given up. Only from the standby loop.</summary>
        public async Task FollowAsync(List<string> subjects, CancellationToken cancel)
        {
            if (!_hot)
            {
                return;
            }

            var added = subjects.Where(s => !Subscribed.Contains(s)).ToList();
            var removed = Subscribed.Where(s => !subjects.Contains(s)).ToList();
            try
            {
                if (added.Count > 0)
                {
                    await Connection.SubscribeAsync(added, cancel);
                }

                if (removed.Count > 0)
                {
                    await Connection.UnsubscribeAsync(removed, cancel);
                }
            }
            catch (RttpConnectionException)
            {
                return; // ended: dropped at the next check
            }

            lock (Records)
            {
                Subscribed.UnionWith(added);
                Subscribed.ExceptWith(removed);
                foreach (var s in removed)
                {
                    Records.Remove(s);
                    Stale.Remove(s);
                }
            }
        }

        public async Task StopReadingAsync()
        {
            await _reading.CancelAsync();
            await _reader;
            _reading.Dispose();
        }

        private async Task ReadAsync()
        {
            try
            {
                await foreach (var m in Connection.Messages.ReadAllAsync(_reading.Token))
                {
                    Connection.HandedOn();
                    if (_hot && m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status)
                    {
                        lock (Records)
                        {
                            Keep(m);
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or RttpConnectionException or IOException)
            {
                // taken over, or ended (HasEnded says so)
            }
        }

        private void Keep(RttpMessage m)
        {
            if (m.Kind == RttpMessageKind.Status)
            {
                // STALE holds until the server says OK or sends an image (a new owner's history).
                if (m.Status == StreamFarm.Protocol.SubjectStatus.Stale)
                {
                    Stale[m.Subject] = m;
                }
                else if (m.Status == StreamFarm.Protocol.SubjectStatus.Ok)
                {
                    Stale.Remove(m.Subject);
                }
            }
            else if (m.Kind == RttpMessageKind.Image)
            {
                Records[m.Subject] = m with { Merged = 1 };
                Stale.Remove(m.Subject);
            }
            else if (Records.TryGetValue(m.Subject, out var record) && Conflation.Instance.Merge(record, m) is { } merged)
            {
                Records[m.Subject] = merged with { Merged = 1 };
            }
        }
    }
}
