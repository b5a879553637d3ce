using StreamFarm.Server.Tests.Kit;

namespace StreamFarm.Server.Tests;

/// <summary>Servers with membership on: the FARM table and its deltas come from the membership layer.</summary>
public sealed class FarmMembershipTests
{
    private static readonly string Key = Convert.ToBase64String(new byte[32]);

    [Fact]
    public async Task SecondServerJoins_ClientOfFirstGetsServerDelta_AndMoveOnStop()
    {
        await using var first = await TestNode.StartAsync(o =>
        {
            o.Id = "a";
            o.Farm.GossipKeys = [Key];
            o.Farm.GossipPort = 0;
            o.Farm.Preset = "local";
        });
        await using var client = await first.ConnectAsync();
        var second = await TestNode.StartAsync(o =>
        {
            o.Id = "b";
            o.Group = "eu";
            o.Farm.GossipKeys = [Key];
            o.Farm.GossipPort = 0;
            o.Farm.Preset = "local";
            o.Farm.Seeds = [first.GossipAddress!];
        });

        string? line;
        do
        {
            line = await client.ReadLineAsync();
        }
        while (line is not null && !(line.StartsWith("SERVER ", StringComparison.Ordinal) && line.Contains("id=b ", StringComparison.Ordinal) && line.Contains("state=active", StringComparison.Ordinal)));

        Assert.NotNull(line);
        Assert.Contains("group=eu", line, StringComparison.Ordinal);
        Assert.Contains($"tcp=127.0.0.1:{second.TcpEndPoint.Port}", line, StringComparison.Ordinal);
        Assert.Equal(2, first.Server.Farm.Current.Members.Count);

        // With another active server in the farm, a stopping server sends its clients there.
        await using var onSecond = await second.ConnectAsync();
        var stopping = first.StopAsync();
        Assert.Equal("MOVE SHUTDOWN", (await client.ReadToEndAsync()).Last());
        await stopping;

        // The remaining server sees the first one leave.
        do
        {
            line = await onSecond.ReadLineAsync();
        }
        while (line is not null && !line.StartsWith("FARMDEL ", StringComparison.Ordinal) && !(line.StartsWith("SERVER ", StringComparison.Ordinal) && line.Contains("id=a ", StringComparison.Ordinal) && line.Contains("state=leaving", StringComparison.Ordinal)));

        Assert.NotNull(line);
        await second.DisposeAsync();
    }
}
