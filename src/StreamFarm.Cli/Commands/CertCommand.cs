using System.CommandLine;
using System.Net;
using StreamFarm.Server.Tls;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm cert</c>: a development CA (made once in the directory, then reused) and a server
/// certificate signed by it, as PEM files for <c>node --tls-cert/--tls-key</c> and for clients'
/// <c>--ca</c> (docs/operations.md, TLS).
/// </summary>
internal static class CertCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "directory of the CA and the certificates (made if missing)", DefaultValueFactory = _ => "certs" };
        var name = new Option<string>("--name") { Description = "the certificate's name: its file names and its CN", Required = true };
        var hosts = new Option<string[]>("--host") { Description = "a DNS name or IP address the certificate is valid for (repeat the option; default: the name)", AllowMultipleArgumentsPerToken = true };
        var days = new Option<int>("--days") { Description = "days the certificate is valid", DefaultValueFactory = _ => 365 };
        var command = new Command("cert", "Make a development CA (once) and a server certificate signed by it, as PEM files") { dir, name, hosts, days };
        command.SetAction(p =>
        {
            var n = p.GetValue(name)!;
            if (n.Length is 0 or > 64 || !n.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            {
                throw new CliError($"name '{n}' must be 1 to 64 characters of A-Z a-z 0-9 _ - .", ExitCodes.Usage);
            }

            var given = p.GetValue(hosts) is { Length: > 0 } h ? h : [n];
            var ips = given.Select(x => IPAddress.TryParse(x, out var ip) ? ip : null).OfType<IPAddress>().ToList();
            var names = given.Where(x => !IPAddress.TryParse(x, out _)).ToList();
            var d = p.GetValue(days);
            if (d is < 1 or > 3650)
            {
                throw new CliError("days must be between 1 and 3650", ExitCodes.Usage);
            }

            var (cert, key) = DevCertificates.Issue(p.GetValue(dir)!, n, names, ips, TimeSpan.FromDays(d));
            Console.Out.WriteLine($"certificate {cert}");
            Console.Out.WriteLine($"key         {key}");
            Console.Out.WriteLine($"CA          {Path.Combine(Path.GetDirectoryName(cert)!, "ca.pem")}  (give it to clients: --ca)");
            return ExitCodes.Success;
        });
        return command;
    }
}
