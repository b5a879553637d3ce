using System.Globalization;
using System.Net;
using System.Security.Cryptography;

namespace StreamFarm.Bench;

/// <summary>
/// <c>./bench.sh dns</c>: Knot DNS serving a static zone and our responder (a real
/// <c>streamfarm node --dns</c> in a farm of three) serving the same names, each on its own loopback
/// address with response rate limiting off, driven in turn by dnsperf with the same query file,
/// clients and duration. Reports queries per second, latency, lost queries and server CPU.
/// </summary>
public static class DnsBenchmark
{
    private static readonly (string Label, ushort Type)[] Probes = [("stream", 1), ("s1", 1), ("_rttp._tcp.stream", 33), ("nonexistent", 1)];

    public static async Task<DnsBenchReport> RunAsync(DnsBenchSettings settings, ServerLauncher streamFarm, Action<string> log, CancellationToken cancel)
    {
        settings.Validate();
        var report = new DnsBenchReport(settings, DateTimeOffset.UtcNow, await VersionAsync(settings.Knotd, "--version", cancel), await VersionAsync(settings.Dnsperf, "-h", cancel));
        var dir = Directory.CreateTempSubdirectory("streamfarm-bench-dns-").FullName;
        var queries = Path.Combine(dir, "queries.txt");
        await File.WriteAllLinesAsync(queries, settings.Queries, cancel);
        var farmIps = Enumerable.Range(0, 3).Select(i => Offset(IPAddress.Parse(settings.StreamFarmAddress), i)).ToArray();
        var knotEndPoint = new IPEndPoint(IPAddress.Parse(settings.KnotAddress), settings.Port);
        var oursEndPoint = new IPEndPoint(farmIps[0], settings.Port);
        var processes = new List<ChildProcess>();
        try
        {
            var knot = await StartKnotAsync(settings, dir, knotEndPoint, farmIps, log, cancel);
            processes.Add(knot);
            report.Commands["Knot"] = knot.CommandLine;
            var farm = await StartFarmAsync(settings, streamFarm, farmIps, oursEndPoint, log, cancel);
            processes.AddRange(farm);
            report.Commands["StreamFarm"] = farm[0].CommandLine;
            if (settings.Pin)
            {
                foreach (var p in processes)
                {
                    await PinAsync(p.Pid, ServerCore.ToString(CultureInfo.InvariantCulture));
                }

                log($"pinned: servers on core {ServerCore}, dnsperf on {LoadCores}");
            }
            foreach (var (name, endpoint) in new[] { ("Knot", knotEndPoint), ("StreamFarm", oursEndPoint) })
            {
                report.Answers[name] = await DescribeAnswersAsync(settings, endpoint, cancel);
            }

            for (var run = 1; run <= settings.Runs; run++)
            {
                foreach (var (name, endpoint, server) in new[] { ("Knot", knotEndPoint, knot), ("StreamFarm", oursEndPoint, farm[0]) })
                {
                    if (settings.Warmup > TimeSpan.Zero)
                    {
                        log($"{name}: warm-up, {settings.Warmup.TotalSeconds:0.#} s (not reported)");
                        _ = await DnsPerfAsync(settings, endpoint, queries, settings.Warmup, server, name, 0, cancel);
                    }

                    log($"{name}: run {run}, dnsperf -c {settings.Clients} -T {settings.Threads} -q {settings.MaxOutstanding} -l {settings.Duration.TotalSeconds:0.#} against {endpoint}");
                    var result = await DnsPerfAsync(settings, endpoint, queries, settings.Duration, server, name, run, cancel);
                    report.Results.Add(result);
                    log($"  {DnsBenchReport.Describe(result)}");
                    if (server.HasExited)
                    {
                        throw new BenchException($"{name} exited during the run (code {server.ExitCode}): {Tail(server.RecentOutputText())}");
                    }
                }
            }
        }
        catch (BenchException e)
        {
            report.Notes.Add(e.Message);
            log(e.Message);
        }
        finally
        {
            foreach (var p in Enumerable.Reverse(processes))
            {
                log($"stopping pid {p.Pid}");
                await p.DisposeAsync();
            }

            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // left in the temporary directory
            }
        }

