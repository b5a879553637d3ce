using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StreamFarm.Client;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a <see cref="FarmClient"/> as the application's <see cref="IFarmClient"/> (one per container).</summary>
public static class StreamFarmClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IFarmClient"/> (and <see cref="FarmClient"/>) as a singleton built from
    /// <see cref="FarmClientSettings"/>, with the container's <see cref="ILoggerFactory"/> and
    /// <see cref="TimeProvider"/> when it has them. The client starts on <c>StartAsync</c> or on its
    /// first stream subscription, and is disposed with the container.
    /// </summary>
    public static IServiceCollection AddStreamFarmClient(this IServiceCollection services, Action<FarmClientSettings> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<FarmClientSettings>().Configure(configure);
        return AddClient(services);
    }

    /// <summary>As <see cref="AddStreamFarmClient(IServiceCollection, Action{FarmClientSettings})"/>, the settings bound from a configuration section.</summary>
    public static IServiceCollection AddStreamFarmClient(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<FarmClientSettings>().Bind(section);
        return AddClient(services);
    }

    private static IServiceCollection AddClient(IServiceCollection services)
    {
        services.TryAddSingleton(sp => new FarmClient(sp.GetRequiredService<IOptions<FarmClientSettings>>().Value.ToOptions(sp.GetService<ILoggerFactory>(), sp.GetService<TimeProvider>())));
        services.TryAddSingleton<IFarmClient>(sp => sp.GetRequiredService<FarmClient>());
        return services;
    }
}
