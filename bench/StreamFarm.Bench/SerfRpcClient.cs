using System.Net;
using System.Net.Sockets;

namespace StreamFarm.Bench;

/// <summary>
/// A client of serf's RPC (the protocol the <c>serf</c> command itself speaks to an agent: MessagePack
/// request header + body, response header + body, over TCP), for the three calls the benchmark needs:
/// handshake, members (what <c>serf members</c> prints) and tags (what <c>serf tags -set</c> does).
/// Polling through it costs a round trip instead of starting a <c>serf</c> process. Calls are serialised.
/// </summary>
internal sealed class SerfRpcClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;
    private ulong _seq;

    private SerfRpcClient(Socket socket) => _socket = socket;

    /// <summary>Connects and performs the handshake (IPC version 1).</summary>
    public static async Task<SerfRpcClient> ConnectAsync(IPEndPoint endpoint, CancellationToken cancel)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var client = new SerfRpcClient(socket);
        try
        {
            await socket.ConnectAsync(endpoint, cancel);
            await client.CallAsync("handshake", body => Map(body, ("Version", 1UL)), expectBody: false, cancel);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>The agent's member list: name, status (alive, leaving, left, failed) and tags.</summary>
    public async Task<List<SerfMember>> MembersAsync(CancellationToken cancel)
    {
        var body = await CallAsync("members", null, expectBody: true, cancel) as Dictionary<string, object?>;
        var members = new List<SerfMember>();
        if (body?.GetValueOrDefault("Members") is not List<object?> list)
        {
            throw new InvalidDataException("serf rpc: members response without Members");
        }

        foreach (var item in list.OfType<Dictionary<string, object?>>())
        {
            var tags = new Dictionary<string, string>(StringComparer.Ordinal);
            if (item.GetValueOrDefault("Tags") is Dictionary<string, object?> t)
            {
                foreach (var (k, v) in t)
                {
                    tags[k] = v as string ?? (v is byte[] b ? System.Text.Encoding.UTF8.GetString(b) : "");
                }
            }

            members.Add(new SerfMember(item.GetValueOrDefault("Name") as string ?? "", item.GetValueOrDefault("Status") as string ?? "", tags));
        }

        return members;
    }

    /// <summary>Sets tags on the agent (<c>serf tags -set k=v</c>).</summary>
    public Task SetTagsAsync(IReadOnlyDictionary<string, string> tags, CancellationToken cancel) =>
        CallAsync("tags", body =>
        {
            MsgPack.WriteMapHeader(body, 2);
            MsgPack.WriteString(body, "Tags");
            MsgPack.WriteMapHeader(body, tags.Count);
            foreach (var (k, v) in tags)
            {
                MsgPack.WriteString(body, k);
                MsgPack.WriteString(body, v);
            }

            MsgPack.WriteString(body, "DeleteTags");
            MsgPack.WriteArrayHeader(body, 0);
        }, expectBody: false, cancel);

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        _gate.Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Map(List<byte> o, params (string Key, ulong Value)[] fields)
    {
        MsgPack.WriteMapHeader(o, fields.Length);
        foreach (var (k, v) in fields)
        {
            MsgPack.WriteString(o, k);
            MsgPack.WriteUInt(o, v);
        }
    }

    private async Task<object?> CallAsync(string command, Action<List<byte>>? writeBody, bool expectBody, CancellationToken cancel)
    {
        await _gate.WaitAsync(cancel);
        try
        {
            var seq = _seq++;
            var request = new List<byte>(128);
            MsgPack.WriteMapHeader(request, 2);
            MsgPack.WriteString(request, "Command");
            MsgPack.WriteString(request, command);
            MsgPack.WriteString(request, "Seq");
            MsgPack.WriteUInt(request, seq);
            writeBody?.Invoke(request);
            await _socket.SendAsync(request.ToArray(), SocketFlags.None, cancel);

            if (await ReadValueAsync(cancel) is not Dictionary<string, object?> header)
            {
                throw new InvalidDataException($"serf rpc: bad response header to {command}");
            }

            if (header.GetValueOrDefault("Error") is string { Length: > 0 } error)
            {
                throw new InvalidDataException($"serf rpc: {command}: {error}");
            }

            return expectBody ? await ReadValueAsync(cancel) : null;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<object?> ReadValueAsync(CancellationToken cancel)
    {
        while (true)
        {
            var pos = _start;
            if (_end > _start && MsgPack.TryRead(_buffer.AsSpan(0, _end), ref pos, out var value))
            {
                _start = pos;
                return value;
            }

            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancel);
            if (n == 0)
            {
                throw new IOException("serf rpc: connection closed");
            }

            _end += n;
        }
    }
}

/// <summary>One row of serf's member list.</summary>
internal sealed record SerfMember(string Name, string Status, IReadOnlyDictionary<string, string> Tags);
