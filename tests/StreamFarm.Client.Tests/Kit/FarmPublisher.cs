using System.Globalization;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>
/// Publishes one subject to every server of a farm (one connection each), field <c>n</c> counting
/// up every 50 ms, so that the stream goes on whichever server a test stops (routes carry each
/// publication to the subject's owner: every value arrives once per server, in one order). A
/// server that fails or stops is dropped.
/// </summary>
internal sealed class FarmPublisher : IAsyncDisposable
{
    private readonly Dictionary<string, RttpConnection> _connections;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _n;

    private FarmPublisher(Dictionary<string, RttpConnection> connections, string subject)
    {
        _connections = connections;
        Subject = subject;
        _loop = LoopAsync();
    }

    public string Subject { get; }

    /// <summary>Connects to every server and publishes the first value everywhere (confirmed), a few ms apart.</summary>
    public static async Task<FarmPublisher> StartAsync(LoopbackFarm farm, string subject)
    {
        var connections = new Dictionary<string, RttpConnection>();
        try
        {
            foreach (var id in farm.Ids)
            {
                var c = await RttpConnection.ConnectAsync(farm.AddressOf(id).ToString(), LoopbackFarm.Port, new RttpConnectionOptions { ClientName = "test-publisher" });
                connections[id] = c;
                await c.PublishAsync(subject, [KeyValuePair.Create("n", "0")]);
                await c.PingAsync();

                await Task.Delay(5);
            }
        }
        catch
        {
            foreach (var c in connections.Values)
            {
                await c.DisposeAsync();
            }

            throw;
        }

        return new FarmPublisher(connections, subject);
    }

    private async Task LoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(50, _stop.Token);
                var n = Interlocked.Increment(ref _n).ToString(CultureInfo.InvariantCulture);
                foreach (var (id, c) in _connections.ToList())
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    timeout.CancelAfter(TimeSpan.FromSeconds(2));
                    try
                    {
                        if (c.Completion.IsCompleted)
                        {
                            throw new RttpConnectionException("closed");
                        }

                        await c.PublishAsync(Subject, [KeyValuePair.Create("n", n)], cancel: timeout.Token);
                    }
                    catch (Exception e) when (e is RttpConnectionException or OperationCanceledException or IOException or ObjectDisposedException)
                    {
                        if (_stop.IsCancellationRequested)
                        {
                            return;
                        }

                        _connections.Remove(id);
                        await c.DisposeAsync();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        foreach (var c in _connections.Values)
        {
            await c.DisposeAsync();
        }

        _stop.Dispose();
    }
}
