using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.Dns.Tests;

/// <summary><see cref="DnsTcpTable"/>'s decisions, without traffic: who is taken, who is refused, who gives way.</summary>
public sealed class DnsTcpTableTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void TryAdd_OverThePerClientLimit_IsRefusedAndOtherClientsAreTaken()
    {
        var table = new DnsTcpTable(max: 100, perClient: 3);

        var mine = Enumerable.Range(0, 5).Select(i => table.TryAdd(Connection("127.0.0.2"), out var _)).ToList();

        Assert.Equal([true, true, true, false, false], mine);
        Assert.True(table.TryAdd(Connection("127.0.0.3"), out var evicted));
        Assert.Null(evicted);
        Assert.Equal(4, table.Count);
        Assert.Equal(2, table.RefusedPerClient);
    }

    [Fact]
    public void TryAdd_Ipv6ClientsOfOneSlash64_ShareOneLimit()
    {
        var table = new DnsTcpTable(max: 100, perClient: 2);

        Assert.True(table.TryAdd(Connection("2001:db8:1:2::1"), out _));
        Assert.True(table.TryAdd(Connection("2001:db8:1:2::ffff"), out _));
        Assert.False(table.TryAdd(Connection("2001:db8:1:2:abcd::1"), out _));
        Assert.True(table.TryAdd(Connection("2001:db8:1:3::1"), out _));
    }

    [Fact]
    public void TryAdd_Ipv4MappedAddress_CountsAsItsIpv4Address()
    {
        var table = new DnsTcpTable(max: 100, perClient: 1);

        Assert.True(table.TryAdd(Connection("192.0.2.7"), out _));
        Assert.False(table.TryAdd(Connection("::ffff:192.0.2.7"), out _));
    }

    [Fact]
    public void TryAdd_FullTable_AnIdleConnectionOfTheBiggestClientGivesWay()
    {
        var table = new DnsTcpTable(max: 5, perClient: 3);
        var small = Connection("127.0.0.2");
        var bigOldest = Connection("127.0.0.3");
        _time.Advance(TimeSpan.FromSeconds(1));
        var big = new[] { Connection("127.0.0.3"), Connection("127.0.0.3") };
        var other = Connection("127.0.0.4");
        foreach (var c in new[] { small, bigOldest, big[0], big[1], other })
        {
            Assert.True(table.TryAdd(c, out _));
        }

        Assert.True(table.TryAdd(Connection("127.0.0.9"), out var evicted));

        Assert.Same(bigOldest, evicted);
        Assert.False(bigOldest.InTable);
        Assert.Equal(5, table.Count);
        Assert.Equal(1, table.Evicted);
        table.Remove(bigOldest); // its serving loop ends later: removing it again changes nothing
        Assert.Equal(5, table.Count);
    }

    [Fact]
    public void TryAdd_FullTableOfBusyConnections_IsRefused()
    {
        var table = new DnsTcpTable(max: 2, perClient: 2);
        var a = Connection("127.0.0.2");
        var b = Connection("127.0.0.3");
        Assert.True(table.TryAdd(a, out _));
        Assert.True(table.TryAdd(b, out _));
        a.Busy();
        b.Busy();

        Assert.False(table.TryAdd(Connection("127.0.0.4"), out var evicted));

        Assert.Null(evicted);
        Assert.Equal(1, table.RefusedFull);
        b.Answered(); // idle again: it may give way
        Assert.True(table.TryAdd(Connection("127.0.0.4"), out evicted));
        Assert.Same(b, evicted);
    }

    [Fact]
    public void Remove_LastConnectionOfAClient_FreesItsShare()
    {
        var table = new DnsTcpTable(max: 10, perClient: 1);
        var first = Connection("127.0.0.2");
        Assert.True(table.TryAdd(first, out _));
        Assert.False(table.TryAdd(Connection("127.0.0.2"), out _));

        table.Remove(first);

        Assert.True(table.TryAdd(Connection("127.0.0.2"), out _));
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public void Connection_DeadlinePassesWithoutAWholeQuery_IsClosed()
    {
        var c = Connection("127.0.0.2");

        _time.Advance(TimeSpan.FromSeconds(2.9));
        Assert.False(c.Closing.IsCancellationRequested);
        c.Received(); // a fresh deadline
        _time.Advance(TimeSpan.FromSeconds(2.9));
        Assert.False(c.Closing.IsCancellationRequested);
        _time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.True(c.Closing.IsCancellationRequested);
    }

    private DnsTcpConnection Connection(string client) =>
        new(new Socket(SocketType.Stream, ProtocolType.Tcp), ClientKey.Of(IPAddress.Parse(client)), TimeSpan.FromSeconds(3), _time, CancellationToken.None);
}
