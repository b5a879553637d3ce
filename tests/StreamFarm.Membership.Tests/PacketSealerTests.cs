using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.Membership.Tests;

/// <summary>
/// AES-GCM sealing of gossip packets: authenticity (key, farm name, every byte), freshness (age,
/// replay window) and the drop counters operators see.
/// </summary>
public sealed class PacketSealerTests
{
    private const int Max = 1400;
    private static readonly byte[] K1 = Key(1);
    private static readonly byte[] K2 = Key(2);
    private static readonly byte[] Payload = "a compound packet of gossip"u8.ToArray();

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Open_SealedWithSharedKey_GivesPayloadBack()
    {
        var sender = Sealer(K1);
        var receiver = Sealer(K1);

        var packet = sender.Seal(Payload);

        Assert.Equal(Payload, receiver.Open(packet, Max));
        Assert.Equal(0, receiver.DroppedTotal);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(32)]
    public void Open_EveryAesKeySize_GivesPayloadBack(int keyBytes)
    {
        var key = Key(9, keyBytes);

        var packet = Sealer(key).Seal(Payload);

        Assert.Equal(Payload, Sealer(key).Open(packet, Max));
    }

    [Fact]
    public void Seal_EmptyPayload_OpensToEmptyAndHasOnlyOverhead()
    {
        var packet = Sealer(K1).Seal([]);

        Assert.Equal(PacketSealer.Overhead, packet.Length);
        Assert.Equal(Array.Empty<byte>(), Sealer(K1).Open(packet, Max));
    }

    [Fact]
    public void Seal_SamePayloadTwice_DifferentPacketsWithoutPlaintext()
    {
        var sender = Sealer(K1);

        var first = sender.Seal(Payload);
        var second = sender.Seal(Payload);

        Assert.Equal(Payload.Length + PacketSealer.Overhead, first.Length);
        Assert.NotEqual(first, second);
        Assert.True(first.AsSpan().IndexOf(Payload.AsSpan(0, 8)) < 0, "the payload is visible in the packet");
    }

