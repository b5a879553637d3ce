namespace StreamFarm.Dns;

/// <summary>What <see cref="DnsQueryReader"/> found in a datagram.</summary>
internal enum QueryStatus
{
    /// <summary>A well-formed standard query.</summary>
    Ok,

    /// <summary>Not worth an answer: too short for a header, or a response (QR set).</summary>
    Drop,

    /// <summary>Malformed: answer FORMERR (header only).</summary>
    FormErr,

    /// <summary>An opcode other than QUERY: answer NOTIMP.</summary>
    NotImp,

    /// <summary>EDNS version other than 0: answer BADVERS.</summary>
    BadVers,
}

/// <summary>A parsed query: offsets into the datagram, no copies.</summary>
internal struct DnsQuery
{
    public ushort Id;
    public bool RecursionDesired;
    public bool CheckingDisabled;

    /// <summary>Offset and length of the question name (wire form, original case).</summary>
    public int NameOffset;
    public int NameLength;

    /// <summary>Where the question (name, type, class) ends.</summary>
    public int QuestionEnd;
    public ushort Type;
    public ushort Class;

    public bool HasEdns;
    public ushort EdnsUdpSize;
    public bool DnssecOk;
}
