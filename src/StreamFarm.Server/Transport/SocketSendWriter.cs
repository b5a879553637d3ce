using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace StreamFarm.Server.Transport;

/// <summary>
/// The output of a plain-TCP RTTP session: the session's writer loop sends each batch on the socket
/// itself (one <c>send</c> per flush, from the thread that flushed), instead of handing it to
/// Kestrel's output pipe, whose sender then runs as another thread-pool work item. Kestrel still
/// owns the socket, reads it, and closes it: completing this writer completes Kestrel's output, so
/// the connection ends (FIN after everything sent) exactly as before.
/// </summary>
/// <remarks>
/// Written by hand because no library piece does this: <see cref="PipeWriter.Create(Stream, StreamPipeWriterOptions?)"/>
/// over a <see cref="NetworkStream"/> sends each 4 KiB segment with its own system call, where a
/// batch here is up to 64 KiB. One writer thread at a time (the session's writer loop), as a
/// <see cref="PipeWriter"/> requires. <see cref="CancelPendingFlush"/> does not abandon a send in
/// flight (half a line would be left on the wire): the flush completes once the kernel took the
/// bytes, and the caller's next write follows them.
/// </remarks>
internal sealed class SocketSendWriter(Socket socket, PipeWriter kestrelOutput) : PipeWriter
{
    private const int InitialBytes = 16 * 1024;
    private byte[] _buffer = [];
    private int _written;
    private bool _completed;

    public override void Advance(int bytes)
    {
        if ((uint)bytes > (uint)(_buffer.Length - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(bytes));
        }

        _written += bytes;
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Reserve(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        var need = _written + Math.Max(1, sizeHint);
        if (need <= _buffer.Length)
        {
            return;
        }

        var grown = ArrayPool<byte>.Shared.Rent(Math.Max(need, Math.Max(InitialBytes, _buffer.Length * 2)));
        _buffer.AsSpan(0, _written).CopyTo(grown);
        Return();
        _buffer = grown;
    }

    public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        var sent = 0;
        try
        {
            while (sent < _written)
            {
                sent += await socket.SendAsync(_buffer.AsMemory(sent, _written - sent), SocketFlags.None, cancellationToken);
            }
        }
        catch (SocketException ex)
        {
            throw new IOException($"send failed: {ex.SocketErrorCode}", ex);
        }
        finally
        {
            // What was sent is gone (an error leaves the connection unusable anyway), and the buffer
            // goes back to the pool: a connection holds one only while a batch is written and sent,
            // so an idle connection costs nothing here (issue 16's memory per idle connection).
            _written = 0;
            Return();
        }

        return new FlushResult(isCanceled: false, isCompleted: false);
    }

    public override void CancelPendingFlush()
    {
        // See the remarks: the send in flight completes; nothing to do.
    }

    public override void Complete(Exception? exception = null)
    {
        if (Release())
        {
            kestrelOutput.Complete(exception);
        }
    }

    public override ValueTask CompleteAsync(Exception? exception = null) =>
        Release() ? kestrelOutput.CompleteAsync(exception) : ValueTask.CompletedTask;

    /// <summary>Marks the writer completed and gives its buffer back; false if it was already.</summary>
    private bool Release()
    {
        if (_completed)
        {
            return false;
        }

        _completed = true;
        Return();
        return true;
    }

    private void Return()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
