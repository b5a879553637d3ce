namespace StreamFarm.Cli.Tests;

/// <summary>Polls an outcome of real processes with a generous deadline; errors of a peer not up yet count as "not yet".</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or DnsClient.DnsResponseException or OperationCanceledException)
            {
                // not up yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"not reached within {patience.TotalSeconds} s: {what}");
            }

            await Task.Delay(100);
        }
    }
}