    [Fact]
    public void Open_KeyReceiverDoesNotHave_DroppedAsUnknownKey()
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K2);

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.UnknownKey));
        Assert.Equal(1, receiver.DroppedTotal);
    }

    [Fact]
    public void Open_CiphertextByteFlipped_DroppedAsAuthFailed()
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);
        packet[40] ^= 0x01;

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.AuthFailed));
        Assert.Equal(1, receiver.DroppedTotal);
    }

    [Fact]
    public void Open_AnyByteFlipped_NeverOpensAndCountedByWhereItWas()
    {
        var original = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);

        for (var i = 0; i < original.Length; i++)
        {
            var packet = original.ToArray();
            packet[i] ^= 0x80;
            Assert.Null(receiver.Open(packet, Max));
        }

        // Byte 0 is the version, 1-4 the key id; the rest (nonce, ciphertext, tag) is authenticated.
        Assert.Equal(1, receiver.Dropped(DropReason.BadLength));
        Assert.Equal(4, receiver.Dropped(DropReason.UnknownKey));
        Assert.Equal(original.Length - 5, receiver.Dropped(DropReason.AuthFailed));
        Assert.Equal(0, receiver.Dropped(DropReason.Replayed));

        // The failed attempts did not use up the genuine packet.
        Assert.Equal(Payload, receiver.Open(original, Max));
    }

    [Fact]
    public void Open_TagTruncatedAndPaddedBack_DroppedAsAuthFailed()
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);
        Array.Clear(packet, packet.Length - 16, 16);

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.AuthFailed));
    }

    [Fact]
    public void Open_OtherFarmName_DroppedAsAuthFailed()
    {
        var packet = Sealer(K1, farm: "farm-a").Seal(Payload);
        var receiver = Sealer(K1, farm: "farm-b");

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.AuthFailed));
        Assert.Equal(1, receiver.DroppedTotal);
    }

    [Fact]
    public void Open_SamePacketTwice_SecondDroppedAsReplayed()
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);

        Assert.NotNull(receiver.Open(packet, Max));
        Assert.Null(receiver.Open(packet, Max));
        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(2, receiver.Dropped(DropReason.Replayed));
        Assert.Equal(2, receiver.DroppedTotal);
    }

    [Fact]
    public void Open_TwoSendersWithEqualCounters_BothAccepted()
    {
        var a = Sealer(K1);
        var b = Sealer(K1);
        var receiver = Sealer(K1);

        Assert.NotNull(receiver.Open(a.Seal(Payload), Max));
        Assert.NotNull(receiver.Open(b.Seal(Payload), Max));

        Assert.Equal(0, receiver.DroppedTotal);
    }

    [Fact]
    public void Open_SameBootIdAfterRestart_OldCountersDroppedAsReplayed()
    {
        // A sender must not reuse a boot id: its counter restarts and its packets look replayed.
        var receiver = Sealer(K1);
        var first = new PacketSealer(new Keyring([K1]), "streamfarm", _time, bootId: 42);
        Assert.NotNull(receiver.Open(first.Seal(Payload), Max));

        var restarted = new PacketSealer(new Keyring([K1]), "streamfarm", _time, bootId: 42);

        Assert.Null(receiver.Open(restarted.Seal(Payload), Max));
        Assert.Equal(1, receiver.Dropped(DropReason.Replayed));
    }

    [Fact]
    public void Open_SixtyOneSecondsOld_DroppedAsStale()
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);

        _time.Advance(TimeSpan.FromSeconds(61));

        Assert.Null(receiver.Open(packet, Max));
        Assert.Equal(1, receiver.Dropped(DropReason.Stale));
        Assert.Equal(1, receiver.DroppedTotal);
    }

    [Fact]
    public void Open_FiftyNineSecondsOld_Accepted()
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);

        _time.Advance(TimeSpan.FromSeconds(59));

        Assert.Equal(Payload, receiver.Open(packet, Max));
    }

    [Fact]
    public void Open_SenderClockSixtyOneSecondsAhead_DroppedAsStale()
    {
        var ahead = new FakeTimeProvider(_time.GetUtcNow() + TimeSpan.FromSeconds(61));
        var packet = new PacketSealer(new Keyring([K1]), "streamfarm", ahead).Seal(Payload);
        var receiver = Sealer(K1);

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.Stale));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(PacketSealer.Overhead - 1)]
    public void Open_ShorterThanOverhead_DroppedAsBadLength(int length)
    {
        var packet = Sealer(K1).Seal([])[..length];
        var receiver = Sealer(K1);

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.BadLength));
    }

    [Fact]
    public void Open_LongerThanMax_DroppedAsBadLength()
    {
        var packet = Sealer(K1).Seal(new byte[Max]);
        var receiver = Sealer(K1);

        Assert.Null(receiver.Open(packet, Max));
        Assert.Equal(1, receiver.Dropped(DropReason.BadLength));

        // The same packet within a larger limit is fine: the limit was the only reason.
        Assert.NotNull(receiver.Open(packet, packet.Length));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(255)]
    public void Open_WrongVersionByte_DroppedAsBadLength(byte version)
    {
        var packet = Sealer(K1).Seal(Payload);
        var receiver = Sealer(K1);
        packet[0] = version;

        Assert.Null(receiver.Open(packet, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.BadLength));
    }

    [Fact]
    public void Open_SixtyFourPacketsInReverse_EachAcceptedExactlyOnce()
    {
        var sender = Sealer(K1);
        var receiver = Sealer(K1);
        var packets = Enumerable.Range(0, 64).Select(i => sender.Seal([(byte)i])).ToList();

        for (var i = 63; i >= 0; i--)
        {
            Assert.Equal(new[] { (byte)i }, receiver.Open(packets[i], Max));
        }

        foreach (var p in packets)
        {
            Assert.Null(receiver.Open(p, Max));
        }

        Assert.Equal(64, receiver.Dropped(DropReason.Replayed));
        Assert.Equal(64, receiver.DroppedTotal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Open_ShuffledWithinTheWindowAndDuplicated_EachAcceptedExactlyOnce(int seed)
    {
        var random = new Random(seed);
        var sender = Sealer(K1);
        var receiver = Sealer(K1);
        var packets = Enumerable.Range(0, 64).Select(i => sender.Seal([(byte)i])).ToList();
        var delivery = packets.Concat(packets).Concat(packets.Take(10)).OrderBy(_ => random.Next()).ToList();

        var accepted = new List<byte>();
        foreach (var p in delivery)
        {
            if (receiver.Open(p, Max) is { } payload)
            {
                accepted.Add(payload[0]);
            }
        }

        Assert.Equal(Enumerable.Range(0, 64).Select(i => (byte)i), accepted.Order());
        Assert.Equal(delivery.Count - 64, receiver.Dropped(DropReason.Replayed));
    }

    [Fact]
    public void Open_LateByMoreThanTheWindow_DroppedAsReplayed()
    {
        var sender = Sealer(K1);
        var receiver = Sealer(K1);
        var late = sender.Seal([0]);
        var packets = Enumerable.Range(1, 64).Select(i => sender.Seal([(byte)i])).ToList();
        foreach (var p in packets)
        {
            Assert.NotNull(receiver.Open(p, Max));
        }

        // 64 newer packets arrived first: too old to tell apart from a replay.
        Assert.Null(receiver.Open(late, Max));

        Assert.Equal(1, receiver.Dropped(DropReason.Replayed));
    }

    [Fact]
    public void Open_LateByExactlyTheWindowMinusOne_Accepted()
    {
        var sender = Sealer(K1);
        var receiver = Sealer(K1);
        var late = sender.Seal([0]);
        foreach (var p in Enumerable.Range(1, 63).Select(i => sender.Seal([(byte)i])).ToList())
        {
            Assert.NotNull(receiver.Open(p, Max));
        }

        Assert.NotNull(receiver.Open(late, Max));
        Assert.Null(receiver.Open(late, Max));
    }

    [Fact]
    public void Open_LongGapInCounters_OldWindowForgottenNewOneWorks()
    {
        var sender = Sealer(K1);
        var receiver = Sealer(K1);
        var early = sender.Seal([1]);
        var skipped = Enumerable.Range(0, 200).Select(_ => sender.Seal([2])).ToList();
        var late = sender.Seal([3]);
        var later = sender.Seal([4]);

        Assert.NotNull(receiver.Open(early, Max));
        Assert.NotNull(receiver.Open(later, Max));
        Assert.NotNull(receiver.Open(late, Max)); // one below the highest

        Assert.Null(receiver.Open(skipped[0], Max)); // far below: treated as a replay
        Assert.Null(receiver.Open(later, Max));
        Assert.Equal(2, receiver.Dropped(DropReason.Replayed));
    }

    [Fact]
    public void Dropped_OneOfEachKind_EachCountedUnderItsOwnReason()
    {
        var sender = Sealer(K1);
        var receiver = Sealer(K1);
        var stale = sender.Seal(Payload);
        _time.Advance(TimeSpan.FromSeconds(120));
        var replayed = sender.Seal(Payload);
        var tampered = sender.Seal(Payload);
        tampered[^1] ^= 0xFF;
        var wrongVersion = sender.Seal(Payload);
        wrongVersion[0] = 9;

        Assert.NotNull(receiver.Open(replayed, Max));
        Assert.Null(receiver.Open(replayed, Max)); // Replayed
        Assert.Null(receiver.Open(stale, Max)); // Stale
        Assert.Null(receiver.Open(tampered, Max)); // AuthFailed
        Assert.Null(receiver.Open(wrongVersion, Max)); // BadLength
        Assert.Null(receiver.Open(Sealer(K2).Seal(Payload), Max)); // UnknownKey
        Assert.Null(receiver.Open(new byte[3], Max)); // BadLength

        Assert.Equal(2, receiver.Dropped(DropReason.BadLength));
        Assert.Equal(1, receiver.Dropped(DropReason.UnknownKey));
        Assert.Equal(1, receiver.Dropped(DropReason.AuthFailed));
        Assert.Equal(1, receiver.Dropped(DropReason.Replayed));
        Assert.Equal(1, receiver.Dropped(DropReason.Stale));
        Assert.Equal(0, receiver.Dropped(DropReason.Malformed));
        Assert.Equal(6, receiver.DroppedTotal);
        Assert.Equal(0, sender.DroppedTotal);
    }

    [Fact]
    public void Open_RandomBytes_NeverThrowsNeverOpens()
    {
        var random = new Random(60);
        var receiver = Sealer(K1);
        var keyId = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(keyId, Keyring.KeyId(K1));
        for (var i = 0; i < 5000; i++)
        {
            var packet = new byte[random.Next(0, 200)];
            random.NextBytes(packet);
            if (packet.Length >= 5 && i % 2 == 0)
            {
                packet[0] = 1; // right version and key id: down to the authentication
                keyId.CopyTo(packet, 1);
            }

            Assert.Null(receiver.Open(packet, Max));
        }

        Assert.Equal(5000, receiver.DroppedTotal);
        Assert.True(receiver.Dropped(DropReason.AuthFailed) > 0);
    }

    private PacketSealer Sealer(byte[] key, string farm = "streamfarm") => new(new Keyring([key]), farm, _time);

    private static byte[] Key(byte seed, int length = 32) => [.. Enumerable.Range(0, length).Select(i => (byte)((i * 31) + seed))];
}
