using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DnsClient;
using DnsClient.Protocol;

namespace StreamFarm.Dns.Sync.Tests;

/// <summary>
/// A real Knot DNS (knotd) as a child process: a temporary directory with a minimal knot.conf
/// (listening on its own 127.x address and a free port), a zone file for farm.test, a TSIG key and
/// an ACL that lets that key update the zone. Killed and cleaned up on dispose.
/// </summary>
public sealed class KnotServer : IAsyncDisposable
{
    public const string Zone = "farm.test";
    private readonly Process _process;
    private readonly string _dir;
    private readonly List<string> _output = [];

    private KnotServer(Process process, string dir, IPEndPoint endpoint, TsigKey key)
    {
        _process = process;
        _dir = dir;
        EndPoint = endpoint;
        Key = key;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>knotd's path, or null when Knot is not installed (apt-get install knot).</summary>
    public static string? Binary { get; } = new[] { "/usr/sbin/knotd", "/usr/bin/knotd", "/usr/local/sbin/knotd" }.FirstOrDefault(File.Exists);

    public IPEndPoint EndPoint { get; }

    /// <summary>The key the zone's ACL allows to update it.</summary>
    public TsigKey Key { get; }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    /// <summary>Starts knotd on a fresh 127.x address (or <paramref name="endpoint"/>), with a new key (or <paramref name="key"/>), and waits until it answers for the zone.</summary>
    public static async Task<KnotServer> StartAsync(IPEndPoint? endpoint = null, TsigKey? key = null)
    {
        var binary = Binary ?? throw new InvalidOperationException("knotd is not installed");
        endpoint ??= FreeEndPoint();
        var dir = Directory.CreateTempSubdirectory("streamfarm-knot-").FullName;
        key ??= new TsigKey("sync-key", "hmac-sha256", RandomNumberGenerator.GetBytes(32));
        var secret = Convert.ToBase64String(key.Secret);
        await File.WriteAllTextAsync(Path.Combine(dir, "knot.conf"), $"""
            server:
                rundir: "{dir}"
                listen: {endpoint.Address}@{endpoint.Port}
                udp-workers: 1
                tcp-workers: 1
                background-workers: 1
            log:
              - target: stderr
                any: info
            database:
                storage: "{dir}/db"
            key:
              - id: {key.Name}
                algorithm: {key.Algorithm}
                secret: {secret}
            acl:
              - id: sync-update
                key: {key.Name}
                action: update
            zone:
              - domain: {Zone}
                storage: "{dir}"
                file: "{Zone}.zone"
                acl: sync-update
                zonefile-sync: -1
                journal-content: none

            """);
        await File.WriteAllTextAsync(Path.Combine(dir, $"{Zone}.zone"), $"""
            $ORIGIN {Zone}.
            $TTL 5
            @   SOA ns1 hostmaster 1 60 30 600 5
            @   NS  ns1
            ns1 A   {endpoint.Address}

            """);
        var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(Path.Combine(dir, "knot.conf"));
        var process = Process.Start(info) ?? throw new InvalidOperationException("knotd did not start");
        var knot = new KnotServer(process, dir, endpoint, key);
        try
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"knotd exited with code {process.ExitCode}: {knot.Output}");
                }

                try
                {
                    var soa = await knot.Client(TimeSpan.FromMilliseconds(250)).QueryAsync(Zone, QueryType.SOA); // a query sent before knotd binds is lost
                    if (soa.Answers.SoaRecords().Any())
                    {
                        return knot;
                    }
                }
                catch (DnsResponseException) when (deadline.Elapsed < TimeSpan.FromSeconds(10))
                {
                    // not listening yet
                }

                if (deadline.Elapsed > TimeSpan.FromSeconds(10))
                {
                    throw new InvalidOperationException($"knotd did not answer on {endpoint} within 10 s: {knot.Output}");
                }

                await Task.Delay(50);
            }
        }
        catch
        {
            await knot.DisposeAsync();
            throw;
        }
    }

    /// <summary>A loopback address of its own (127.53.x.y) and a port free there for UDP and TCP.</summary>
    public static IPEndPoint FreeEndPoint()
    {
        for (var attempt = 0; ; attempt++)
        {
            var ip = new IPAddress([127, 53, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(1, 255)]);
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(ip, 0));
            var port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Bind(new IPEndPoint(ip, port));
                return new IPEndPoint(ip, port);
            }
            catch (SocketException) when (attempt < 20)
            {
                // the UDP port is taken there: try another
            }
        }
    }

    /// <summary>An independent DNS client (DnsClient.NET, not the library under test), no cache, no retries.</summary>
    public LookupClient Client(TimeSpan? timeout = null) =>
        new(new LookupClientOptions(new NameServer(EndPoint)) { UseCache = false, Retries = 0, Timeout = timeout ?? TimeSpan.FromSeconds(2), ThrowDnsErrors = false, Recursion = false });

    /// <summary>The addresses Knot holds for a name and type, sorted.</summary>
    public async Task<string[]> AddressesAsync(string name, QueryType type = QueryType.A)
    {
        var response = await Client().QueryAsync(name, type);
        return [.. response.Answers.OfType<AddressRecord>().Select(r => r.Address.ToString()).Order(StringComparer.Ordinal)];
    }

    public async Task<string[]> TxtAsync(string name)
    {
        var response = await Client().QueryAsync(name, QueryType.TXT);
        return [.. response.Answers.TxtRecords().SelectMany(r => r.Text).Order(StringComparer.Ordinal)];
    }

    public ArsoftUpdateClient UpdateClient(TsigKey? key = null) => new(EndPoint, key ?? Key, TimeSpan.FromSeconds(3));

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(_dir, recursive: true);
            }
            catch (IOException)
            {
                // left in /tmp
            }
        }
    }
}

/// <summary>A test that needs knotd: skipped, with the reason, where Knot is not installed.</summary>
public sealed class KnotFactAttribute : FactAttribute
{
    public KnotFactAttribute()
    {
        if (KnotServer.Binary is null)
        {
            Skip = "knotd is not installed (apt-get install knot); scripts/setup.sh installs it";
        }
    }
}
