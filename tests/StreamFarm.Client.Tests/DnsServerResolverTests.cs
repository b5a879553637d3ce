using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using StreamFarm.Client.Discovery;

namespace StreamFarm.Client.Tests;

/// <summary>
/// <see cref="DnsServerResolver"/> (the client's <c>--dns IP:PORT</c>) pointed at a recursive
/// resolver that the farm's zone is delegated to, as unbound is in the multi-host fault scenario: a
/// resolver refuses a query without RD for a name it has not cached. The client sent RD=0 and got
/// nothing ("has no address (no healthy server?)") until something else had warmed the cache.
/// </summary>
public sealed class DnsServerResolverTests
{
    [Fact]
    public async Task ResolvesThroughARecursiveResolver_ThatRefusesQueriesWithoutRecursion()
    {
        using var resolver = new FakeRecursiveResolver(IPAddress.Parse("10.77.0.3"));
        var client = new DnsServerResolver(resolver.EndPoint, TimeSpan.FromSeconds(2));

        var addresses = await client.ResolveAsync("stream.farm.test", CancellationToken.None);

        Assert.Equal([IPAddress.Parse("10.77.0.3")], addresses);
        Assert.True(resolver.Queries > 0);
        Assert.Equal(0, resolver.RefusedForNoRecursion);
    }

    /// <summary>
    /// A UDP DNS server that behaves as a recursive resolver with an empty cache: REFUSED for a query
    /// without RD, an A record for one with RD.
    /// </summary>
    private sealed class FakeRecursiveResolver : IDisposable
    {
        private readonly UdpClient _udp = new(new IPEndPoint(IPAddress.Loopback, 0));
        private readonly IPAddress _answer;
        private readonly CancellationTokenSource _stop = new();
        private int _queries;
        private int _refused;

        public FakeRecursiveResolver(IPAddress answer)
        {
            _answer = answer;
            _ = Task.Run(ServeAsync);
        }

        public IPEndPoint EndPoint => (IPEndPoint)_udp.Client.LocalEndPoint!;

        public int Queries => Volatile.Read(ref _queries);

        public int RefusedForNoRecursion => Volatile.Read(ref _refused);

        private async Task ServeAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                UdpReceiveResult r;
                try
                {
                    r = await _udp.ReceiveAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
                {
                    return;
                }

                Interlocked.Increment(ref _queries);
                var q = r.Buffer;
                var questionEnd = 12;
                while (q[questionEnd] != 0)
                {
                    questionEnd += q[questionEnd] + 1;
                }

                questionEnd += 5; // root label, QTYPE, QCLASS
                var qtype = BinaryPrimitives.ReadUInt16BigEndian(q.AsSpan(questionEnd - 4));
                var rd = (q[2] & 0x01) != 0;
                if (!rd)
                {
                    Interlocked.Increment(ref _refused);
                }

                var answers = rd && qtype == 1 ? 1 : 0;
                var response = new byte[questionEnd + (answers * 16)];
                q.AsSpan(0, questionEnd).CopyTo(response);
                response[2] = (byte)(0x80 | (q[2] & 0x01)); // QR, RD echoed
                response[3] = (byte)(0x80 | (rd ? 0 : 5));  // RA; REFUSED without RD
                BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(6), (ushort)answers);
                BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(8), 0);
                BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(10), 0);
                if (answers == 1)
                {
                    var a = response.AsSpan(questionEnd);
                    BinaryPrimitives.WriteUInt16BigEndian(a, 0xC00C); // the question's name
                    BinaryPrimitives.WriteUInt16BigEndian(a[2..], 1);   // A
                    BinaryPrimitives.WriteUInt16BigEndian(a[4..], 1);   // IN
                    BinaryPrimitives.WriteUInt32BigEndian(a[6..], 5);   // TTL
                    BinaryPrimitives.WriteUInt16BigEndian(a[10..], 4);
                    _answer.GetAddressBytes().CopyTo(a[12..]);
                }

                await _udp.SendAsync(response, r.RemoteEndPoint);
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _udp.Dispose();
            _stop.Dispose();
        }
    }
}
