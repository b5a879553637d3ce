using System.IO.Compression;
using System.Net;
using System.Reflection.Metadata;
using System.Text.Json;
using System.Xml.Linq;
using StreamFarm.Client.Discovery;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// The library packages (docs/client.md, "Installing the package"): <c>StreamFarm.Protocol</c> and
/// <c>StreamFarm.Client</c> packed from the build this test project was built with (it references
/// the command, which references both) into a local feed, their contents read, then the client
/// installed into a fresh <c>dotnet new console</c> project from that feed, as an application
/// developer would, and run against a farm of two server processes and the farm's DNS system
/// (127.0.71.x) that the test starts meanwhile: the program subscribes, publishes, and prints what
/// its subscription receives. Here rather than in the client's tests because, like the tool and
/// the container (<see cref="PackagingTests"/>), it is about what users install, and it needs the
/// real <c>streamfarm</c> processes this project runs.
/// </summary>
public sealed class ClientPackageTests : IDisposable
{
    // Addresses of this test's own: servers at .2 and .3 on the default RTTP port (the client reaches
    // the first server at the DNS answer's address on FarmClientOptions.Port), DNS at .1.
    private const string Subnet = "127.0.71";
    private const int GossipPort = 17401;
    private const int DnsPort = 15300;
    private const string Subject = "/PACKAGE/price";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly string Key = Convert.ToBase64String(Enumerable.Range(71, 32).Select(i => (byte)i).ToArray());

    private readonly string _temp = Directory.CreateTempSubdirectory("streamfarm-client-package-").FullName;
    private readonly string _root = RepositoryRoot();

