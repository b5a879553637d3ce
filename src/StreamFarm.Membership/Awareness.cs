namespace StreamFarm.Membership;

/// <summary>
/// Local health (Lifeguard): missed acks and refuted suspicions of ourselves raise the score, which
/// stretches our own probe timeouts, so an overloaded member does not accuse healthy ones.
/// </summary>
internal sealed class Awareness(int max)
{
    public int Score { get; private set; }

    public void Apply(int delta) => Score = Math.Clamp(Score + delta, 0, max - 1);

    public TimeSpan Scale(TimeSpan timeout) => MembershipMath.ScaleByAwareness(timeout, Score);
}
