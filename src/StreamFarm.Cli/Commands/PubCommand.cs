using System.CommandLine;
using System.Text;
using StreamFarm.Client;
using StreamFarm.Protocol;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm pub SUBJECT field=value...</c> publishes once; without fields it streams standard
/// input, one update per line, each line <c>field=value ...</c> with RTTP escaping. With
/// <c>--ack</c> every publication is sent with <c>@ack=id</c> and the command waits for each
/// acknowledgement: a refusal (<c>NACK</c>) or a connection that ends first exits 1.
/// </summary>
internal static class PubCommand
{
    public static Command Create()
    {
        var subject = new Argument<string>("subject") { Description = "the subject, like /FX/GBPUSD" };
        var fields = new Argument<string[]>("field=value") { Arity = ArgumentArity.ZeroOrMore, Description = "fields to publish (values as typed; no escaping needed)" };
        var image = new Option<bool>("--image") { Description = "replace the whole record (PUBIMAGE) instead of changing fields" };
        var ack = new Option<bool>("--ack") { Description = "wait for each publication's acknowledgement (its subject's owner applied it); exit 1 with the code and text if one is refused" };
        var connector = new Connector();
        var command = new Command("pub", "Publish fields to a subject, once or from standard input") { subject, fields, image, ack };
        connector.AddTo(command);
        command.SetAction(async (p, cancel) =>
        {
            var name = p.GetValue(subject)!;
            if (!SubjectSyntax.IsValidSubject(Encoding.UTF8.GetBytes(name)))
            {
                throw new CliError($"'{name}' is not a subject (like /FX/GBPUSD)", ExitCodes.Usage);
            }

            var given = p.GetValue(fields) ?? [];
            var parsed = ParseArguments(given);
            var acknowledged = p.GetValue(ack);
            var options = new PublishOptions { Replace = p.GetValue(image), Acknowledge = acknowledged };
            if (connector.UsesService(p) && parsed.Count > 0)
            {
                await using var client = await connector.ConnectFarmAsync(p, "streamfarm-pub", [], cancel);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                timeout.CancelAfter(ConfirmTimeout);
                try
                {
                    await client.PublishAsync(name, parsed, options, timeout.Token);
                    await client.WhenAcknowledgedAsync(timeout.Token); // one hop: the client asked the owner for an acknowledgement itself
                    await client.PingAsync(timeout.Token);
                }
                catch (PublishException e)
                {
                    throw Refused(client.ServerId ?? "the farm", e);
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    throw new CliError($"no acknowledgement for {name} within {ConfirmTimeout.TotalSeconds:0} s");
                }

                connector.Step(p, $"published {parsed.Count} field(s) to {name} on {client.ServerId}{(acknowledged ? ", acknowledged" : "")}");
                return ExitCodes.Success;
            }

            await using var connection = await connector.ConnectAsync(p, "streamfarm-pub", cancel);
            if (parsed.Count > 0)
            {
                if (acknowledged)
                {
                    await AcknowledgedAsync(connection, connection.BeginPublish(name, parsed, options.Replace), cancel);
                }
                else
                {
                    await connection.PublishAsync(name, parsed, options.Replace, cancel);
                }

                await ConfirmAsync(connection, cancel);
                connector.Step(p, $"published {parsed.Count} field(s) to {name}{(acknowledged ? ", acknowledged" : "")}");
                return ExitCodes.Success;
            }

            if (acknowledged)
            {
                var receipts = new Queue<PublishReceipt>();
                var count = 0;
                while (await Console.In.ReadLineAsync(cancel) is { } line)
                {
                    if (string.IsNullOrWhiteSpace(line))
                    {
                        continue;
                    }

                    var receipt = connection.BeginPublish(name, ParseWireFields(line, ++count), options.Replace);
                    receipts.Enqueue(receipt);
                    await receipt.Sent; // backpressure: the connection's window of unacknowledged publications
                    while (receipts.TryPeek(out var first) && first.Acknowledged.IsCompleted)
                    {
                        await AcknowledgedAsync(connection, receipts.Dequeue(), cancel); // the first refusal ends the command
                    }
                }

                while (receipts.TryDequeue(out var rest))
                {
                    await AcknowledgedAsync(connection, rest, cancel);
                }

                await ConfirmAsync(connection, cancel);
                connector.Step(p, $"published {count} update(s) to {name}, each acknowledged");
                return ExitCodes.Success;
            }

            var lines = 0;
            while (await Console.In.ReadLineAsync(cancel) is { } line)
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }

                var fromLine = ParseWireFields(line, ++lines);
                await connection.PublishAsync(name, fromLine, p.GetValue(image), cancel);
                ThrowIfRejected(connection);
            }

            await ConfirmAsync(connection, cancel);
            connector.Step(p, $"published {lines} update(s) to {name}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Waits for one publication's ACK; a NACK, a lost connection or no answer in time is a runtime failure (exit 1).</summary>
    private static async Task AcknowledgedAsync(RttpConnection connection, PublishReceipt receipt, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(ConfirmTimeout);
        try
        {
            await receipt.Acknowledged.WaitAsync(timeout.Token);
        }
        catch (PublishException e)
        {
            throw Refused(connection.ServerId, e);
        }
        catch (RttpConnectionException e)
        {
            throw new CliError($"server {connection.ServerId}: {e.Message}");
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new CliError($"server {connection.ServerId} did not acknowledge a publication to {receipt.Subject} within {ConfirmTimeout.TotalSeconds:0} s");
        }
    }

    private static CliError Refused(string server, PublishException e) => e switch
    {
        PublishRejectedException r => new CliError($"server {server} refused a publication to {r.Subject}: {r.CodeName} {r.Text}".TrimEnd() + (r.RetryAfter is { } a ? $" (retry after {a.TotalMilliseconds:0} ms)" : "")),
        _ => new CliError($"server {server}: {e.Message}"),
    };

    /// <summary>Waits until the server has handled every line sent (PING/PONG), then reports any ERR.</summary>
    private static async Task ConfirmAsync(RttpConnection connection, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(ConfirmTimeout);
        try
        {
            await connection.PingAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new CliError($"server {connection.ServerId} did not confirm within 10 s");
        }
        catch (RttpConnectionException)
        {
            ThrowIfRejected(connection);
            throw new CliError($"server {connection.ServerId} closed the connection before confirming");
        }

        ThrowIfRejected(connection);
        await connection.CloseAsync("published");
    }

    private static void ThrowIfRejected(RttpConnection connection)
    {
        while (connection.Messages.TryRead(out var m))
        {
            if (m.Kind == RttpMessageKind.Error)
            {
                throw new CliError($"server {connection.ServerId} refused: {m.Code} {m.Text}");
            }

            if (m.Kind is RttpMessageKind.Bye or RttpMessageKind.Move)
            {
                throw new CliError($"server {connection.ServerId} closed the session: {m.Code} {m.Text}");
            }
        }
    }

    private static List<KeyValuePair<string, string>> ParseArguments(string[] args)
    {
        var list = new List<KeyValuePair<string, string>>();
        foreach (var a in args)
        {
            var eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !SubjectSyntax.IsValidName(Encoding.UTF8.GetBytes(a[..eq])))
            {
                throw new CliError($"'{a}' is not field=value (field names match [A-Za-z_][A-Za-z0-9_.-]*)", ExitCodes.Usage);
            }

            list.Add(KeyValuePair.Create(a[..eq], a[(eq + 1)..]));
        }

        return list;
    }

    private static List<KeyValuePair<string, string>> ParseWireFields(string line, int number)
    {
        var list = new List<KeyValuePair<string, string>>();
        foreach (var token in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = token.IndexOf('=', StringComparison.Ordinal);
            var bytes = Encoding.UTF8.GetBytes(token);
            if (eq <= 0 || !SubjectSyntax.IsValidName(bytes.AsSpan(0, Encoding.UTF8.GetByteCount(token.AsSpan(0, eq)))))
            {
                throw new CliError($"standard input line {number}: '{token}' is not field=value");
            }

            var value = bytes.AsSpan(Encoding.UTF8.GetByteCount(token.AsSpan(0, eq)) + 1);
            if (FieldEscaping.Validate(value) != RttpErrorCode.None)
            {
                throw new CliError($"standard input line {number}: bad escape in '{token}' (use \\s for a space)");
            }

            list.Add(KeyValuePair.Create(token[..eq], FieldEscaping.Unescape(value)));
        }

        return list;
    }
}
