using System.Collections.Concurrent;

namespace StreamFarm.Server;

internal static class ConcurrentDictionaryExtensions
{
    /// <summary>
    /// The values, enumerated in place: not a snapshot. <c>ConcurrentDictionary.Values</c> takes every
    /// lock of the dictionary and copies it: with a million subjects every walk of the table (a
    /// route coming up, a catalog, a change of owners) held up every lookup and creation of the
    /// process and fed the garbage collector, and the sessions were copied on every accepted
    /// connection and every tick. A value added or removed during the walk may or may not be seen,
    /// as with a snapshot taken a moment earlier or later.
    /// </summary>
    public static IEnumerable<TValue> ValuesInPlace<TKey, TValue>(this ConcurrentDictionary<TKey, TValue> dictionary)
        where TKey : notnull
    {
        foreach (var (_, value) in dictionary)
        {
            yield return value;
        }
    }
}
