using System.Globalization;
using StreamFarm.Client;

namespace StreamFarm.Tests.Shared;

/// <summary>
/// Test kit shared by the client and command tests (linked into both projects). Publishes one
/// subject to every server of a farm (one connection each), field <c>n</c> counting up at a fixed
/// pace, so that the stream goes on whichever server a test stops or kills (routes carry each
/// publication to the subject's owner: every value arrives once per server, in one order). A server
/// that fails or stops is dropped.
/// </summary>
internal sealed class EveryServerPublisher : IAsyncDisposable
{
    private readonly Dictionary<string, RttpConnection> _connections;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _subject;
    private readonly TimeSpan _interval;
    private readonly Task _loop;

    private EveryServerPublisher(Dictionary<string, RttpConnection> connections, string subject, TimeSpan interval)
    {
        _connections = connections;
        _subject = subject;
        _interval = interval;
        _loop = LoopAsync();
    }

    /// <summary>Connects to every server and publishes the first value (n=0) everywhere, confirmed, then counts up every <paramref name="interval"/>.</summary>
    public static async Task<EveryServerPublisher> StartAsync(IEnumerable<(string Id, string Host, int Port)> servers, string subject, TimeSpan interval)
    {
        var connections = new Dictionary<string, RttpConnection>();
        try
        {
            foreach (var (id, host, port) in servers)
            {
                var c = await RttpConnection.ConnectAsync(host, port, new RttpConnectionOptions { ClientName = "test-publisher" });
                connections[id] = c;
                await c.PublishAsync(subject, [KeyValuePair.Create("n", "0")]);
                await c.PingAsync();
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

        return new EveryServerPublisher(connections, subject, interval);
    }

    private async Task LoopAsync()
    {
        var n = 0;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(_interval, _stop.Token);
                var value = (++n).ToString(CultureInfo.InvariantCulture);
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

                        await c.PublishAsync(_subject, [KeyValuePair.Create("n", value)], cancel: timeout.Token);
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
