using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Server.Tests.Kit;

/// <summary>
/// A raw RTTP client over a real socket: send lines, read lines. The read timeout only turns a hang
/// into a failure with a clear message; no test asserts on speed.
/// </summary>
internal sealed class LineClient : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;

    private LineClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _reader = new StreamReader(_stream, new UTF8Encoding(false), false, 1 << 16);
    }

    public Socket Socket => _tcp.Client;

    public static async Task<LineClient> ConnectAsync(IPEndPoint endpoint, int? receiveBuffer = null, IPAddress? from = null)
    {
        var tcp = from is null ? new TcpClient(AddressFamily.InterNetwork) : new TcpClient(new IPEndPoint(from, 0));
        tcp.NoDelay = true;
        if (receiveBuffer is { } size)
        {
            tcp.ReceiveBufferSize = size;
        }

        await tcp.ConnectAsync(endpoint);
        return new LineClient(tcp);
    }

    public Task SendAsync(string line) => SendRawAsync(Encoding.UTF8.GetBytes(line + "\n"));

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>The next line, or null at end of stream.</summary>
    public async Task<string?> ReadLineAsync()
    {
        using var cts = new CancellationTokenSource(Patience);
        try
        {
            return await _reader.ReadLineAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no line from the server within {Patience.TotalSeconds} s");
        }
        catch (IOException)
        {
            return null; // reset by the server counts as the end
        }
    }

    /// <summary>Reads lines, skipping PING and farm deltas, until one starts with <paramref name="prefix"/>.</summary>
    public async Task<string> ExpectAsync(string prefix)
    {
        var seen = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync() ?? throw new InvalidOperationException($"connection closed while waiting for '{prefix}'; saw: {string.Join(" | ", seen)}");
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }

            if (!IsNoise(line) || seen.Count > 10_000)
            {
                throw new InvalidOperationException($"expected '{prefix}...' but got '{line}'");
            }

            seen.Add(line);
        }
    }

    /// <summary>The next line that is not keep-alive or a farm delta.</summary>
    public async Task<string?> NextAsync()
    {
        while (true)
        {
            var line = await ReadLineAsync();
            if (line is null || !IsNoise(line))
            {
                return line;
            }
        }
    }

    /// <summary>Reads until the server closes; returns the lines seen (minus noise).</summary>
    public async Task<List<string>> ReadToEndAsync()
    {
        var lines = new List<string>();
        while (await NextAsync() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }

    /// <summary>Keep-alive and farm table lines, which arrive at times a test does not control.</summary>
    public static bool IsNoise(string line) =>
        line == "PING" || line.StartsWith("FARM ", StringComparison.Ordinal) || line.StartsWith("SERVER ", StringComparison.Ordinal) || line.StartsWith("FARMDEL ", StringComparison.Ordinal);

    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