        return report;
    }

    private static async Task<ChildProcess> StartKnotAsync(DnsBenchSettings settings, string dir, IPEndPoint endpoint, IPAddress[] farmIps, Action<string> log, CancellationToken cancel)
    {
        var zone = settings.Zone;
        await File.WriteAllTextAsync(Path.Combine(dir, "knot.conf"), $"""
            # No mod-rrl: response rate limiting is off, as in our responder (dns.rateLimit 0).
            server:
                rundir: "{dir}"
                listen: {endpoint.Address}@{endpoint.Port}{(settings.Pin ? "\n    udp-workers: 1" : "")}
            log:
              - target: stderr
                any: warning
            database:
                storage: "{dir}/db"
            zone:
              - domain: {zone}
                storage: "{dir}"
                file: "{zone}.zone"
                journal-content: none
                zonefile-sync: -1

            """, cancel);

        // The names our responder serves for a farm of three active servers (ttl 5, as ours).
        await File.WriteAllTextAsync(Path.Combine(dir, $"{zone}.zone"), $"""
            $ORIGIN {zone}.
            $TTL 5
            @       SOA ns1 hostmaster 1 60 30 600 5
            @       NS  ns1
            ns1     A   {endpoint.Address}
            stream  A   {farmIps[0]}
            stream  A   {farmIps[1]}
            stream  A   {farmIps[2]}
            s1      A   {farmIps[0]}
            s2      A   {farmIps[1]}
            s3      A   {farmIps[2]}
            _rttp._tcp.stream SRV 0 10000 7400 s1
            _rttp._tcp.stream SRV 0 10000 7400 s2
            _rttp._tcp.stream SRV 0 10000 7400 s3

            """, cancel);
        var knot = ChildProcess.Start("Knot", settings.Knotd, ["-c", Path.Combine(dir, "knot.conf")]);
        log($"Knot: started pid {knot.Pid} on {endpoint}");
        await WaitForAnswerAsync("Knot", knot, endpoint, $"stream.{zone}", 3, cancel);
        return knot;
    }

    private static async Task<List<ChildProcess>> StartFarmAsync(DnsBenchSettings settings, ServerLauncher launcher, IPAddress[] ips, IPEndPoint dns, Action<string> log, CancellationToken cancel)
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var options = new ChildProcessOptions { Environment = new Dictionary<string, string> { ["STREAMFARM_DNS__RATELIMIT"] = "0" } };
        var farm = new List<ChildProcess>();
        try
        {
            for (var i = 0; i < ips.Length; i++)
            {
                var args = launcher.Arguments.Concat(["node", "--id", $"s{i + 1}", "--listen", ips[i].ToString(), "--tcp-port", "0", "--http-port", "0",
                    "--gossip-key", key, "--seeds", ips[0].ToString(), "--preset", "local", "--zone", settings.Zone, "--log-level", "Warning"]);
                if (i == 0)
                {
                    // Three addresses per answer: the whole RRset, as Knot answers.
                    args = args.Concat(["--dns", dns.ToString(), "--dns-answers", "3"]);
                }

                var node = ChildProcess.Start($"s{i + 1}", launcher.FileName, args, options);
                farm.Add(node);
                log($"StreamFarm: started s{i + 1} pid {node.Pid} on {ips[i]}{(i == 0 ? $", DNS on {dns}" : "")}");
            }

            await WaitForAnswerAsync("StreamFarm", farm[0], dns, $"stream.{settings.Zone}", 3, cancel);
            return farm;
        }
        catch
        {
            foreach (var p in farm)
            {
                await p.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>Polls until the server answers <paramref name="name"/> A with <paramref name="answers"/> records (for us: the farm has converged).</summary>
    private static async Task WaitForAnswerAsync(string server, ChildProcess process, IPEndPoint endpoint, string name, int answers, CancellationToken cancel)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (process.HasExited)
            {
                throw new BenchException($"{server} exited with code {process.ExitCode} while starting ({process.CommandLine}): {Tail(process.RecentOutputText())}");
            }

            if (await DnsProbe.AskAsync(endpoint, name, 1, TimeSpan.FromMilliseconds(300), cancel) is { Rcode: 0 } r && r.Answers == answers)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new BenchException($"{server} did not answer {name} A with {answers} addresses on {endpoint} within 30 s: {Tail(process.RecentOutputText())}");
            }

            await Task.Delay(100, cancel);
        }
    }

    private static async Task<string> DescribeAnswersAsync(DnsBenchSettings settings, IPEndPoint endpoint, CancellationToken cancel)
    {
        var parts = new List<string>();
        foreach (var (label, type) in Probes)
        {
            var r = await DnsProbe.AskAsync(endpoint, $"{label}.{settings.Zone}", type, TimeSpan.FromSeconds(1), cancel);
            parts.Add(r is { } a
                ? string.Create(CultureInfo.InvariantCulture, $"{label} {DnsProbe.TypeName(type)}: {DnsProbe.RcodeName(a.Rcode)}, {a.Answers} answer(s), {a.Additional} additional, {a.Bytes} B")
                : $"{label} {DnsProbe.TypeName(type)}: no answer");
        }

        return string.Join("; ", parts);
    }

    private static int ServerCore => Environment.ProcessorCount - 1;

    private static string LoadCores => ServerCore == 1 ? "0" : $"0-{ServerCore - 1}";

    private static async Task PinAsync(int pid, string cores)
    {
        if (!(await ChildProcess.RunToEndAsync("taskset", ["-a", "-p", "-c", cores, pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10), CancellationToken.None)).Succeeded)
        {
            throw new BenchException($"taskset -a -p -c {cores} {pid} failed (util-linux's taskset is needed for --pin)");
        }
    }

    private static async Task<DnsPerfResult> DnsPerfAsync(DnsBenchSettings settings, IPEndPoint endpoint, string queries, TimeSpan duration, ChildProcess server, string name, int run, CancellationToken cancel)
    {
        var hz = (double)NativeMethods.ClockTicksPerSecond();
        var serverBefore = server.CpuTicks();
        var childrenBefore = ChildProcess.ReapedChildrenCpuTicks();
        var machineBefore = MachineCpu.BusyTicks();
        string[] pin = settings.Pin ? ["taskset", "-c", LoadCores] : [];
        var perf = await ChildProcess.RunToEndAsync(settings.Pin ? "taskset" : settings.Dnsperf,
        [
            .. pin.Skip(1), .. (settings.Pin ? new[] { settings.Dnsperf } : []),
            "-s", endpoint.Address.ToString(), "-p", endpoint.Port.ToString(CultureInfo.InvariantCulture), "-d", queries,
            "-c", Num(settings.Clients), "-T", Num(settings.Threads), "-q", Num(settings.MaxOutstanding),
            "-l", duration.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture),
        ], duration + TimeSpan.FromSeconds(30), cancel);
        var serverCpu = server.HasExited ? double.NaN : (server.CpuTicks() - serverBefore) / hz;
        var machine = (MachineCpu.BusyTicks() - machineBefore) / hz;
        var loadCpu = (ChildProcess.ReapedChildrenCpuTicks() - childrenBefore) / hz; // dnsperf, reaped when it ended
        var output = $"{perf.Output}\n{perf.Errors}";
        var result = DnsPerfResult.Parse(name, run, output);
        if (!perf.Succeeded && result.Error is null)
        {
            result = result with { Error = $"dnsperf exited with code {perf.ExitCode}: {Tail(output)}" };
        }

        return result with { ServerCpuSeconds = serverCpu, LoadCpuSeconds = loadCpu, MachineCpuSeconds = machine };
    }

    private static IPAddress Offset(IPAddress ip, int n)
    {
        var b = ip.GetAddressBytes();
        b[3] = (byte)(b[3] + n);
        return new IPAddress(b);
    }

    /// <summary>The line of <paramref name="program"/>'s output that names its version (knotd --version, or dnsperf's help), or "unknown".</summary>
    private static async Task<string> VersionAsync(string program, string flag, CancellationToken cancel)
    {
        try
        {
            var run = await ChildProcess.RunToEndAsync(program, [flag], TimeSpan.FromSeconds(10), cancel);
            return run.FirstLine(containing: "ersion") ?? "unknown";
        }
        catch (BenchException e)
        {
            throw new BenchException($"{e.Message} (apt-get install knot dnsperf)", e);
        }
    }

    private static string Tail(string text) => text.Length <= 600 ? text.Trim() : text[^600..].Trim();

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
