using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;

namespace StreamFarm.Cli.Tests;

/// <summary>
/// The packages users install (docs/operations.md, "Installing"): the .NET tool, packed into a
/// local feed and installed with <c>dotnet tool install</c>; the container image, built by the
/// SDK into a tarball by <c>scripts/container.sh build-offline</c> (once for the class: the native
/// AOT compile is most of this class's time), read layer by layer, then loaded into podman and
/// run as a farm of three containers.
/// </summary>
public sealed class PackagingTests : IClassFixture<PackagingFixture>
{
    // The farm's servers: one address each on the loopback, the default ports.
    private static readonly int[] Servers = [2, 3, 4];
    private readonly PackagingFixture _fx;

    public PackagingTests(PackagingFixture fx)
    {
        _fx = fx;
    }

    [Fact]
    public async Task DotnetTool_PackedToALocalFeed_InstallsAndRuns()
    {
        var feed = _fx.Dir("feed");
        // Packed from the build this test project was built with (it references the command).
        var pack = await Exec.RunAsync("dotnet", ["pack", "src/StreamFarm.Cli", "-c", _fx.Configuration, "--no-build", "-o", feed, "--nologo", "-v", "q"], _fx.Root, TimeSpan.FromMinutes(3));
        Assert.True(pack.Code == 0, $"dotnet pack failed: {pack.Output}");
        var nupkg = Path.Combine(feed, $"streamfarm.{_fx.Version}.nupkg");
        Assert.True(File.Exists(nupkg), $"no {nupkg}: {string.Join(", ", Directory.GetFiles(feed))}");
        using (var zip = ZipFile.OpenRead(nupkg))
        {
            using var reader = new StreamReader(zip.Entries.Single(e => e.FullName == "streamfarm.nuspec").Open());
            var nuspec = reader.ReadToEnd();
            Assert.Contains("<packageType name=\"DotnetTool\" />", nuspec, StringComparison.Ordinal);
            Assert.Contains("<description>", nuspec, StringComparison.Ordinal);
            Assert.Contains("<readme>README.md</readme>", nuspec, StringComparison.Ordinal);
            Assert.DoesNotContain("<license", nuspec, StringComparison.Ordinal); // not decided yet
            Assert.Contains(zip.Entries, e => e.FullName == "tools/net10.0/any/streamfarm.dll");
            Assert.Contains(zip.Entries, e => e.FullName == "tools/net10.0/any/DotnetToolSettings.xml");
        }

        // Only the local feed, and a package folder of its own: nothing from a registry, nothing
        // from (or left in) the machine's NuGet cache.
        var config = Path.Combine(_fx.Dir("nuget"), "nuget.config");
        await File.WriteAllTextAsync(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        var env = new Dictionary<string, string> { ["NUGET_PACKAGES"] = _fx.Dir("nuget-packages") };
        var tools = _fx.Dir("tools");
        var install = await Exec.RunAsync("dotnet", ["tool", "install", "--tool-path", tools, "--configfile", config, "streamfarm", "--version", _fx.Version], _fx.Root, TimeSpan.FromMinutes(2), env);
        Assert.True(install.Code == 0, $"dotnet tool install failed: {install.Output}");

        var streamfarm = Path.Combine(tools, "streamfarm");
        var help = await Exec.RunAsync(streamfarm, ["--help"], tools, TimeSpan.FromSeconds(30));
        Assert.True(help.Code == 0, help.Output);
        foreach (var command in new[] { "node", "sub", "pub", "farm", "dns", "keygen" })
        {
            Assert.Contains($"  {command}", help.Stdout, StringComparison.Ordinal);
        }

        var keygen = await Exec.RunAsync(streamfarm, ["keygen"], tools, TimeSpan.FromSeconds(30));
        Assert.True(keygen.Code == 0, keygen.Output);
        Assert.Equal(32, Convert.FromBase64String(keygen.Stdout.Trim()).Length);

        var version = await Exec.RunAsync(streamfarm, ["--version"], tools, TimeSpan.FromSeconds(30));
        Assert.StartsWith(_fx.Version + "+", version.Stdout.Trim(), StringComparison.Ordinal);

        var usage = await Exec.RunAsync(streamfarm, ["sub"], tools, TimeSpan.FromSeconds(30));
        Assert.Equal(2, usage.Code);
    }

    [Fact]
    public async Task ContainerImage_Tarball_HoldsTheNativeExecutableOnASmallBase_WithEntryPointUserPortsLabels()
    {
        var image = OciArchive.Read(await _fx.ImageAsync());

        var entry = Assert.Single(image.Index.GetProperty("manifests").EnumerateArray());
        Assert.Equal($"{_fx.Version}", entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString());
        var manifest = image.Json(entry.GetProperty("digest").GetString()!);
        var config = image.Json(manifest.GetProperty("config").GetProperty("digest").GetString()!);
        Assert.Equal("amd64", config.GetProperty("architecture").GetString());
        Assert.Equal("linux", config.GetProperty("os").GetString());

        // Two layers: the base (libraries, certificates, users), then the executable alone.
        var layers = manifest.GetProperty("layers").EnumerateArray().Select(l => image.Layer(l.GetProperty("digest").GetString()!)).ToList();
        Assert.Equal(2, layers.Count);
        var app = layers[1];
        Assert.Equal(new[] { "app", "app/streamfarm" }, app.Keys.Order(StringComparer.Ordinal).ToArray());
        var exe = app["app/streamfarm"];
        Assert.True(exe.Mode.HasFlag(UnixFileMode.UserExecute) && exe.Mode.HasFlag(UnixFileMode.OtherExecute), $"mode {exe.Mode}");
        Assert.Equal("\u007fELF"u8.ToArray(), exe.Head);
        Assert.InRange(exe.Length, 5_000_000, 60_000_000); // native, not a .NET assembly
        var basis = layers[0];
        foreach (var file in new[] { "lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libssl.so.3", "lib/x86_64-linux-gnu/libcrypto.so.3", "etc/ssl/certs/ca-certificates.crt", "etc/passwd" })
        {
            Assert.True(basis.ContainsKey(file), $"base layer has no {file}");
        }

        var c = config.GetProperty("config");
        Assert.Equal(new[] { "/app/streamfarm" }, Strings(c.GetProperty("Entrypoint")));
        Assert.Equal(new[] { "node", "--help" }, Strings(c.GetProperty("Cmd")));
        Assert.Equal("1654", c.GetProperty("User").GetString()); // not root
        Assert.Equal(
            new[] { "7400/tcp", "7401/tcp", "7401/udp", "7402/tcp", "7443/tcp", "7480/tcp", "7481/tcp" },
            c.GetProperty("ExposedPorts").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray());
        var labels = c.GetProperty("Labels");
        Assert.Equal(_fx.Version, labels.GetProperty("org.opencontainers.image.version").GetString());
        Assert.Equal(PackagingFixture.SourceUrl, labels.GetProperty("org.opencontainers.image.source").GetString());
        Assert.Matches("^[0-9a-f]{40}$", labels.GetProperty("org.opencontainers.image.revision").GetString());
        Assert.Equal("StreamFarm", labels.GetProperty("org.opencontainers.image.title").GetString());
        Assert.False(labels.TryGetProperty("org.opencontainers.image.licenses", out _)); // not decided yet
    }

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    [Fact]
    public async Task ContainerImage_UnderPodman_RunsAThreeServerFarm_ThatCarriesAPublication()
    {
        var archive = await _fx.ImageAsync();
        await using var podman = new Podman(_fx.Dir("podman"));
        var load = await podman.RunAsync(["load", "-i", archive]);
        Assert.True(load.Code == 0, $"podman load: {load.Output}");
        var image = $"streamfarm:{_fx.Version}";

        // Without arguments the image prints the node command's help.
        var help = await podman.RunAsync(["run", "--rm", .. Podman.RunOptions, image]);
        Assert.True(help.Code == 0, help.Output);
        Assert.Contains("--gossip-key", help.Stdout, StringComparison.Ordinal);

        var key = (await podman.RunAsync(["run", "--rm", .. Podman.RunOptions, image, "keygen"])).Stdout.Trim();
        Assert.Equal(32, Convert.FromBase64String(key).Length);
        foreach (var n in Servers)
        {
            var run = await podman.RunAsync(
            [
                "run", "-d", "--name", $"s{n}", .. Podman.RunOptions, image,
                "node", "--id", $"s{n}", "--listen", $"127.0.62.{n}", "--seeds", "127.0.62.2,127.0.62.3",
                "--gossip-key", key, "--preset", "local", "--farm-name", "packaging-test",
            ]);
            Assert.True(run.Code == 0, $"podman run s{n}: {run.Output}");
        }

        // The farm table, as a client container reads it from each server over RTTP: three
        // servers alive. (Over HTTP, /farm, once the native executable's HTTP side works: see
        // docs/operations.md 1.1, "Known issue".)
        foreach (var n in Servers)
        {
            try
            {
                await Poll.UntilAsync(async () =>
                {
                    var farm = await podman.RunAsync(["run", "--rm", .. Podman.RunOptions, image, "farm", "--server", $"127.0.62.{n}:7400", "--json", "--once"]);
                    if (farm.Code != 0)
                    {
                        return false;
                    }

                    using var table = JsonDocument.Parse(farm.Stdout);
                    return table.RootElement.EnumerateArray().Count(s => s.GetProperty("liveness").GetString() == "alive" && s.GetProperty("state").GetString() == "active") == 3;
                }, $"s{n} sees three servers alive and active", TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}; its log: {await podman.LogsAsync($"s{n}")}", e);
            }
        }

        // A publication at s2 reaches a subscriber at s4 (a route between two containers): the
        // image of the first value, then the second value as an update.
        var pub = await podman.RunAsync(["run", "--rm", .. Podman.RunOptions, image, "pub", "/PACKAGING/price", "bid=1", "--ack", "--server", "127.0.62.2:7400"]);
        Assert.True(pub.Code == 0, pub.Output);
        await using (var sub = Exec.Start(Podman.Program, [.. podman.Global, "run", "--rm", .. Podman.RunOptions, image, "sub", "/PACKAGING/price", "--server", "127.0.62.4:7400", "--json", "--count", "2"], _fx.Root))
        {
            await sub.WaitForOutputAsync("\"image\"", TimeSpan.FromSeconds(30));
            pub = await podman.RunAsync(["run", "--rm", .. Podman.RunOptions, image, "pub", "/PACKAGING/price", "bid=2", "--ack", "--server", "127.0.62.3:7400"]);
            Assert.True(pub.Code == 0, pub.Output);
            Assert.Equal(0, await sub.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            var lines = sub.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(new[] { "image", "update" }, lines.Select(l => l.GetProperty("type").GetString()!).ToArray());
            Assert.Equal(new[] { "1", "2" }, lines.Select(l => l.GetProperty("fields").GetProperty("bid").GetString()!).ToArray());
            Assert.All(lines, l => Assert.Equal("s4", l.GetProperty("server").GetString()));
        }

        // podman stop sends SIGTERM: the node stops gracefully and exits 0.
        var stop = await podman.RunAsync(["stop", "-t", "15", "s4"]);
        Assert.True(stop.Code == 0, stop.Output);
        var exit = await podman.RunAsync(["inspect", "s4", "--format", "{{.State.ExitCode}}"]);
        Assert.Equal("0", exit.Stdout.Trim());
        Assert.Contains("stopped", await podman.LogsAsync("s4"), StringComparison.Ordinal);
    }
}

/// <summary>
/// What the packaging tests share: a temporary folder, the product's version, and the container
/// image tarball, built once on first use.
/// </summary>
public sealed class PackagingFixture : IDisposable
{
    /// <summary>Given to the image build as its source address: the image's source label shows it.</summary>
    public const string SourceUrl = "https://git.example/streamfarm";

    private readonly string _temp = Path.Combine(Path.GetTempPath(), "streamfarm-packaging-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly Lazy<Task<string>> _image;

    public PackagingFixture()
    {
        Directory.CreateDirectory(_temp);
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "StreamFarm.slnx")))
        {
            dir = Path.GetDirectoryName(dir.TrimEnd('/')) ?? throw new InvalidOperationException("StreamFarm.slnx not found above " + AppContext.BaseDirectory);
        }

        Root = dir;
        // .../bin/<configuration>/net10.0/
        Configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd('/')))!;
        // The version of the streamfarm this test project was built with ("0.1.0+<commit>").
        Version = FileVersionInfo.GetVersionInfo(Path.Combine(AppContext.BaseDirectory, "streamfarm.dll")).ProductVersion!.Split('+')[0];
        _image = new Lazy<Task<string>>(BuildImageAsync);
    }

    public string Root { get; }

    public string Configuration { get; }

    public string Version { get; }

    public string Dir(string name) => Directory.CreateDirectory(Path.Combine(_temp, name)).FullName;

    public Task<string> ImageAsync() => _image.Value;

    private async Task<string> BuildImageAsync()
    {
        var archive = Path.Combine(Dir("image"), "streamfarm.tar");
        var build = await Exec.RunAsync("bash", ["scripts/container.sh", "build-offline", "--out", archive, "--", $"-p:StreamFarmSourceUrl={SourceUrl}"], Root, TimeSpan.FromMinutes(8));
        Assert.True(build.Code == 0, $"scripts/container.sh build-offline failed: {build.Output}");
        return archive;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_temp, recursive: true);
        }
        catch (IOException)
        {
            // a mount left behind by a container runtime: the machine's temp cleaning takes it
        }
    }
}

