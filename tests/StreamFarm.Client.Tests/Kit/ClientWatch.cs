using StreamFarm.Client.Selection;

namespace StreamFarm.Client.Tests.Kit;

/// <summary>A <see cref="FarmClient"/> whose steps and messages are collected as they come, for assertions.</summary>
internal sealed class ClientWatch : IAsyncDisposable
{
    private readonly List<ConnectionStep> _steps = [];
    private readonly List<FarmMessage> _messages = [];
    private readonly Task _readSteps;
    private readonly Task _readMessages;

    public ClientWatch(FarmClientOptions options)
    {
        Client = new FarmClient(options);
        _readSteps = ReadStepsAsync();
        _readMessages = ReadMessagesAsync();
    }

    public FarmClient Client { get; }

    public IReadOnlyList<ConnectionStep> Steps
    {
        get
        {
            lock (_steps)
            {
                return [.. _steps];
            }
        }
    }

    public IReadOnlyList<FarmMessage> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    /// <summary>Options of a client of <paramref name="farm"/>: its DNS, its port, a seeded chance.</summary>
    public static FarmClientOptions Options(LoopbackFarm farm, IServerSelector selector, int seed, Discovery.IServiceResolver? resolver = null) => new()
    {
        ServiceName = LoopbackFarm.ServiceName,
        Port = LoopbackFarm.Port,
        Resolver = resolver ?? new Discovery.DnsServerResolver(farm.DnsEndPoint),
        Selector = selector,
        Random = new Random(seed),
        Connection = new RttpConnectionOptions { ClientName = "client-test" },
    };

    /// <summary>Subscribes, starts, and waits (generously) for the first connect.</summary>
    public async Task StartAsync(params string[] subjects)
    {
        await Client.SubscribeAsync(subjects);
        using var patience = new CancellationTokenSource(LoopbackFarm.Patience);
        await Client.StartAsync(patience.Token);
    }

    /// <summary>Every step so far, one per line, for failure messages.</summary>
    public string Describe()
    {
        var messages = Messages;
        var last = messages.Count > 0 ? messages[^1] : null;
        return string.Join('\n', Steps.Select(s => $"  {s.Kind}: {s.Text}")) + $"\n  ({messages.Count} messages; last: {last?.Message.Kind} from {last?.Server})";
    }

    /// <summary>Waits until the steps from <paramref name="from"/> on contain <paramref name="kinds"/> in this order (others may come between).</summary>
    public Task<IReadOnlyList<ConnectionStep>> StepsInOrderAsync(int from, params (StepKind Kind, Func<string, bool>? Text)[] kinds) =>
        Eventually.FoundAsync<IReadOnlyList<ConnectionStep>>(() => Subsequence(Steps.Skip(from).ToList(), kinds), () => $"steps {string.Join(" > ", kinds.Select(k => k.Kind))} in order; got:\n{Describe()}");

    /// <summary>Waits until a message after index <paramref name="from"/> matches.</summary>
    public Task<FarmMessage> MessageAsync(int from, Func<FarmMessage, bool> match, string what) =>
        Eventually.FoundAsync(() => Messages.Skip(from).FirstOrDefault(match), () => $"{what}; steps:\n{Describe()}");

    /// <summary>Waits until <paramref name="count"/> updates of <paramref name="server"/> arrived after index <paramref name="from"/>.</summary>
    public Task<IReadOnlyList<FarmMessage>> UpdatesAsync(int from, string server, int count) =>
        Eventually.FoundAsync<IReadOnlyList<FarmMessage>>(
            () => Messages.Skip(from).Where(m => m.Server == server && m.Message.Kind == RttpMessageKind.Update).ToList() is { } u && u.Count >= count ? u : null,
            () => $"{count} updates from {server}; steps:\n{Describe()}");

    private static List<ConnectionStep>? Subsequence(List<ConnectionStep> steps, (StepKind Kind, Func<string, bool>? Text)[] kinds)
    {
        var found = new List<ConnectionStep>();
        var i = 0;
        foreach (var s in steps)
        {
            if (i < kinds.Length && s.Kind == kinds[i].Kind && (kinds[i].Text?.Invoke(s.Text) ?? true))
            {
                found.Add(s);
                i++;
            }
        }

        return i == kinds.Length ? found : null;
    }

    private async Task ReadStepsAsync()
    {
        await foreach (var s in Client.Steps.ReadAllAsync())
        {
            lock (_steps)
            {
                _steps.Add(s);
            }
        }
    }

    private async Task ReadMessagesAsync()
    {
        try
        {
            await foreach (var m in Client.Messages.ReadAllAsync())
            {
                lock (_messages)
                {
                    _messages.Add(m);
                }
            }
        }
        catch (RttpConnectionException)
        {
            // the client gave up; the steps say why
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Task.WhenAll(_readSteps, _readMessages);
    }
}
