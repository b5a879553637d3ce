using System.CommandLine;
using StreamFarm.Client;
using StreamFarm.Protocol;

namespace StreamFarm.Cli.Commands;

/// <summary><c>streamfarm farm</c>: shows the farm table, refreshing in place (or once, as JSON).</summary>
internal static class FarmCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "print the table as JSON (the same as HTTP /farm)" };
        var once = new Option<bool>("--once") { Description = "print once and exit" };
        var connector = new Connector();
        var command = new Command("farm", "Show the farm table as a server sees it") { json, once };
        connector.AddTo(command);
        command.SetAction(async (p, cancel) =>
        {
            if (connector.UsesService(p))
            {
                await using var client = await connector.ConnectFarmAsync(p, "streamfarm-farm", [], cancel);
                Print(client.Table, p.GetValue(json), inPlace: false);
                if (p.GetValue(once))
                {
                    return ExitCodes.Success;
                }

                try
                {
                    while (!cancel.IsCancellationRequested)
                    {
                        await Task.Delay(500, cancel);
                        Print(client.Table, p.GetValue(json), inPlace: !p.GetValue(json) && !Console.IsOutputRedirected);
                    }
                }
                catch (OperationCanceledException)
                {
                    return ExitCodes.Success;
                }
            }

            await using var connection = await connector.ConnectAsync(p, "streamfarm-farm", cancel);
            Print(connection.Farm, p.GetValue(json), inPlace: false);
            if (p.GetValue(once))
            {
                await connection.CloseAsync("done");
                return ExitCodes.Success;
            }

            try
            {
                await foreach (var m in connection.Messages.ReadAllAsync(cancel))
                {
                    if (m.Kind == RttpMessageKind.Farm)
                    {
                        Print(m.Farm!, p.GetValue(json), inPlace: !p.GetValue(json) && !Console.IsOutputRedirected);
                    }
                    else if (m.Kind is RttpMessageKind.Bye or RttpMessageKind.Move)
                    {
                        Console.Error.WriteLine($"streamfarm: server {connection.ServerId} closed the session: {m.Code} {m.Text}");
                        return ExitCodes.RuntimeFailure;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return ExitCodes.Success;
            }

            return ExitCodes.RuntimeFailure;
        });
        return command;
    }

    private static void Print(FarmSnapshot farm, bool json, bool inPlace)
    {
        if (json)
        {
            Console.Out.WriteLine(FarmJson.Serialize(farm));
            return;
        }

        if (inPlace)
        {
            Console.Out.Write("\u001b[H\u001b[2J");
        }

        Console.Out.WriteLine($"farm table v{farm.Version}, {farm.Members.Count} server(s), {DateTime.Now:HH:mm:ss}");
        Console.Out.WriteLine($"{"ID",-12} {"GROUP",-10} {"STATE",-9} {"LIVENESS",-9} {"USERS",7} {"CAPACITY",9}  TCP");
        foreach (var m in farm.Members)
        {
            Console.Out.WriteLine($"{m.Id,-12} {m.Group,-10} {m.State,-9} {m.Liveness,-9} {m.Users,7} {m.Capacity,9}  {m.Tcp}");
        }
    }
}
