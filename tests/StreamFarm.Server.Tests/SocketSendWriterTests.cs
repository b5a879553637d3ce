using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using StreamFarm.Server.Transport;

namespace StreamFarm.Server.Tests;

/// <summary>
/// The plain-TCP session's output (<see cref="SocketSendWriter"/>) over a real loopback socket pair:
/// every byte written arrives once and in order, across buffer growth and flushes larger than the
/// socket's buffers, and completing it completes the transport's own output (so Kestrel closes).
/// </summary>
public sealed class SocketSendWriterTests
{
    [Fact]
    public async Task WritesOfEverySize_ArriveInOrder_AndCompleteEndsTheTransportsOutput()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = 8192 };
        await sender.ConnectAsync(listener.LocalEndPoint!);
        using var receiver = await listener.AcceptAsync();

        var kestrelOutput = new Pipe();
        var writer = new SocketSendWriter(sender, kestrelOutput.Writer);

        // Lines of growing length (1 B to 40 KB), flushed in groups: some flushes far larger than
        // the 8 KiB send buffer, so sends complete in parts while the reader drains.
        var expected = new MemoryStream();
        var random = new Random(7);
        var reading = ReadAllAsync(receiver);
        for (var group = 0; group < 40; group++)
        {
            for (var i = 0; i < 1 + random.Next(20); i++)
            {
                var line = new byte[1 + random.Next(group * 1000 + 1)];
                random.NextBytes(line);
                writer.Write(line);
                expected.Write(line);
            }

            var result = await writer.FlushAsync();
            Assert.False(result.IsCanceled || result.IsCompleted);
        }

        await writer.CompleteAsync();
        var ended = await kestrelOutput.Reader.ReadAsync();
        Assert.True(ended.IsCompleted, "completing the session's output completes the transport's");
        Assert.Throws<ObjectDisposedException>(() => writer.GetSpan(1));

        sender.Shutdown(SocketShutdown.Send);
        var received = await reading;
        Assert.Equal(expected.Length, received.Length);
        Assert.True(expected.ToArray().AsSpan().SequenceEqual(received), "bytes arrived changed or out of order");
    }

    private static async Task<byte[]> ReadAllAsync(Socket socket)
    {
        var all = new MemoryStream();
        var buffer = new byte[16384];
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer);
            if (n == 0)
            {
                return all.ToArray();
            }

            all.Write(buffer, 0, n);
        }
    }
}
