namespace StreamFarm.Faults.Tests.Farm;

/// <summary>Polls an outcome of real processes with a generous deadline; errors of a peer not up yet count as "not yet".</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan patience)
    {
        if (!await TryUntilAsync(condition, patience))
        {
            throw new TimeoutException($"not reached within {patience.TotalSeconds} s: {what}");
        }
    }

    /// <summary>True as soon as the condition holds; false when the patience runs out.</summary>
    public static async Task<bool> TryUntilAsync(Func<Task<bool>> condition, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                // not up yet
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(100);
        }
    }
}
