using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Net.Sockets;

namespace StreamFarm.Faults.Tests.Hosts;

/// <summary>
/// Sockets of this process inside a network namespace the test made (<c>ip netns add</c>): a thread
/// of its own enters the namespace once (<c>setns</c>, which moves only the calling thread) and makes
/// the sockets asked for. A socket belongs to the namespace it was made in for its whole life,
/// whichever thread uses it later, so the test's clients, in-process, connect from the clients'
/// host as its processes do.
/// </summary>
internal sealed partial class NetNamespace : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private const int ReadOnlyCloseOnExec = 0x80000; // O_RDONLY | O_CLOEXEC
    private readonly BlockingCollection<(AddressFamily Family, SocketType Type, ProtocolType Protocol, TaskCompletionSource<Socket> Made)> _requests = [];
    private readonly Thread _thread;

    public NetNamespace(string name)
    {
        Name = name;
        _thread = new Thread(Serve) { IsBackground = true, Name = $"netns {name}" };
        _thread.Start();
    }

    public string Name { get; }

    /// <summary>A new socket inside the namespace.</summary>
    public Socket Socket(AddressFamily family, SocketType type, ProtocolType protocol)
    {
        var made = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests.Add((family, type, protocol, made));
        return made.Task.GetAwaiter().GetResult();
    }

    public Socket Tcp() => Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    private void Serve()
    {
        Exception? failed = null;
        var fd = Open($"/var/run/netns/{Name}", ReadOnlyCloseOnExec);
        if (fd < 0)
        {
            failed = new InvalidOperationException($"cannot open /var/run/netns/{Name}: errno {Marshal.GetLastPInvokeError()}");
        }
        else
        {
            if (SetNs(fd, CloneNewNet) != 0)
            {
                failed = new InvalidOperationException($"setns into {Name}: errno {Marshal.GetLastPInvokeError()}");
            }

            _ = Close(fd);
        }

        foreach (var (family, type, protocol, made) in _requests.GetConsumingEnumerable())
        {
            try
            {
                made.SetResult(failed is null ? new Socket(family, type, protocol) : throw failed);
            }
            catch (Exception e)
            {
                made.SetException(e);
            }
        }
    }

    public void Dispose()
    {
        _requests.CompleteAdding();
        _thread.Join();
        _requests.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int type);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
