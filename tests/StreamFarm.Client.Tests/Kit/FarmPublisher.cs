using StreamFarm.Tests.Shared;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>The loopback farm's publisher: one subject to every server, <c>n</c> counting up every 50 ms (<see cref="EveryServerPublisher"/>).</summary>
internal static class FarmPublisher
{
    public static Task<EveryServerPublisher> StartAsync(LoopbackFarm farm, string subject) =>
        EveryServerPublisher.StartAsync(farm.Ids.Select(id => (id, farm.AddressOf(id).ToString(), LoopbackFarm.Port)), subject, TimeSpan.FromMilliseconds(50));
}
