using StreamFarm.Protocol;

namespace StreamFarm.Client.Selection;

/// <summary>What a selector is given besides the candidates.</summary>
/// <param name="TableVersion">The farm table's version, for the explanation.</param>
/// <param name="Random">The client's seeded source of chance.</param>
public sealed record SelectionContext(long TableVersion, Random Random);

/// <summary>A chosen server and why it was chosen (for logs and <c>-v</c>).</summary>
/// <param name="Server">The chosen server.</param>
/// <param name="Reason">For example <c>s2: group eu, 812/2000 users, table v37 (fewest users)</c>.</param>
public sealed record ServerChoice(FarmMember Server, string Reason);

/// <summary>
/// Chooses the server that will serve the client (claims 4, 6, 7, 19, 20). Selectors compose:
/// filters (status, group) narrow the candidates, a chooser (random, fewest users, power of two,
/// weighted) picks one. Built with <see cref="Selectors"/>.
/// </summary>
public interface IServerSelector
{
    /// <summary>Picks one of <paramref name="candidates"/>, or null when none is acceptable.</summary>
    ServerChoice? Select(IReadOnlyList<FarmMember> candidates, SelectionContext context);
}
