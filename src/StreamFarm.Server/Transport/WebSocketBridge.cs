using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using StreamFarm.Protocol;

namespace StreamFarm.Server.Transport;

/// <summary>
/// Carries RTTP over a WebSocket by presenting it to the session as a duplex pipe: text messages in
/// become the input stream, and the session's output goes out as text messages that each end on a
/// line boundary. Both pipes pause at a threshold, so memory per connection stays bounded.
/// </summary>
internal sealed class WebSocketBridge : IDuplexPipe
{
    private readonly WebSocket _socket;
    private readonly TimeProvider _time;
    private readonly Pipe _in;
    private readonly Pipe _out;

    public WebSocketBridge(WebSocket socket, int maxLineBytes, TimeProvider time)
    {
        _socket = socket;
        _time = time;
        var threshold = Math.Max(64 * 1024, maxLineBytes * 2L);
        _in = new Pipe(new PipeOptions(pauseWriterThreshold: threshold, resumeWriterThreshold: threshold / 2, useSynchronizationContext: false));
        _out = new Pipe(new PipeOptions(pauseWriterThreshold: threshold, resumeWriterThreshold: threshold / 2, useSynchronizationContext: false));
    }

    public PipeReader Input => _in.Reader;

    public PipeWriter Output => _out.Writer;

    /// <summary>
    /// Runs the session over this bridge until both directions are done. The session returns what
    /// is left of its closing grace period: the last lines go out within it, or the connection is
    /// cut with <paramref name="abort"/> (a peer that does not read would hold a send forever);
    /// zero cuts it at once.
    /// </summary>
    public async Task RunAsync(Func<IDuplexPipe, CancellationToken, Task<TimeSpan>> session, Action abort, CancellationToken aborted)
    {
        var receive = ReceiveLoopAsync(aborted);
        var send = SendLoopAsync(aborted);
        var graceLeft = await session(this, aborted);
        if (graceLeft <= TimeSpan.Zero || !await CompletesWithinAsync(send, graceLeft))
        {
            // The grace period is over (or the session was cut for not keeping up): no close
            // handshake with a peer that does not read.
            abort();
            await send;
            await receive;
            return;
        }

        await send;
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", aborted);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // peer already gone
        }

        // Wait for the peer's close frame before dropping the connection, so the last lines (an ERR,
        // a BYE) are not lost to a reset; a peer that never answers is cut after a grace period.
        if (!await CompletesWithinAsync(receive, TimeSpan.FromSeconds(2)))
        {
            abort();
        }

        await receive;
    }

    private async Task<bool> CompletesWithinAsync(Task task, TimeSpan time)
    {
        if (task.IsCompleted || time <= TimeSpan.Zero)
        {
            return task.IsCompleted;
        }

        using var cancel = new CancellationTokenSource();
        var delay = Task.Delay(time, _time, cancel.Token);
        var first = await Task.WhenAny(task, delay);
        await cancel.CancelAsync();
        return first == task;
    }

    private async Task ReceiveLoopAsync(CancellationToken aborted)
    {
        var writer = _in.Writer;
        Exception? failure = null;
        byte[]? scratch = null;
        var last = (byte)'\n'; // the last byte of the message so far
        try
        {
            while (true)
            {
                var memory = failure is null ? writer.GetMemory(4096) : (scratch ??= new byte[4096]);
                var result = await _socket.ReceiveAsync(memory, aborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                if (failure is not null)
                {
                    continue; // after a protocol error, only wait for the close handshake
                }

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    failure = new RttpProtocolException(RttpErrorCode.Binary, "RTTP over WebSocket uses text messages only");
                    await writer.CompleteAsync(failure);
                    continue;
                }

                if (result.Count > 0)
                {
                    last = memory.Span[result.Count - 1];
                }

                writer.Advance(result.Count);
                if (result.EndOfMessage && last != (byte)'\n')
                {
                    // A message holds whole lines: its end ends its last line, LF or not (protocol.md 1).
                    writer.Write("\n"u8);
                    last = (byte)'\n';
                }

                var flush = await writer.FlushAsync(aborted);
                if (flush.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // connection lost: the session sees the end of input
        }

        if (failure is null)
        {
            await writer.CompleteAsync();
        }
    }

    private async Task SendLoopAsync(CancellationToken aborted)
    {
        var reader = _out.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(aborted);
                var buffer = result.Buffer;
                var lastLf = buffer.PositionOf((byte)'\n') is null ? (SequencePosition?)null : LastLineEnd(buffer);
                if (lastLf is { } end)
                {
                    var chunk = buffer.Slice(0, end);
                    await SendAsync(chunk, aborted);
                    reader.AdvanceTo(end, buffer.End);
                }
                else
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // connection lost, or cut after the grace period
        }

        await reader.CompleteAsync();
    }

    private static SequencePosition LastLineEnd(in ReadOnlySequence<byte> buffer)
    {
        // Position just after the last LF: scan segments from the end.
        SequencePosition? found = null;
        var offset = 0L;
        foreach (var segment in buffer)
        {
            var i = segment.Span.LastIndexOf((byte)'\n');
            if (i >= 0)
            {
                found = buffer.GetPosition(offset + i + 1);
            }

            offset += segment.Length;
        }

        return found!.Value;
    }

    private async ValueTask SendAsync(ReadOnlySequence<byte> chunk, CancellationToken aborted)
    {
        // One text message and one frame for the whole chunk. Sent segment by segment (4 KiB each),
        // every frame was a write and a flush of its own, and a busy subscriber's lines went out at
        // about a third of the rate TCP reached (3,000 against 10,000 a second) until its queue
        // filled and it was cut as a slow consumer. (Slicing per segment at the position TryGet
        // leaves after the last one also threw ArgumentOutOfRangeException.)
        if (chunk.IsSingleSegment)
        {
            await _socket.SendAsync(chunk.First, WebSocketMessageType.Text, endOfMessage: true, aborted);
            return;
        }

        var length = checked((int)chunk.Length);
        var copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            chunk.CopyTo(copy);
            await _socket.SendAsync(copy.AsMemory(0, length), WebSocketMessageType.Text, endOfMessage: true, aborted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }
}
