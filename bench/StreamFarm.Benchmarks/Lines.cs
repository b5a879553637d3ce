using System.Text;

namespace StreamFarm.Benchmarks;

/// <summary>Typical lines of a price feed.</summary>
internal static class Lines
{
    public const string EscapedFields = "bid=1.2702 ask=1.2704 bidSize=1000000 askSize=2500000 venue=LSE\\sIOB time=12:00:01.250";

    public const string Pub = "PUB /FX/GBPUSD " + EscapedFields;

    public const string Update = "UPDATE /FX/GBPUSD 1732861234000 42 @merged=3 " + EscapedFields;

    /// <summary>About <paramref name="size"/> bytes of complete lines: PUB, UPDATE, IMAGE, SUB and PING.</summary>
    public static byte[] Bulk(int size, out int count)
    {
        var sb = new StringBuilder(size + 256);
        count = 0;
        var seq = 1UL;
        while (true)
        {
            var line = (count % 5) switch
            {
                0 => $"PUB /FX/PAIR{count % 97} bid=1.{2700 + (count % 13)} ask=1.{2702 + (count % 11)} venue=LSE\\sIOB",
                1 => $"UPDATE /FX/PAIR{count % 97} 1732861234000 {seq++} bid=1.{2700 + (count % 7)} ask=1.2704",
                2 => $"IMAGE /EQ/VOD.L 1732861234000 {seq++} last=72.34 bid=72.30 ask=72.36 volume=1234567 name=Vodafone\\sGroup",
                3 => "SUB /FX/GBPUSD /FX/EURUSD /EQ/VOD.L",
                _ => $"PING {count}",
            };
            if (sb.Length + line.Length + 1 > size)
            {
                return Encoding.UTF8.GetBytes(sb.ToString());
            }

            sb.Append(line).Append('\n');
            count++;
        }
    }
}
