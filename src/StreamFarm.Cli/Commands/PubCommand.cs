using System.CommandLine;
using System.Text;
using StreamFarm.Client;
using StreamFarm.Protocol;

namespace StreamFarm.Cli.Commands;

/// <summary>
/// <c>streamfarm pub SUBJECT field=value...</c> publishes once; without fields it streams standard
/// input, one update per line, each line <c>field=value ...</c> with RTTP escaping.
/// </summary>
internal static class PubCommand
{
    public static Command Create()
    {
        var subject = new Argument<string>("subject") { Description = "the subject, like /FX/GBPUSD" };
        var fields = new Argument<string[]>("field=value") { Arity = ArgumentArity.ZeroOrMore, Description = "fields to publish (values as typed; no escaping needed)" };
        var image = new Option<bool>("--image") { Description = "replace the whole record (PUBIMAGE) instead of changing fields" };
        var connector = new Connector();
        var command = new Command("pub", "Publish fields to a subject, once or from standard input") { subject, fields, image };
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
            if (connector.UsesService(p) && parsed.Count > 0)
            {
                await using var client = await connector.ConnectFarmAsync(p, "streamfarm-pub", [], cancel);
                await client.PublishAsync(name, parsed, p.GetValue(image), cancel);
                await client.PingAsync(cancel);
                connector.Step(p, $"published {parsed.Count} field(s) to {name} on {client.ServerId}");
                return ExitCodes.Success;
            }

            await using var connection = await connector.ConnectAsync(p, "streamfarm-pub", cancel);
            if (parsed.Count > 0)
            {
                await connection.PublishAsync(name, parsed, p.GetValue(image), cancel);
                await ConfirmAsync(connection, cancel);
                connector.Step(p, $"published {parsed.Count} field(s) to {name}");
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

    /// <summary>Waits until the server has handled every line sent (PING/PONG), then reports any ERR.</summary>
    private static async Task ConfirmAsync(RttpConnection connection, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
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
