using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using ARSoft.Tools.Net.Dns.DynamicUpdate;

namespace StreamFarm.Dns.Sync;

/// <summary>
/// RFC 2136 updates signed with TSIG, built and sent with ARSoft.Tools.Net (a library is right for
/// this rare, correctness-bound path; the responder's hot path has its own codec). Updates and reads
/// go over TCP: no size limit for a large farm, no retransmitted datagrams. A client per call: the
/// server's idle timeout never finds a pooled connection half-closed.
/// </summary>
public sealed class ArsoftUpdateClient(IPEndPoint server, TsigKey? key, TimeSpan timeout) : IDnsUpdateClient
{
    /// <summary>How far our clock may be from the server's (RFC 8945's recommended fudge).</summary>
    private static readonly TimeSpan Fudge = TimeSpan.FromMinutes(5);

    public IPEndPoint Server { get; } = server;

    public async Task<UpdateResult> UpdateAsync(ZoneUpdate update, CancellationToken cancel)
    {
        var message = Build(update);
        if (key is not null)
        {
            message.TSigOptions = new TSigRecord(DomainName.Parse(key.Name), Algorithm(key.Algorithm), DateTime.UtcNow, Fudge, message.TransactionID, ReturnCode.NoError, null, key.Secret);
        }

        DnsUpdateMessage? response;
        try
        {
            using var client = Client();
            response = await client.SendUpdateAsync(message, cancel);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException or InvalidOperationException or ArgumentException)
        {
            return new UpdateResult(UpdateStatus.Failed, $"{Server}: {e.Message}");
        }

        if (response is null)
        {
            return new UpdateResult(UpdateStatus.Failed, $"{Server}: no answer within {timeout.TotalSeconds:0.#} s");
        }

        var rcode = response.ReturnCode;
        if (rcode == ReturnCode.NoError && key is not null && response.TSigOptions?.ValidationResult != ReturnCode.NoError)
        {
            return new UpdateResult(UpdateStatus.Failed, $"{Server}: the answer's TSIG signature does not verify");
        }

        return rcode switch
        {
            ReturnCode.NoError => UpdateResult.Ok,
            ReturnCode.YXDomain or ReturnCode.YXRRSet or ReturnCode.NxDomain or ReturnCode.NXRRSet =>
                new UpdateResult(UpdateStatus.PrerequisiteFailed, $"{Server}: prerequisite not met ({Name(rcode)})"),
            _ => new UpdateResult(UpdateStatus.Failed, $"{Server}: {Name(rcode)}{TsigError(response)}"),
        };
    }

    public async Task<IReadOnlyList<string>> ReadTxtAsync(string name, CancellationToken cancel)
    {
        DnsMessage? response;
        try
        {
            using var client = Client();
            response = await client.ResolveAsync(DomainName.Parse(name), RecordType.Txt, RecordClass.INet, new DnsQueryOptions { IsRecursionDesired = false }, cancel);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException or InvalidOperationException or ArgumentException)
        {
            throw new IOException($"{Server}: {e.Message}", e);
        }

        if (response is null)
        {
            throw new IOException($"{Server}: no answer within {timeout.TotalSeconds:0.#} s");
        }

        if (response.ReturnCode is not (ReturnCode.NoError or ReturnCode.NxDomain))
        {
            throw new IOException($"{Server}: {Name(response.ReturnCode)} for {name} TXT");
        }

        return [.. response.AnswerRecords.OfType<TxtRecord>().Where(r => r.Name.Equals(DomainName.Parse(name))).Select(r => string.Concat(r.TextParts))];
    }

    /// <summary>The update message: for each change its prerequisites, then delete-RRset and add-records.</summary>
    internal static DnsUpdateMessage Build(ZoneUpdate update)
    {
        var message = new DnsUpdateMessage { ZoneName = DomainName.Parse(update.Zone) };
        var ttl = (int)update.Ttl.TotalSeconds;
        foreach (var change in update.Changes)
        {
            var name = DomainName.Parse(change.Key.Name);
            var type = Type(change.Key.Kind);
            if (change.Before is { } before)
            {
                if (before.Count == 0)
                {
                    message.Prequisites.Add(new RecordNotExistsPrequisite(name, type));
                }
                else
                {
                    // RFC 2136 2.4.2: the TTL of a prerequisite record is zero.
                    foreach (var value in before)
                    {
                        message.Prequisites.Add(new RecordExistsValueDependantPrequisite(Record(name, change.Key.Kind, 0, value)));
                    }
                }
            }

            message.Updates.Add(new DeleteAllRecordsUpdate(name, type));
            foreach (var value in change.After)
            {
                message.Updates.Add(new AddRecordUpdate(Record(name, change.Key.Kind, ttl, value)));
            }
        }

        return message;
    }

    private DnsClient Client() =>
        new([Server.Address], [new TcpClientTransport(Server.Port)], true, (int)timeout.TotalMilliseconds);

    private static DnsRecordBase Record(DomainName name, RecordKind kind, int ttl, string value) => kind switch
    {
        RecordKind.A => new ARecord(name, ttl, IPAddress.Parse(value)),
        RecordKind.Aaaa => new AaaaRecord(name, ttl, IPAddress.Parse(value)),
        _ => new TxtRecord(name, ttl, value),
    };

    private static RecordType Type(RecordKind kind) => kind switch
    {
        RecordKind.A => RecordType.A,
        RecordKind.Aaaa => RecordType.Aaaa,
        _ => RecordType.Txt,
    };

    private static TSigAlgorithm Algorithm(string name) => name switch
    {
        "hmac-md5" => TSigAlgorithm.Md5,
        "hmac-sha1" => TSigAlgorithm.Sha1,
        "hmac-sha224" => TSigAlgorithm.Sha224,
        "hmac-sha256" => TSigAlgorithm.Sha256,
        "hmac-sha384" => TSigAlgorithm.Sha384,
        "hmac-sha512" => TSigAlgorithm.Sha512,
        _ => throw new ArgumentException($"unknown TSIG algorithm {name}"),
    };

    private static string Name(ReturnCode rcode) => rcode switch
    {
        ReturnCode.FormatError => "FORMERR",
        ReturnCode.ServerFailure => "SERVFAIL",
        ReturnCode.NxDomain => "NXDOMAIN",
        ReturnCode.NotImplemented => "NOTIMP",
        ReturnCode.Refused => "REFUSED (is the update allowed for this key and address?)",
        ReturnCode.YXDomain => "YXDOMAIN",
        ReturnCode.YXRRSet => "YXRRSET",
        ReturnCode.NXRRSet => "NXRRSET",
        ReturnCode.NotAuthoritive => "NOTAUTH",
        ReturnCode.NotZone => "NOTZONE",
        _ => $"rcode {(int)rcode}",
    };

    /// <summary>TSIG errors (RFC 8945: 16 BADSIG, 17 BADKEY, 18 BADTIME, 22 BADTRUNC) travel in the TSIG record.</summary>
    private static string TsigError(DnsMessageBase response) => (int?)response.TSigOptions?.Error switch
    {
        null or 0 => "",
        16 => " (TSIG BADSIG: wrong secret or algorithm)",
        17 => " (TSIG BADKEY: the server does not know this key name)",
        18 => " (TSIG BADTIME: clocks differ by more than 5 minutes)",
        var n => $" (TSIG error {n})",
    };
}
