using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace StreamFarm.Bench;

/// <summary>
/// A child process of the DNS benchmark (knotd, a StreamFarm node, dnsperf): output kept for error
/// reports, CPU time from /proc/PID/stat, stopped with SIGTERM and killed if it lingers.
/// </summary>
internal sealed class DnsChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DnsChildProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
        Pid = process.Id;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid { get; }

    public string CommandLine { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static DnsChildProcess Start(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        var commandLine = string.Join(' ', (environment ?? new Dictionary<string, string>()).Select(e => $"{e.Key}={e.Value}").Concat(info.ArgumentList.Prepend(fileName)));
        try
        {
            return new DnsChildProcess(Process.Start(info) ?? throw new BenchException($"could not start {commandLine}"), commandLine);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BenchException($"could not start {commandLine}: {e.Message}", e);
        }
    }

    /// <summary>Utime + stime in seconds so far.</summary>
    public double CpuSeconds() => ServerProcess.ReadCpuTicks($"/proc/{Pid}/stat") / (double)NativeMethods.ClockTicksPerSecond();

    public Task WaitForExitAsync(CancellationToken cancel) => _process.WaitForExitAsync(cancel);

    /// <summary>SIGTERM, then SIGKILL after 10 s.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited && NativeMethods.Terminate(Pid))
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await _process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    // killed below
                }
            }

            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Append(line).Append('\n');
            if (_output.Length > 64 * 1024)
            {
                _output.Remove(0, _output.Length - (32 * 1024));
            }
        }
    }
}

/// <summary>A one-query DNS client over UDP, to check that a server is up and answers what we expect.</summary>
internal static class DnsProbe
{
    /// <summary>Rcode, answer count and size of the response, or null when nothing came back within <paramref name="timeout"/>.</summary>
    public static async Task<(int Rcode, int Answers, int Additional, int Bytes)?> AskAsync(IPEndPoint server, string name, ushort type, TimeSpan timeout, CancellationToken cancel)
    {
        var query = new List<byte> { 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            query.Add((byte)label.Length);
            query.AddRange(Encoding.ASCII.GetBytes(label));
        }

        query.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        using var udp = new UdpClient(server.AddressFamily);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        limit.CancelAfter(timeout);
        try
        {
            await udp.SendAsync(query.ToArray(), server, limit.Token);
            var r = await udp.ReceiveAsync(limit.Token);
            var m = r.Buffer;
            if (m.Length < 12 || m[0] != 0x12 || m[1] != 0x34)
            {
                return null;
            }

            return (m[3] & 0xF, BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(6)), BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(10)), m.Length);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    public static string TypeName(ushort type) => type switch
    {
        1 => "A",
        33 => "SRV",
        _ => type.ToString(CultureInfo.InvariantCulture),
    };

    public static string RcodeName(int rcode) => rcode switch
    {
        0 => "NOERROR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        5 => "REFUSED",
        _ => $"rcode {rcode}",
    };
}
