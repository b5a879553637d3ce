using System.CommandLine;
using System.Text.Json;
using System.Threading.Channels;
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

    /// <summary>
    /// Through the service name: one stream per subject (<c>FarmClient.SubscribeAsync(subject)</c>),
    /// merged in arrival order; the farm client moves between servers and the streams go on. Errors
    /// (about no subject's data) arrive on the client's message channel.
    /// </summary>
    private static async Task<int> ThroughFarmAsync(ParseResult p, Connector connector, string[] subjects, Printer printer, int? wanted, CancellationToken cancel)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var merged = Channel.CreateBounded<SubjectMessage>(new BoundedChannelOptions(10_000) { SingleReader = true });
        var readers = new List<Task>();
        await using var client = await connector.ConnectFarmAsync(p, "streamfarm-sub", [], cancel, c =>
        {
            foreach (var subject in subjects.Distinct(StringComparer.Ordinal))
            {
                readers.Add(FollowAsync(c, subject, merged.Writer, stop.Token));
            }

            readers.Add(PrintErrorsAsync(c, merged.Writer, stop.Token));
        });
        var received = 0;
        try
        {
            await foreach (var m in merged.Reader.ReadAllAsync(cancel))
            {
                printer.Print(m);
                if (m is not SubjectStatusChange && ++received == wanted)
                {
                    return ExitCodes.Success;
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
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(readers);
        }

        return ExitCodes.RuntimeFailure;
    }

    private static async Task FollowAsync(FarmClient client, string subject, ChannelWriter<SubjectMessage> merged, CancellationToken cancel)
    {
        try
        {
            await foreach (var m in client.SubscribeAsync(subject, cancel))
            {
                await merged.WriteAsync(m, cancel);
            }
        }
        catch (OperationCanceledException)
        {
            // done
        }
        catch (RttpConnectionException e)
        {
            merged.TryComplete(e); // the client gave up
        }
    }

    private static async Task PrintErrorsAsync(FarmClient client, ChannelWriter<SubjectMessage> merged, CancellationToken cancel)
    {
        try
        {
            await foreach (var fm in client.Messages.ReadAllAsync(cancel))
            {
                if (fm.Message.Kind == RttpMessageKind.Error)
                {
                    Console.Error.WriteLine($"streamfarm: server {fm.Server} error {fm.Message.Code}: {fm.Message.Text}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // done
        }
        catch (RttpConnectionException e)
        {
            merged.TryComplete(e);
        }
    }

    private sealed class Printer(bool json)
    {
        private readonly Stream _out = Console.OpenStandardOutput();

        public void Print(SubjectMessage message)
        {
            switch (message)
            {
                case SubjectImage i:
                    Print(new RttpMessage { Kind = RttpMessageKind.Image, Subject = i.Subject, Epoch = i.Epoch, Seq = i.Seq, Fields = i.Fields }, i.Server, i.Continuity);
                    break;
                case SubjectUpdate u:
                    Print(new RttpMessage { Kind = RttpMessageKind.Update, Subject = u.Subject, Epoch = u.Epoch, Seq = u.Seq, Merged = u.Merged, Fields = u.Fields }, u.Server, Continuity.Continuous);
                    break;
                case SubjectStatusChange st:
                    Print(new RttpMessage { Kind = RttpMessageKind.Status, Subject = st.Subject, Status = st.Status, Code = System.Text.Encoding.ASCII.GetString(st.Status.WireName()) }, st.Server, Continuity.Continuous);
                    break;
            }
        }

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
