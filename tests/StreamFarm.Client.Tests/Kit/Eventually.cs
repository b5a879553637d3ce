namespace StreamFarm.Client.Tests.Kit;

/// <summary>Polls for an outcome with a generous deadline; never asserts on how fast it came.</summary>
internal static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, Func<string> what)
    {
        var deadline = DateTime.UtcNow + LoopbackFarm.Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not reached within {LoopbackFarm.Patience.TotalSeconds} s: {what()}");
            }

            await Task.Delay(25);
        }
    }

    public static async Task<T> FoundAsync<T>(Func<T?> probe, Func<string> what)
        where T : class
    {
        T? found = null;
        await TrueAsync(() => (found = probe()) is not null, what);
        return found!;
    }
}
