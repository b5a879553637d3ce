using System.Text;
using StreamFarm.Protocol;

namespace StreamFarm.Client;

/// <summary>
/// A message of a pooled subscription (<see cref="FarmClient.SubscribePooledAsync"/>): an image,
/// an update or a status, its field values as UTF-8 bytes (unescaped) in a buffer the subscription
/// reuses. The application owns it until it calls <see cref="Dispose"/>, which gives the buffer
/// back for a later message: dispose every message (<c>using var m = ...</c>), and copy out what
/// must outlive it (<see cref="GetString"/>, <see cref="ToSubjectMessage"/>). After
/// <see cref="Dispose"/> every member throws <see cref="ObjectDisposedException"/> (also through a
/// copy of this struct); spans and memory taken before it are not checked: read after the dispose,
/// they show the bytes of whichever later message reuses the buffer. A message never disposed is
/// only a lost reuse (the garbage collector takes it).
/// </summary>
public readonly struct PooledSubjectMessage : IDisposable
{
    private readonly SubjectData? _data;
    private readonly int _version;

    internal PooledSubjectMessage(SubjectData data)
    {
        _data = data;
        _version = data.Version;
    }

    /// <summary><see cref="RttpMessageKind.Image"/>, <see cref="RttpMessageKind.Update"/> or <see cref="RttpMessageKind.Status"/>.</summary>
    public RttpMessageKind Kind => Data.Kind;

    /// <summary>The subject.</summary>
    public string Subject => Data.Subject;

    /// <summary>The id of the server it came from.</summary>
    public string Server => Data.Server;

    /// <summary>The record's history (image, update).</summary>
    public ulong Epoch => Data.Epoch;

    /// <summary>The record's sequence number (image, update).</summary>
    public ulong Seq => Data.Seq;

    /// <summary>How many updates an update stands for (more than 1 when the server or the client conflated).</summary>
    public int Merged => Data.Merged;

    /// <summary>An image after a move: whether it resumed the stream, skipped updates, or began a new history (as <see cref="SubjectImage.Continuity"/>).</summary>
    public Continuity Continuity => Data.Continuity;

    /// <summary>The subscription's state (status messages).</summary>
    public SubjectStatus Status => Data.Status;

    /// <summary>The fields (every field of an image, the changed ones of an update).</summary>
    public int FieldCount => Data.Count;

    /// <summary>The name of field <paramref name="i"/> (a string shared by every message: no allocation).</summary>
    public string FieldName(int i) => Data.Name(Check(i));

    /// <summary>The value of field <paramref name="i"/>, unescaped UTF-8; valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> FieldValue(int i) => Data.Value(Check(i));

    /// <summary>As <see cref="FieldValue"/>, as memory (for an <c>await</c> in between); valid until <see cref="Dispose"/>.</summary>
    public ReadOnlyMemory<byte> FieldValueMemory(int i) => Data.ValueMemory(Check(i));

    /// <summary>The value of the field named <paramref name="name"/>; false when this message does not carry it.</summary>
    public bool TryGetValue(string name, out ReadOnlySpan<byte> value)
    {
        var data = Data;
        var i = data.IndexOf(name);
        value = i < 0 ? default : data.Value(i);
        return i >= 0;
    }

    /// <summary>The value of a field as a string (allocates), or null when this message does not carry it.</summary>
    public string? GetString(string name) => TryGetValue(name, out var value) ? Encoding.UTF8.GetString(value) : null;

    /// <summary>A copy as the typed message <see cref="FarmClient.SubscribeAsync(string, CancellationToken)"/> yields (allocates; it outlives <see cref="Dispose"/>).</summary>
    public SubjectMessage ToSubjectMessage() => Data.ToSubjectMessage();

    /// <summary>Gives the buffer back to the subscription for a later message. Once; later calls (also through a copy) do nothing.</summary>
    public void Dispose()
    {
        if (_data is { } data && data.Version == _version)
        {
            data.Return();
        }
    }

    private SubjectData Data =>
        _data is { } data && data.Version == _version ? data : throw new ObjectDisposedException(nameof(PooledSubjectMessage), "the message was disposed: its buffer belongs to a later message");

    private int Check(int i)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(i);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, Data.Count);
        return i;
    }
}
