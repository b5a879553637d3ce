namespace StreamFarm.Server.Tests.Kit;

/// <summary>Waits for an outcome with a generous deadline (a loaded 2-core machine is slow, not wrong).</summary>
internal static class Eventually
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static async Task TrueAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not reached within {Patience.TotalSeconds:0} s: {what}");
            }

            await Task.Delay(20);
        }
    }
}
