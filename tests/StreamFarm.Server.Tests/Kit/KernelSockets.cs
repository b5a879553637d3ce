using System.Globalization;
using System.Net;

namespace StreamFarm.Server.Tests.Kit;

/// <summary>
/// The kernel's view of this process's network namespace (Linux <c>/proc/net/tcp</c>): whether a
/// TCP connection between two ports still exists, whatever the process thinks.
/// </summary>
internal static class KernelSockets
{
    /// <summary>The state (as in <c>/proc/net/tcp</c>: "01" ESTABLISHED, ...) of the IPv4 socket with these ends, or null when there is none.</summary>
    public static string? StateOf(IPEndPoint local, IPEndPoint remote)
    {
        var want = (Hex(local), Hex(remote));
        foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length > 3 && p[1] == want.Item1 && p[2] == want.Item2)
            {
                return p[3];
            }
        }

        return null;
    }

    /// <summary>The whole <c>/proc/net/tcp</c> line of the IPv4 socket with these ends, or null.</summary>
    public static string? LineOf(IPEndPoint local, IPEndPoint remote)
    {
        var want = (Hex(local), Hex(remote));
        return File.ReadLines("/proc/net/tcp").Skip(1).FirstOrDefault(line =>
        {
            var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return p.Length > 9 && p[1] == want.Item1 && p[2] == want.Item2;
        });
    }

    /// <summary>Bytes the kernel holds for the socket with these ends, sent but not acknowledged or not sent yet (<c>tx_queue</c>); 0 when there is none.</summary>
    public static long SendQueueOf(IPEndPoint local, IPEndPoint remote) =>
        LineOf(local, remote) is { } line ? long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[4].Split(':')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture) : 0;

    /// <summary>
    /// The server has let go of its side of a client's connection: the kernel has no such socket, or
    /// only an orphan (inode 0: no process holds a descriptor for it) with nothing left to send,
    /// which the kernel frees on its own (FIN_WAIT2 ends after <c>tcp_fin_timeout</c>).
    /// </summary>
    public static bool ServerSideGone(IPEndPoint server, IPEndPoint client)
    {
        if (LineOf(server, client) is not { } line)
        {
            return true;
        }

        var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var sendQueue = p[4].Split(':')[0];
        return p[9] == "0" && sendQueue.All(c => c == '0');
    }

    private static string Hex(IPEndPoint e)
    {
        var b = e.Address.MapToIPv4().GetAddressBytes();
        var address = BitConverter.ToUInt32(b, 0); // /proc prints the address in host order (little-endian here)
        return address.ToString("X8", CultureInfo.InvariantCulture) + ":" + e.Port.ToString("X4", CultureInfo.InvariantCulture);
    }
}