    // .../bin/<configuration>/net10.0/
    private readonly string _configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd('/')))!;

    [Fact]
    public async Task ClientPackage_FromALocalFeed_InAFreshConsoleProject_SubscribesAndPublishesOnAFarm()
    {
        // The farm starts while the packages are made and the application is built.
        var farmStarting = ProcessFarm.StartAsync();
        ProcessFarm? farm = null;
        try
        {
            var version = VersionPrefix();
            var feed = Dir("feed");
            foreach (var project in new[] { "StreamFarm.Protocol", "StreamFarm.Client" })
            {
                var pack = await Exec.RunAsync("dotnet", ["pack", $"src/{project}", "-c", _configuration, "--no-build", "-o", feed, "--nologo", "-v", "q"], _root, TimeSpan.FromMinutes(2));
                Assert.True(pack.Code == 0, $"dotnet pack {project} failed: {pack.Output}");
            }

            var protocol = ReadPackage(feed, "StreamFarm.Protocol", version);
            var client = ReadPackage(feed, "StreamFarm.Client", version);
            Assert.DoesNotContain(protocol.Dependencies, d => d.StartsWith("StreamFarm.", StringComparison.Ordinal));
            // The client depends on the protocol package of the same version and does not embed it.
            Assert.Contains($"StreamFarm.Protocol {version}", client.Dependencies);
            Assert.DoesNotContain(client.Files, f => f.Contains("StreamFarm.Protocol", StringComparison.Ordinal));
            Assert.Contains("DnsClient 1.8.0", client.Dependencies);

            var app = await CreateApplicationAsync(feed, version);
            var build = await Exec.RunAsync("dotnet", ["build", "--no-restore", "--nologo", "-v", "q"], app.Dir, TimeSpan.FromMinutes(3), app.Env);
            Assert.True(build.Code == 0, $"dotnet build of the application failed: {build.Output}");

            farm = await farmStarting;
            var run = await Exec.RunAsync("dotnet", ["run", "--no-build", "--", $"{Subnet}.1:{DnsPort}", Subject], app.Dir, TimeSpan.FromMinutes(2), app.Env);
            Assert.True(run.Code == 0, $"the application failed: {run.Output}\nfarm: {farm.Logs()}");
            // Subscribed (NOT_FOUND: nothing published yet), published with an acknowledgement, and
            // the first publication arrived as the subscription's image: seq 1, from a farm server.
            Assert.Matches($@"^subscribed {Subject}: NotFound\npublished {Subject} bid=1\.2702: acknowledged\nimage {Subject} seq=1 bid=1\.2702 from s[23]\n$", run.Stdout.Replace("\r", "", StringComparison.Ordinal));
        }
        finally
        {
            if (farm is null)
            {
                // The test failed before it needed the farm: it must not leave the processes running.
                try
                {
                    farm = await farmStarting;
                }
                catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException or HttpRequestException)
                {
                    // it did not start either, and StartAsync stopped what it had started
                }
            }

            if (farm is not null)
            {
                await farm.DisposeAsync();
            }
        }
    }

    private sealed record Package(IReadOnlyList<string> Files, IReadOnlyList<string> Dependencies);

    /// <summary>Checks one package and its symbols package; returns its files and dependencies (<c>id version</c>).</summary>
    private static Package ReadPackage(string feed, string id, string version)
    {
        var nupkg = Path.Combine(feed, $"{id}.{version}.nupkg");
        var snupkg = Path.Combine(feed, $"{id}.{version}.snupkg");
        Assert.True(File.Exists(nupkg), $"no {nupkg}: {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        Assert.True(File.Exists(snupkg), $"no {snupkg}: {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");

        using var zip = ZipFile.OpenRead(nupkg);
        var files = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("README.md", files);
        Assert.Contains($"lib/net10.0/{id}.dll", files);
        Assert.Contains($"lib/net10.0/{id}.xml", files);
        using (var docs = zip.GetEntry($"lib/net10.0/{id}.xml")!.Open())
        {
            // The XML docs: members with their summaries (CS1591 makes a missing one a build error).
            var members = XDocument.Load(docs).Descendants("member").ToList();
            Assert.True(members.Count > 50, $"{id}.xml documents {members.Count} members");
        }

        XDocument nuspec;
        using (var stream = zip.GetEntry($"{id}.nuspec")!.Open())
        {
            nuspec = XDocument.Load(stream);
        }

        var ns = nuspec.Root!.GetDefaultNamespace();
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        string Meta(string name) => metadata.Element(ns + name)?.Value ?? "";
        Assert.Equal(id, Meta("id"));
        Assert.Equal(version, Meta("version"));
        Assert.Equal("StreamFarm", Meta("authors"));
        Assert.Equal("README.md", Meta("readme"));
        Assert.NotEmpty(Meta("description"));
        Assert.Contains("rttp", Meta("tags"), StringComparison.Ordinal);
        Assert.NotEmpty(Meta("projectUrl"));
        var repository = metadata.Element(ns + "repository")!;
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.NotEmpty(repository.Attribute("url")?.Value ?? "");
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
        // No licence yet: the founders have not chosen one (docs/client.md, "Installing the package").
        Assert.Null(metadata.Element(ns + "license"));

        var dependencies = metadata.Descendants(ns + "dependency").Select(d => $"{d.Attribute("id")!.Value} {d.Attribute("version")!.Value}").ToList();

        // The symbols package: the portable PDB, with the sources git does not track (generated at
        // build) embedded; tracked sources are Source Link's to map.
        using var symbols = ZipFile.OpenRead(snupkg);
        var pdbEntry = symbols.GetEntry($"lib/net10.0/{id}.pdb");
        Assert.NotNull(pdbEntry);
        using var pdb = new MemoryStream();
        using (var s = pdbEntry.Open())
        {
            s.CopyTo(pdb);
        }

        pdb.Position = 0;
        using var provider = MetadataReaderProvider.FromPortablePdbStream(pdb);
        var reader = provider.GetMetadataReader();
        var embeddedSource = new Guid("0E8A571B-6926-466E-B4AD-8AB04611F5FE");
        var embedded = reader.CustomDebugInformation
            .Select(reader.GetCustomDebugInformation)
            .Where(c => reader.GetGuid(c.Kind) == embeddedSource && c.Parent.Kind == HandleKind.Document)
            .Select(c => reader.GetString(reader.GetDocument((DocumentHandle)c.Parent).Name))
            .ToList();
        Assert.Contains(embedded, path => path.EndsWith(".AssemblyInfo.cs", StringComparison.Ordinal));
        Assert.DoesNotContain(embedded, path => path.EndsWith("RttpParser.cs", StringComparison.Ordinal) || path.EndsWith("FarmClient.cs", StringComparison.Ordinal));

        return new Package(files, dependencies);
    }

    /// <summary>
    /// A fresh console project that installs StreamFarm.Client from the feed, as docs/client.md
    /// tells. Its NuGet sources: the feed for StreamFarm's packages, and for their dependencies the
    /// machine's package folder (filled from the machine's configured source when the repository
    /// restored; the application needs nothing the client project did not), so the test needs no
    /// network. Its own package folder: nothing comes from, or is left in, the machine's cache, where
    /// an earlier StreamFarm.Client of the same version could otherwise stand in for this one.
    /// </summary>
    private async Task<Application> CreateApplicationAsync(string feed, string version)
    {
        var app = new Application(Dir("app"), new Dictionary<string, string> { ["NUGET_PACKAGES"] = Dir("nuget-packages") });
        var create = await Exec.RunAsync("dotnet", ["new", "console", "--name", "PackageCheck", "--output", app.Dir, "--no-restore", "--no-update-check"], _temp, TimeSpan.FromMinutes(1), app.Env);
        Assert.True(create.Code == 0, $"dotnet new console failed: {create.Output}");

        var machinePackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        await File.WriteAllTextAsync(Path.Combine(app.Dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="streamfarm" value="{feed}" />
                <add key="machine" value="{machinePackages}" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="streamfarm">
                  <package pattern="StreamFarm.*" />
                </packageSource>
                <packageSource key="machine">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        var add = await Exec.RunAsync("dotnet", ["add", "package", "StreamFarm.Client", "--version", version], app.Dir, TimeSpan.FromMinutes(2), app.Env);
        Assert.True(add.Code == 0, $"dotnet add package failed: {add.Output}");
        Assert.True(File.Exists(Path.Combine(app.Env["NUGET_PACKAGES"], "streamfarm.protocol", version, $"streamfarm.protocol.{version}.nupkg")), "StreamFarm.Protocol came in as the client's dependency");

        await File.WriteAllTextAsync(Path.Combine(app.Dir, "Program.cs"), ProgramSource);
        return app;
    }

    /// <summary>
    /// The application: subscribes through the farm's two-step connect (DNS, first server, farm
    /// table, chosen server), publishes once the subscription says the subject has no data yet, and
    /// prints each step. The deadline only ends a run that went wrong.
    /// </summary>
    private const string ProgramSource = """
        using System.Net;
        using StreamFarm.Client;
        using StreamFarm.Protocol;

        var dns = IPEndPoint.Parse(args[0]);
        var subject = args[1];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var client = new FarmClient(new FarmClientOptions
        {
            ServiceName = "stream.farm.test",
            Resolver = FarmClientOptions.DnsServer(dns),
            Connection = new RttpConnectionOptions { ClientName = "package-check" },
        });

        await foreach (var m in client.SubscribeAsync(subject, deadline.Token))
        {
            switch (m)
            {
                case SubjectStatusChange { Status: SubjectStatus.NotFound } s:
                    Console.WriteLine($"subscribed {s.Subject}: {s.Status}");
                    await client.PublishAsync(subject, [KeyValuePair.Create("bid", "1.2702")], PublishOptions.Acknowledged, deadline.Token);
                    Console.WriteLine($"published {subject} bid=1.2702: acknowledged");
                    break;
                case SubjectImage i:
                    Console.WriteLine($"image {i.Subject} seq={i.Seq} bid={i["bid"]} from {i.Server}");
                    return 0;
                default:
                    Console.WriteLine($"unexpected: {m}");
                    return 1;
            }
        }

        return 2;
        """;

    /// <summary>The application's folder, and the environment every dotnet command in it gets.</summary>
    private sealed record Application(string Dir, Dictionary<string, string> Env);

    private string Dir(string name) => Directory.CreateDirectory(Path.Combine(_temp, name)).FullName;

    /// <summary>The version every package gets: VersionPrefix in Directory.Build.props.</summary>
    private string VersionPrefix() =>
        XDocument.Load(Path.Combine(_root, "Directory.Build.props")).Descendants("VersionPrefix").Single().Value;

    private static string RepositoryRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "StreamFarm.slnx")))
        {
            dir = Path.GetDirectoryName(dir.TrimEnd('/')) ?? throw new InvalidOperationException("StreamFarm.slnx not found above " + AppContext.BaseDirectory);
        }

        return dir;
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    /// <summary>Two servers and the farm's DNS system as processes; ready when both servers see each other and DNS answers.</summary>
    private sealed class ProcessFarm : IAsyncDisposable
    {
        private readonly List<CliProcess> _processes = [];

        public static async Task<ProcessFarm> StartAsync()
        {
            var farm = new ProcessFarm();
            try
            {
                var seeds = $"{Subnet}.2:{GossipPort},{Subnet}.3:{GossipPort}";
                var http = new List<string>();
                foreach (var n in new[] { 2, 3 })
                {
                    var server = CliProcess.Start(
                    [
                        "node", "--id", $"s{n}", "--listen", $"{Subnet}.{n}", "--http-port", "0",
                        "--gossip-port", $"{GossipPort}", "--seeds", seeds, "--gossip-key", Key, "--preset", "local", "--farm-name", "client-package",
                    ]);
                    farm._processes.Add(server);
                    http.Add((await server.WaitForOutputAsync("HTTP ", Patience)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
                }

                var dns = CliProcess.Start(
                [
                    "dns", "--listen", $"{Subnet}.1:{DnsPort}", "--seeds", seeds, "--gossip-key", Key, "--gossip-port", $"{GossipPort}",
                    "--preset", "local", "--farm-name", "client-package",
                ]);
                farm._processes.Add(dns);
                await dns.WaitForOutputAsync("answering", Patience);

                using var client = new HttpClient();
                await Poll.UntilAsync(async () =>
                {
                    foreach (var observer in http)
                    {
                        using var table = JsonDocument.Parse(await client.GetStringAsync(observer + "/farm"));
                        if (table.RootElement.EnumerateArray().Count(m => m.GetProperty("state").GetString() == "active" && m.GetProperty("liveness").GetString() == "alive") != 2)
                        {
                            return false;
                        }
                    }

                    return true;
                }, "both servers see both alive and active", Patience);

                var resolver = new DnsServerResolver(IPEndPoint.Parse($"{Subnet}.1:{DnsPort}"));
                await Poll.UntilAsync(async () => (await resolver.ResolveAsync("stream.farm.test", CancellationToken.None)).Count > 0, "the DNS system names a server", Patience);
                return farm;
            }
            catch
            {
                await farm.DisposeAsync();
                throw;
            }
        }

        public string Logs() => string.Join("\n", _processes.Select(p => p.Stdout + p.Stderr));

        public async ValueTask DisposeAsync()
        {
            foreach (var p in _processes)
            {
                await p.DisposeAsync();
            }
        }
    }
}