/// <summary>
/// Debian's podman as root, with its own storage under the test's folder (nothing touches the
/// machine's images or containers), removed with everything it ran.
/// </summary>
internal sealed class Podman : IAsyncDisposable
{
    /// <summary>
    /// For every container: the host's network (servers on 127.0.62.x, as processes would be),
    /// never a pull (the image is loaded), and resource limits given explicitly: left to podman it
    /// asks for RLIMIT_NOFILE 1048576 and RLIMIT_NPROC above its own, which a runtime may only
    /// set with CAP_SYS_RESOURCE, and this sandbox's root does not have it
    /// (<c>crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted</c>).
    /// </summary>
    public static readonly string[] RunOptions = ["--pull=never", "--network", "host", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];

    public Podman(string dir)
    {
        // runc, not Debian's default crun: crun 1.8 refuses this kernel's cgroups layout
        // (v1 controllers beside a cgroup2 mount: "cgroups in hybrid mode not supported").
        Global =
        [
            "--root", Path.Combine(dir, "storage"), "--runroot", Path.Combine(dir, "run"), "--tmpdir", Path.Combine(dir, "tmp"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc",
        ];
        Dir = dir;
    }

    public const string Program = "podman";

    public string[] Global { get; }

    private string Dir { get; }

    public Task<Exec.Result> RunAsync(IEnumerable<string> args) => Exec.RunAsync(Program, [.. Global, .. args], Dir, TimeSpan.FromMinutes(1));

    public async Task<string> LogsAsync(string container) => (await RunAsync(["logs", container])).Output;

    public async ValueTask DisposeAsync()
    {
        await RunAsync(["rm", "--all", "--force", "--time", "2"]);

        // conmon runs `podman container cleanup` (with these options) after each container ends:
        // wait for those, or they write into the folder after the fixture removed it.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline && StillRunningHere())
        {
            await Task.Delay(100);
        }
    }

    private bool StillRunningHere()
    {
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (int.TryParse(Path.GetFileName(proc), out _) && File.ReadAllText(Path.Combine(proc, "cmdline")).Contains(Dir, StringComparison.Ordinal))
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // the process ended meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                // not ours to read
            }
        }

