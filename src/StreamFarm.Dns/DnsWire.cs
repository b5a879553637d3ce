namespace StreamFarm.Dns;

/// <summary>DNS wire constants (RFC 1035, 1995, 2782, 5936, 6891, 8482) used by the responder.</summary>
internal static class DnsWire
{
    public const int HeaderBytes = 12;
    public const int MaxNameBytes = 255;
    public const int MaxLabelBytes = 63;
    public const int ClassicUdpBytes = 512;

    /// <summary>RFC 9715/DNS flag day 2020: the largest UDP answer we send.</summary>
    public const int MaxUdpBytes = 1232;

    public const ushort TypeA = 1;
    public const ushort TypeNs = 2;
    public const ushort TypeSoa = 6;
    public const ushort TypeHinfo = 13;
    public const ushort TypeAaaa = 28;
    public const ushort TypeSrv = 33;
    public const ushort TypeOpt = 41;
    public const ushort TypeIxfr = 251;
    public const ushort TypeAxfr = 252;
    public const ushort TypeAny = 255;
    public const ushort ClassIn = 1;
    public const ushort ClassAny = 255;

    public const int RcodeNoError = 0;
    public const int RcodeFormErr = 1;
    public const int RcodeServFail = 2;
    public const int RcodeNxDomain = 3;
    public const int RcodeNotImp = 4;
    public const int RcodeRefused = 5;

    /// <summary>NOTAUTH (9): what Knot answers a zone transfer it does not allow.</summary>
    public const int RcodeNotAuth = 9;

    /// <summary>BADVERS (16): the low four bits go in the header, the rest in the OPT record.</summary>
    public const int RcodeBadVers = 16;
}
