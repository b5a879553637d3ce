using System.Collections.Concurrent;

namespace StreamFarm.Server.Subjects;

/// <summary>
/// One shared byte array per field name for every record of the process: the subjects of a feed
/// have the same few field names (<c>bid</c>, <c>ask</c>, ...), and a copy per field of each record
/// was 32 B or more of every field at a million subjects (docs/benchmarks.md, "Subjects per
/// server"). Bounded: at most <see cref="MaxNames"/> names of at most <see cref="MaxLength"/>
/// bytes are shared; past that (a client inventing names) each record keeps its own copy, which
/// costs memory as before and nothing else. The arrays are never written to.
/// </summary>
internal static class FieldNames
{
    public const int MaxNames = 4096;
    public const int MaxLength = 64;

    private static readonly ConcurrentDictionary<byte[], byte[]> Shared = new(Comparer.Instance);

    /// <summary>The shared array holding <paramref name="name"/>, or a copy of its own if the pool is full or the name long.</summary>
    public static byte[] Intern(ReadOnlySpan<byte> name)
    {
        if (name.Length > MaxLength)
        {
            return name.ToArray();
        }

        if (Shared.GetAlternateLookup<ReadOnlySpan<byte>>().TryGetValue(name, out var shared))
        {
            return shared;
        }

        var copy = name.ToArray();
        if (Volatile.Read(ref _count) >= MaxNames)
        {
            return copy;
        }

        if (Shared.TryAdd(copy, copy))
        {
            Interlocked.Increment(ref _count); // counted here: the dictionary's Count takes every one of its locks
            return copy;
        }

        return Shared.TryGetValue(copy, out var added) ? added : copy; // another thread added it first
    }

    /// <summary>Names shared now (for tests).</summary>
    internal static int Count => Volatile.Read(ref _count);

    private static int _count;

    // Written here because the runtime has no byte-content comparer with a span lookup. The hash is
    // HashCode's, seeded per process, so names chosen to collide cannot be precomputed.
    private sealed class Comparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly Comparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var h = default(HashCode);
            h.AddBytes(alternate);
            return h.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
