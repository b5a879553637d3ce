using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>A one-query DNS client over UDP, to check that a server is up and answers what we expect.</summary>
internal static class DnsProbe
{
    /// <summary>Rcode, answer count and size of the response, or null when nothing came back within <paramref name="timeout"/>.</summary>
    public static async Task<(int Rcode, int Answers, int Additional, int Bytes)?> AskAsync(IPEndPoint server, string name, ushort type, TimeSpan timeout, CancellationToken cancel)
    {
        var query = new List<byte> { 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            query.Add((byte)label.Length);
            query.AddRange(Encoding.ASCII.GetBytes(label));
        }

        query.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        using var udp = new UdpClient(server.AddressFamily);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        limit.CancelAfter(timeout);
        try
        {
            await udp.SendAsync(query.ToArray(), server, limit.Token);
            var r = await udp.ReceiveAsync(limit.Token);
            var m = r.Buffer;
            if (m.Length < 12 || m[0] != 0x12 || m[1] != 0x34)
            {
                return null;
            }

            return (m[3] & 0xF, BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(6)), BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(10)), m.Length);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    public static string TypeName(ushort type) => type switch
    {
        1 => "A",
        33 => "SRV",
        _ => type.ToString(CultureInfo.InvariantCulture),
    };

    public static string RcodeName(int rcode) => rcode switch
    {
        0 => "NOERROR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        5 => "REFUSED",
        _ => $"rcode {rcode}",
    };
}
