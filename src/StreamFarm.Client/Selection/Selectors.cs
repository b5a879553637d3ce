using System.Globalization;
using StreamFarm.Protocol;

namespace StreamFarm.Client.Selection;

/// <summary>
/// The selection policies, composable: <c>Selectors.PowerOfTwoChoices().PreferGroup("eu").ActiveOnly()</c>
/// filters to active, alive servers, prefers group eu (spilling over when it has none), then samples
/// two and takes the less loaded.
/// </summary>
public static class Selectors
{
    /// <summary>Uniformly at random (claims 7 and 19).</summary>
    public static IServerSelector Random() => new Chooser("random", (c, ctx) => c[ctx.Random.Next(c.Count)]);

    /// <summary>The fewest users relative to capacity (claim 4); ties broken at random.</summary>
    public static IServerSelector FewestUsers() => new Chooser("fewest users", (c, ctx) =>
    {
        var min = c.Min(Load);
        var best = c.Where(m => Load(m) == min).ToList();
        return best[ctx.Random.Next(best.Count)];
    });

    /// <summary>
    /// Power of two choices: sample two, take the less loaded. Stays balanced when many clients act
    /// on the same (slightly stale) table, where "fewest users" would send them all to one server.
    /// </summary>
    public static IServerSelector PowerOfTwoChoices() => new Chooser("power of two choices", (c, ctx) =>
    {
        var a = c[ctx.Random.Next(c.Count)];
        var b = c[ctx.Random.Next(c.Count)];
        return Load(b) < Load(a) ? b : a;
    });

    /// <summary>At random, weighted by free capacity.</summary>
    public static IServerSelector Weighted() => new Chooser("weighted by free capacity", (c, ctx) =>
    {
        var weights = c.Select(m => (double)Math.Max(1, m.Capacity - m.Users)).ToArray();
        var r = ctx.Random.NextDouble() * weights.Sum();
        for (var i = 0; i < c.Count; i++)
        {
            r -= weights[i];
            if (r < 0)
            {
                return c[i];
            }
        }

        return c[^1];
    });

    /// <summary>Only active, alive servers (claim 20): never joining, draining, leaving, suspect or dead.</summary>
    public static IServerSelector ActiveOnly(this IServerSelector inner) =>
        new Filter(inner, c => [.. c.Where(m => m.State == "active" && m.Liveness == "alive")], spill: false, "active");

    /// <summary>Servers of <paramref name="group"/> while it has any; the others otherwise (claim 6).</summary>
    public static IServerSelector PreferGroup(this IServerSelector inner, string? group) =>
        group is null ? inner : new Filter(inner, c => [.. c.Where(m => m.Group == group)], spill: true, $"group {group}");

    /// <summary>The default: active servers, the preferred group if any, power of two choices.</summary>
    public static IServerSelector Default(string? preferredGroup = null) => PowerOfTwoChoices().PreferGroup(preferredGroup).ActiveOnly();

    /// <summary>A policy by name, as the command line takes it: random, fewest, p2c, weighted.</summary>
    public static IServerSelector Parse(string name, string? group) => (name.ToLowerInvariant() switch
    {
        "random" => Random(),
        "fewest" or "fewest-users" => FewestUsers(),
        "weighted" => Weighted(),
        "p2c" or "power-of-two" => PowerOfTwoChoices(),
        _ => throw new ArgumentException($"unknown selection policy '{name}' (random, fewest, p2c, weighted)"),
    }).PreferGroup(group).ActiveOnly();

    internal static double Load(FarmMember m) => (double)m.Users / Math.Max(1, m.Capacity);

    internal static string Describe(FarmMember m, long version) =>
        string.Create(CultureInfo.InvariantCulture, $"{m.Id}: group {m.Group}, {m.Users}/{m.Capacity} users, table v{version}");

    private sealed class Chooser(string name, Func<IReadOnlyList<FarmMember>, SelectionContext, FarmMember> pick) : IServerSelector
    {
        public ServerChoice? Select(IReadOnlyList<FarmMember> candidates, SelectionContext context)
        {
            if (candidates.Count == 0)
            {
                return null;
            }

            var m = pick(candidates, context);
            return new ServerChoice(m, $"{Describe(m, context.TableVersion)} ({name} of {candidates.Count})");
        }
    }

    private sealed class Filter(IServerSelector inner, Func<IReadOnlyList<FarmMember>, List<FarmMember>> keep, bool spill, string what) : IServerSelector
    {
        public ServerChoice? Select(IReadOnlyList<FarmMember> candidates, SelectionContext context)
        {
            var kept = keep(candidates);
            if (kept.Count > 0 && inner.Select(kept, context) is { } c)
            {
                return c with { Reason = $"{c.Reason}; {what}" };
            }

            // A preferred group spills over both when it has no server and when the inner filters
            // accept none of its servers (e.g. PreferGroup outside ActiveOnly, the group all dead).
            return spill && inner.Select(candidates, context) is { } s ? s with { Reason = $"{s.Reason}; no {what} server, spilled over" } : null;
        }
    }
}
