using System.Net;
using System.Net.Sockets;
using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Tests;

/// <summary>
/// A server that refuses a connection writes one ERR line and closes at once, often before the
/// client's HELLO is out. The refusal's code must reach the client anyway: FarmClient obeys a
/// refusal (chooses another server) but retries an unreachable one, so a lost code turns "full" or
/// "draining" into "unreachable".
/// </summary>
public sealed class RttpConnectionRefusalTests
{
    [Fact]
    public async Task ServerWritesErrAndClosesBeforeHello_TheCodeStillReachesTheClient()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var refusing = Task.Run(async () =>
        {
            var err = Encoding.ASCII.GetBytes("ERR FULL @after=1000 server test is full\n");
            while (!stop.IsCancellationRequested)
            {
                using var socket = await listener.AcceptSocketAsync(stop.Token);
                await socket.SendAsync(err);

                // Closed at once, as a refusing server does (it does not wait for HELLO).
                socket.Shutdown(SocketShutdown.Both);
                socket.Close();
            }
        });

        try
        {
            var codes = new List<RttpErrorCode>();
            for (var i = 0; i < 200; i++)
            {
                var e = await Assert.ThrowsAsync<RttpConnectionException>(() => RttpConnection.ConnectAsync("127.0.0.1", port, new RttpConnectionOptions { ConnectTimeout = TimeSpan.FromSeconds(30) }));
                codes.Add(e.Code);
                Assert.True(e.Code == RttpErrorCode.Full, $"attempt {i}: {e.Message}");
            }

            Assert.All(codes, c => Assert.Equal(RttpErrorCode.Full, c));
        }
        finally
        {
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => refusing);
        }
    }
}
