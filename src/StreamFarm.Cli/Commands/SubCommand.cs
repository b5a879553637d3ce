using System.CommandLine;
using System.Text.Json;
using StreamFarm.Client;
using StreamFarm.Protocol;

namespace StreamFarm.Cli.Commands;

/// <summary><c>streamfarm sub SUBJECT...</c>: prints images and updates as they arrive.</summary>
internal static class SubCommand
{
    public static Command Create()
    {
        var subjects = new Argument<string[]>("subject") { Arity = ArgumentArity.OneOrMore, Description = "subjects to subscribe to, like /FX/GBPUSD" };
        var json = new Option<bool>("--json") { Description = "one JSON object per line: type, subject, epoch, seq, fields, server" };
        var count = new Option<int?>("--count") { Description = "exit 0 after N images and updates" };
        var connector = new Connector();
        var command = new Command("sub", "Subscribe to subjects and print their images and updates") { subjects, json, count };
        connector.AddTo(command);
        command.SetAction(async (p, cancel) =>
        {
            var wanted = p.GetValue(count);
            if (wanted is < 1)
            {
                throw new CliError("--count must be at least 1", ExitCodes.Usage);
            }

            if (connector.UsesService(p))
            {
                return await ThroughFarmAsync(p, connector, p.GetValue(subjects)!, new Printer(p.GetValue(json)), wanted, cancel);
            }

            await using var connection = await connector.ConnectAsync(p, "streamfarm-sub", cancel);
            await connection.SubscribeAsync(p.GetValue(subjects)!, cancel);
            connector.Step(p, $"subscribed to {string.Join(' ', p.GetValue(subjects)!)}");
            var printer = new Printer(p.GetValue(json));
            var received = 0;
            try
            {
                await foreach (var m in connection.Messages.ReadAllAsync(cancel))
                {
                    switch (m.Kind)
                    {
                        case RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status:
                            printer.Print(m, connection.ServerId, Continuity.Continuous);
                            if (m.Kind != RttpMessageKind.Status && ++received == wanted)
                            {
                                await connection.CloseAsync("count reached");
                                return ExitCodes.Success;
                            }

                            break;
                        case RttpMessageKind.Error:
                            Console.Error.WriteLine($"streamfarm: server error {m.Code}: {m.Text}");
                            if (m.Error.IsFatal())
                            {
                                return ExitCodes.RuntimeFailure;
                            }

                            break;
                        case RttpMessageKind.Bye or RttpMessageKind.Move:
                            Console.Error.WriteLine($"streamfarm: server {connection.ServerId} closed the session: {m.Kind.ToString().ToUpperInvariant()} {m.Code} {m.Text}".TrimEnd());
                            return ExitCodes.RuntimeFailure;
                        case RttpMessageKind.Farm:
                            connector.Step(p, $"farm table v{m.Farm!.Version}: {m.Farm.Members.Count} server(s)");
                            break;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return ExitCodes.Success; // Ctrl-C
            }
            catch (RttpConnectionException e)
            {
                throw new CliError($"connection to {connection.Endpoint} failed: {e.Message}");
            }

            Console.Error.WriteLine($"streamfarm: connection to {connection.Endpoint} closed");
            return ExitCodes.RuntimeFailure;
        });
        return command;
    }

    /// <summary>Through the service name: the farm client moves between servers; the stream goes on.</summary>
    private static async Task<int> ThroughFarmAsync(ParseResult p, Connector connector, string[] subjects, Printer printer, int? wanted, CancellationToken cancel)
    {
        await using var client = await connector.ConnectFarmAsync(p, "streamfarm-sub", subjects, cancel);
        var received = 0;
        try
        {
            await foreach (var fm in client.Messages.ReadAllAsync(cancel))
            {
                var m = fm.Message;
                if (m.Kind is RttpMessageKind.Image or RttpMessageKind.Update or RttpMessageKind.Status)
                {
                    printer.Print(m, fm.Server, fm.Continuity);
                    if (m.Kind != RttpMessageKind.Status && ++received == wanted)
                    {
                        return ExitCodes.Success;
                    }
                }
                else if (m.Kind == RttpMessageKind.Error)
                {
                    Console.Error.WriteLine($"streamfarm: server {fm.Server} error {m.Code}: {m.Text}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            return ExitCodes.Success;
        }
        catch (RttpConnectionException e)
        {
            throw new CliError(e.Message);
        }

        return ExitCodes.RuntimeFailure;
    }

    private sealed class Printer(bool json)
    {
        private readonly Stream _out = Console.OpenStandardOutput();

        public void Print(RttpMessage m, string server, Continuity continuity)
        {
            if (json)
            {
                using (var w = new Utf8JsonWriter(_out))
                {
                    w.WriteStartObject();
                    w.WriteString("type", m.Kind switch { RttpMessageKind.Image => "image", RttpMessageKind.Update => "update", _ => "status" });
                    w.WriteString("subject", m.Subject);
                    if (m.Kind == RttpMessageKind.Status)
                    {
                        w.WriteString("status", m.Code);
                    }
                    else
                    {
                        w.WriteNumber("epoch", m.Epoch);
                        w.WriteNumber("seq", m.Seq);
                        if (m.Merged > 1)
                        {
                            w.WriteNumber("merged", m.Merged);
                        }

                        if (continuity != Continuity.Continuous)
                        {
                            w.WriteString("continuity", continuity.ToString().ToLowerInvariant());
                        }

                        w.WriteStartObject("fields");
                        foreach (var (k, v) in m.Fields)
                        {
                            w.WriteString(k, v);
                        }

                        w.WriteEndObject();
                    }

                    w.WriteString("server", server);
                    w.WriteEndObject();
                }

                _out.Write("\n"u8);
                _out.Flush();
                return;
            }

            var time = DateTime.Now.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);
            var line = m.Kind switch
            {
                RttpMessageKind.Status => $"{time} STATUS {m.Subject} {m.Code}",
                _ => $"{time} {(m.Kind == RttpMessageKind.Image ? "IMAGE " : "UPDATE")} {m.Subject} #{m.Seq}{(m.Merged > 1 ? $" (merged {m.Merged})" : "")}{(continuity == Continuity.Continuous ? "" : $" [{continuity.ToString().ToLowerInvariant()} on {server}]")} {string.Join("  ", m.Fields.Select(f => $"{f.Key}={f.Value}"))}",
            };
            Console.Out.WriteLine(line);
        }
    }
}