        return false;
    }
}

/// <summary>Child processes with captured output and a deadline.</summary>
internal static class Exec
{
    public sealed record Result(int Code, string Stdout, string Stderr)
    {
        public string Output => $"exit {Code}\nstdout: {Stdout}\nstderr: {Stderr}";
    }

    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, string dir, TimeSpan patience, IDictionary<string, string>? env = null)
    {
        await using var p = Start(file, args, dir, env);
        var code = await p.WaitForExitAsync(patience);
        return new Result(code, p.Stdout, p.Stderr);
    }

    public static CliProcess Start(string file, IEnumerable<string> args, string dir, IDictionary<string, string>? env = null) =>
        CliProcess.StartProgram(file, args, dir, env);
}

/// <summary>An OCI image layout in a tar (what ContainerArchiveOutputPath writes), read in memory.</summary>
internal sealed class OciArchive
{
    private readonly Dictionary<string, byte[]> _files = [];

    public JsonElement Index => JsonDocument.Parse(_files["index.json"]).RootElement;

    public static OciArchive Read(string path)
    {
        var archive = new OciArchive();
        using var stream = File.OpenRead(path);
        using var tar = new TarReader(stream);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.DataStream is { } data)
            {
                using var copy = new MemoryStream();
                data.CopyTo(copy);
                archive._files[entry.Name.TrimStart('.', '/')] = copy.ToArray();
            }
        }

        return archive;
    }

    public JsonElement Json(string digest) => JsonDocument.Parse(Blob(digest)).RootElement;

    /// <summary>A gzip layer's entries by name: mode, length and the first four bytes of each.</summary>
    public Dictionary<string, (UnixFileMode Mode, long Length, byte[] Head)> Layer(string digest)
    {
        var entries = new Dictionary<string, (UnixFileMode, long, byte[])>();
        using var gzip = new GZipStream(new MemoryStream(Blob(digest)), CompressionMode.Decompress);
        using var tar = new TarReader(gzip);
        while (tar.GetNextEntry() is { } entry)
        {
            var head = new byte[Math.Min(4, entry.Length)];
            entry.DataStream?.ReadExactly(head);
            var name = (entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name).TrimEnd('/');
            if (name.Length > 0)
            {
                entries[name] = (entry.Mode, entry.Length, head);
            }
        }

        return entries;
    }

    private byte[] Blob(string digest) => _files["blobs/sha256/" + digest["sha256:".Length..]];
}
