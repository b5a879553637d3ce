using System.Buffers.Binary;
using System.Text;

namespace StreamFarm.Membership;

/// <summary>
/// Binary codec of membership messages: a packet is a sequence of <c>[type u8][length u16][body]</c>.
/// Hand-written because the format is ours and must be strict: every length is checked against
/// what is left before it is trusted, and any inconsistency rejects the whole packet.
/// Room for later builds (a rolling upgrade runs two builds in one farm, docs/operations.md
/// "Upgrading a farm"): a message of a type this build does not know is skipped by its length, and
/// bytes after the fields this build knows in a message's body are ignored. A later build adds
/// fields there (for the state exchange's members: after the member list, in member order) and new
/// message types, and this build keeps working with it. What this build does know stays strict.
/// </summary>
internal static class MessageCodec
{
    public const int MaxString = 255;

    /// <summary>Encodes one message (header included) into a new array.</summary>
    public static byte[] Encode(Message message)
    {
        var body = new List<byte>(64);
        var type = Write(body, message);
        var result = new byte[3 + body.Count];
        result[0] = (byte)type;
        if (body.Count > ushort.MaxValue)
        {
            throw new InvalidOperationException("message too large for a packet; use the stream");
        }

        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(1), (ushort)body.Count);
        body.CopyTo(result, 3);
        return result;
    }

    /// <summary>Encodes a message for the stream (no 64 KiB limit): <c>[type u8][length u32][body]</c>.</summary>
    public static byte[] EncodeStream(Message message)
    {
        var body = new List<byte>(1024);
        var type = Write(body, message);
        var result = new byte[5 + body.Count];
        result[0] = (byte)type;
        BinaryPrimitives.WriteUInt32BigEndian(result.AsSpan(1), (uint)body.Count);
        body.CopyTo(result, 5);
        return result;
    }

    /// <summary>
    /// Decodes every message of a packet; false (and nothing) if it is empty or any part is
    /// malformed. Messages of types this build does not know are skipped (true, perhaps with none).
    /// </summary>
    public static bool TryDecodePacket(ReadOnlySpan<byte> packet, List<Message> messages)
    {
        if (packet.IsEmpty)
        {
            return false;
        }

        var start = messages.Count;
        while (!packet.IsEmpty)
        {
            if (packet.Length < 3)
            {
                messages.RemoveRange(start, messages.Count - start);
                return false;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(packet[1..]);
            var type = (MessageType)packet[0];
            if (length > packet.Length - 3)
            {
                messages.RemoveRange(start, messages.Count - start);
                return false;
            }

            if (Enum.IsDefined(type))
            {
                if (!TryDecodeBody(type, packet.Slice(3, length), out var message) || message is PushPull)
                {
                    messages.RemoveRange(start, messages.Count - start);
                    return false;
                }

                messages.Add(message);
            }

            // else: a later build's message type, skipped whole
            packet = packet[(3 + length)..];
        }

        return true;
    }

    /// <summary>Decodes one stream message (a push-pull), checking the length against <paramref name="maxBytes"/>.</summary>
    public static bool TryDecodeStream(ReadOnlySpan<byte> data, int maxBytes, out PushPull? message)
    {
        message = null;
        if (data.Length < 5 || data.Length > maxBytes)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(data[1..]);
        if (length != data.Length - 5 || !TryDecodeBody((MessageType)data[0], data[5..], out var m) || m is not PushPull pp)
        {
            return false;
        }

        message = pp;
        return true;
    }

    private static MessageType Write(List<byte> b, Message message)
    {
        switch (message)
        {
            case Ping p:
                U32(b, p.Seq); Str(b, p.TargetId); Str(b, p.FromId); Str(b, p.FromGossip);
                return MessageType.Ping;
            case IndirectPing p:
                U32(b, p.Seq); Str(b, p.TargetId); Str(b, p.TargetGossip); Str(b, p.FromId); Str(b, p.FromGossip);
                return MessageType.IndirectPing;
            case Ack a:
                U32(b, a.Seq); Str(b, a.FromId);
                return MessageType.Ack;
            case Nack n:
                U32(b, n.Seq); Str(b, n.FromId);
                return MessageType.Nack;
            case Alive a:
                Member(b, a.Member);
                return MessageType.Alive;
            case Suspect s:
                Str(b, s.Id); U64(b, s.Incarnation); Str(b, s.FromId);
                return MessageType.Suspect;
            case Dead d:
                Str(b, d.Id); U64(b, d.Incarnation); Str(b, d.FromId); b.Add(d.Left ? (byte)1 : (byte)0);
                return MessageType.Dead;
            case PushPull pp:
                b.Add((byte)((pp.Join ? 1 : 0) | (pp.Reply ? 2 : 0) | (pp.InlineReply ? 4 : 0)));
                Str(b, pp.FromId); Str(b, pp.FromGossip); U32(b, (uint)pp.Members.Count);
                foreach (var m in pp.Members)
                {
                    Member(b, m);
                }

                return pp.Reply ? MessageType.PushPullReply : MessageType.PushPull;
            default:
                throw new ArgumentException($"unknown message {message.GetType().Name}", nameof(message));
        }
    }

    private static bool TryDecodeBody(MessageType type, ReadOnlySpan<byte> body, out Message message)
    {
        var r = new Reader(body);
        message = null!;
        switch (type)
        {
            case MessageType.Ping:
                if (r.U32(out var seq) && r.Str(out var target) && r.Str(out var from) && r.Str(out var gossip))
                {
                    message = new Ping(seq, target, from, gossip);
                }

                break;
            case MessageType.IndirectPing:
                if (r.U32(out seq) && r.Str(out target) && r.Str(out var targetGossip) && r.Str(out from) && r.Str(out gossip))
                {
                    message = new IndirectPing(seq, target, targetGossip, from, gossip);
                }

                break;
            case MessageType.Ack:
                if (r.U32(out seq) && r.Str(out from))
                {
                    message = new Ack(seq, from);
                }

                break;
            case MessageType.Nack:
                if (r.U32(out seq) && r.Str(out from))
                {
                    message = new Nack(seq, from);
                }

                break;
            case MessageType.Alive:
                if (r.Member(out var member))
                {
                    message = new Alive(member);
                }

                break;
            case MessageType.Suspect:
                if (r.Str(out var id) && r.U64(out var inc) && r.Str(out from))
                {
                    message = new Suspect(id, inc, from);
                }

                break;
            case MessageType.Dead:
                if (r.Str(out id) && r.U64(out inc) && r.Str(out from) && r.U8(out var left) && left <= 1)
                {
                    message = new Dead(id, inc, from, left == 1);
                }

                break;
            case MessageType.PushPull:
            case MessageType.PushPullReply:
                if (r.U8(out var flags) && r.Str(out from) && r.Str(out gossip) && r.U32(out var count) && count <= (uint)body.Length / 8)
                {
                    var members = new List<MemberInfo>((int)count);
                    for (var i = 0; i < count; i++)
                    {
                        if (!r.Member(out member))
                        {
                            return false;
                        }

                        members.Add(member);
                    }

                    message = new PushPull((flags & 1) != 0, (flags & 2) != 0, from, gossip, members, (flags & 4) != 0);
                }

                break;
        }

        return message is not null; // anything after the known fields: a later build's, ignored
    }

    private static void U32(List<byte> b, uint v)
    {
        Span<byte> s = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(s, v);
        b.AddRange(s);
    }

    private static void U64(List<byte> b, ulong v)
    {
        Span<byte> s = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(s, v);
        b.AddRange(s);
    }

    private static void Str(List<byte> b, string v)
    {
        var bytes = Encoding.UTF8.GetBytes(v);
        if (bytes.Length > MaxString)
        {
            throw new ArgumentException($"'{v[..20]}...' is longer than {MaxString} bytes");
        }

        b.Add((byte)bytes.Length);
        b.AddRange(bytes);
    }

    private static void Member(List<byte> b, MemberInfo m)
    {
        Str(b, m.Id); Str(b, m.Gossip); U64(b, m.Incarnation); b.Add((byte)m.Liveness); Str(b, m.State); Str(b, m.Group);
        U32(b, (uint)Math.Max(0, m.Capacity)); U32(b, (uint)Math.Max(0, m.Users)); Str(b, m.Tcp); Str(b, m.Ws); Str(b, m.Http); b.Add(m.Observer ? (byte)1 : (byte)0);
        Str(b, m.External); Str(b, m.Tls); Str(b, m.Route); Str(b, m.Wss);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public bool U8(out byte v)
        {
            v = 0;
            if (_data.IsEmpty)
            {
                return false;
            }

            v = _data[0];
            _data = _data[1..];
            return true;
        }

        public bool U32(out uint v)
        {
            v = 0;
            if (_data.Length < 4)
            {
                return false;
            }

            v = BinaryPrimitives.ReadUInt32BigEndian(_data);
            _data = _data[4..];
            return true;
        }

        public bool U64(out ulong v)
        {
            v = 0;
            if (_data.Length < 8)
            {
                return false;
            }

            v = BinaryPrimitives.ReadUInt64BigEndian(_data);
            _data = _data[8..];
            return true;
        }

        public bool Str(out string v)
        {
            v = "";
            if (_data.IsEmpty || _data[0] > _data.Length - 1)
            {
                return false;
            }

            var n = _data[0];
            var bytes = _data.Slice(1, n);
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
            {
                return false;
            }

            v = Encoding.UTF8.GetString(bytes);
            _data = _data[(1 + n)..];
            return true;
        }

        public bool Member(out MemberInfo m)
        {
            m = null!;
            if (Str(out var id) && Str(out var gossip) && U64(out var inc) && U8(out var live) && live <= (byte)Liveness.Left
                && Str(out var state) && Str(out var group) && U32(out var cap) && U32(out var users)
                && Str(out var tcp) && Str(out var ws) && Str(out var http) && U8(out var observer) && observer <= 1
                && Str(out var external) && Str(out var tls) && Str(out var route) && Str(out var wss)
                && id.Length > 0 && cap <= int.MaxValue && users <= int.MaxValue)
            {
                m = new MemberInfo
                {
                    Id = id, Gossip = gossip, Incarnation = inc, Liveness = (Liveness)live, State = state, Group = group,
                    Capacity = (int)cap, Users = (int)users, Tcp = tcp, Ws = ws, Http = http, Observer = observer == 1,
                    External = external, Tls = tls, Route = route, Wss = wss,
                };
                return true;
            }

            return false;
        }
    }
}
