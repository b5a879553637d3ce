using System.Runtime.InteropServices;

namespace StreamFarm.Dns;

/// <summary>
/// Linux <c>recvmmsg</c>/<c>sendmmsg</c>: up to <see cref="Batch"/> datagrams per system call each
/// way. .NET has no batched datagram I/O, and under load most of a DNS server's time is the
/// kernel's (one receive and one send call per query, each taking the socket's lock); Knot reads
/// and writes in batches the same way. Written by hand because no library offers it; the structs
/// are the LP64 layout (64-bit Linux, x64 and arm64), and <see cref="IsSupported"/> is false
/// elsewhere, where the server keeps its one-datagram loop.
/// </summary>
internal sealed unsafe partial class UdpBatch : IDisposable
{
    public const int Batch = 32;

    /// <summary>Room for one query: a datagram longer than this is dropped (MSG_TRUNC); a real DNS query is far shorter.</summary>
    public const int QueryBytes = 4096;

    /// <summary>Room for one answer as the responder builds it (whole, then truncated for UDP).</summary>
    public const int ResponseBytes = 65536;

    private const int NameBytes = 128; // sockaddr_storage
    private const int MsgWaitForOne = 0x10000;
    private const int MsgTrunc = 0x20;
    private const int EAgain = 11;
    private const int EIntr = 4;

    private readonly MMsgHdr* _recv;
    private readonly MMsgHdr* _send;
    private readonly IoVec* _recvIov;
    private readonly IoVec* _sendIov;
    private readonly byte* _names;
    private readonly byte* _queries;
    private readonly byte* _responses;

    public UdpBatch()
    {
        _recv = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(MMsgHdr)));
        _send = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(MMsgHdr)));
        _recvIov = (IoVec*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(IoVec)));
        _sendIov = (IoVec*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(IoVec)));
        _names = (byte*)NativeMemory.AllocZeroed(Batch * NameBytes);
        _queries = (byte*)NativeMemory.Alloc(Batch * QueryBytes);
        _responses = (byte*)NativeMemory.Alloc((nuint)Batch * ResponseBytes);
        for (var i = 0; i < Batch; i++)
        {
            _recvIov[i] = new IoVec { Base = (nint)(_queries + (i * QueryBytes)), Length = QueryBytes };
            _recv[i].Hdr.Iov = (nint)(_recvIov + i);
            _recv[i].Hdr.IovLength = 1;
            _recv[i].Hdr.Name = (nint)(_names + (i * NameBytes));
            _send[i].Hdr.Iov = (nint)(_sendIov + i);
            _send[i].Hdr.IovLength = 1;
        }
    }

    /// <summary>Whether batched I/O is used here (64-bit Linux, unless <c>STREAMFARM_DNS_BATCH=0</c>).</summary>
    public static bool IsSupported => OperatingSystem.IsLinux() && Environment.Is64BitProcess && sizeof(MMsgHdr) == 64
        && Environment.GetEnvironmentVariable("STREAMFARM_DNS_BATCH") != "0";

    /// <summary>
    /// Waits for datagrams (at least one, up to <see cref="Batch"/>); returns how many, 0 after the
    /// socket's receive timeout or an interruption, -1 when the socket is unusable.
    /// </summary>
    public int Receive(int fd)
    {
        for (var i = 0; i < Batch; i++)
        {
            _recv[i].Hdr.NameLength = NameBytes;
            _recv[i].Hdr.Flags = 0;
            _recv[i].Length = 0;
        }

        var n = RecvMMsg(fd, _recv, Batch, MsgWaitForOne, 0);
        if (n >= 0)
        {
            return n;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno is EAgain or EIntr ? 0 : -1;
    }

    /// <summary>The <paramref name="i"/>-th datagram received, or empty when it did not fit (dropped).</summary>
    public ReadOnlySpan<byte> Query(int i) => (_recv[i].Hdr.Flags & MsgTrunc) != 0 ? default : new ReadOnlySpan<byte>(_queries + (i * QueryBytes), (int)Math.Min(_recv[i].Length, QueryBytes));

    /// <summary>The sender of the <paramref name="i"/>-th datagram (its sockaddr).</summary>
    public ReadOnlySpan<byte> Sender(int i) => new(_names + (i * NameBytes), (int)Math.Min(_recv[i].Hdr.NameLength, NameBytes));

    /// <summary>Where the <paramref name="slot"/>-th answer of this batch is written.</summary>
    public Span<byte> Response(int slot) => new(_responses + ((long)slot * ResponseBytes), ResponseBytes);

    /// <summary>Queues the <paramref name="slot"/>-th answer (<paramref name="length"/> bytes of <see cref="Response"/>) to the sender of datagram <paramref name="i"/>.</summary>
    public void Answer(int slot, int i, int length)
    {
        _sendIov[slot] = new IoVec { Base = (nint)(_responses + ((long)slot * ResponseBytes)), Length = (nuint)length };
        _send[slot].Hdr.Name = _recv[i].Hdr.Name;
        _send[slot].Hdr.NameLength = _recv[i].Hdr.NameLength;
    }

    /// <summary>Sends the first <paramref name="count"/> queued answers; returns how many left. One that fails (its client gone) is skipped.</summary>
    public int Send(int fd, int count)
    {
        var sent = 0;
        var at = 0;
        while (at < count)
        {
            var n = SendMMsg(fd, _send + at, (uint)(count - at), 0);
            if (n > 0)
            {
                sent += n;
                at += n;
            }
            else if (n < 0 && Marshal.GetLastPInvokeError() == EIntr)
            {
                continue;
            }
            else
            {
                at++; // this one failed (ICMP error pending, and the like): the rest still go
            }
        }

        return sent;
    }

    public void Dispose()
    {
        NativeMemory.Free(_recv);
        NativeMemory.Free(_send);
        NativeMemory.Free(_recvIov);
        NativeMemory.Free(_sendIov);
        NativeMemory.Free(_names);
        NativeMemory.Free(_queries);
        NativeMemory.Free(_responses);
    }

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    private static partial int RecvMMsg(int fd, MMsgHdr* messages, uint count, int flags, nint timeout);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    private static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public nint Name;
        public uint NameLength;
        public nint Iov;
        public nuint IovLength;
        public nint Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MMsgHdr
    {
        public MsgHdr Hdr;
        public uint Length;
    }
}
