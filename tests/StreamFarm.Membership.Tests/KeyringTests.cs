using Microsoft.Extensions.Time.Testing;

namespace StreamFarm.Membership.Tests;

/// <summary>The farm's gossip keys: validation, and rotation without a moment in which members cannot talk.</summary>
public sealed class KeyringTests
{
    private static readonly byte[] K1 = Key(1);
    private static readonly byte[] K2 = Key(2);
    private static readonly byte[] K3 = Key(3, 16);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Constructor_SeveralKeys_FirstIsPrimaryAllOpen()
    {
        var ring = new Keyring([K1, K2, K3]);

        Assert.Same(K1, ring.Primary);
        Assert.Equal([K1, K2, K3], ring.All);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(17)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void Constructor_BadKeyLength_Throws(int length)
    {
        Assert.Throws<ArgumentException>(() => new Keyring([new byte[length]]));
        Assert.Throws<ArgumentException>(() => new Keyring([K1, new byte[length]]));
    }

    [Fact]
    public void Constructor_NoKeys_Throws()
    {
        Assert.Throws<ArgumentException>(() => new Keyring([]));
    }

    [Theory]
    [InlineData(15)]
    [InlineData(20)]
    [InlineData(33)]
    public void Add_BadKeyLength_ThrowsAndKeepsKeys(int length)
    {
        var ring = new Keyring([K1]);

        Assert.Throws<ArgumentException>(() => ring.Add(new byte[length]));
        Assert.Throws<ArgumentException>(() => ring.UsePrimary(new byte[length]));

        Assert.Same(K1, ring.Primary);
        Assert.Single(ring.All);
    }

    [Fact]
    public void Add_KeyAlreadyThere_NotDuplicated()
    {
        var ring = new Keyring([K1]);

        ring.Add(K2);
        ring.Add([.. K2]); // equal bytes, another array

        Assert.Equal(2, ring.All.Count);
        Assert.Same(K1, ring.Primary);
    }

    [Fact]
    public void UsePrimary_NewKey_AddedInFrontOldKeysKept()
    {
        var ring = new Keyring([K1]);

        ring.UsePrimary(K2);

        Assert.Same(K2, ring.Primary);
        Assert.Equal([K2, K1], ring.All);
    }

    [Fact]
    public void UsePrimary_KeyAlreadyThere_MovedToFrontOnce()
    {
        var ring = new Keyring([K1, K2, K3]);

        ring.UsePrimary(K3);

        Assert.Equal([K3, K1, K2], ring.All);
    }

    [Fact]
    public void Remove_PrimaryKey_ThrowsAndKeepsIt()
    {
        var ring = new Keyring([K1, K2]);

        Assert.Throws<InvalidOperationException>(() => ring.Remove(K1));
        Assert.Throws<InvalidOperationException>(() => ring.Remove([.. K1]));

        Assert.Equal([K1, K2], ring.All);
    }

    [Fact]
    public void Remove_SecondaryKey_Gone()
    {
        var ring = new Keyring([K1, K2]);

        ring.Remove([.. K2]);

        Assert.Equal([K1], ring.All);
    }

    [Fact]
    public void Remove_UnknownKey_NoChange()
    {
        var ring = new Keyring([K1, K2]);

        ring.Remove(K3);

        Assert.Equal([K1, K2], ring.All);
    }

    [Fact]
    public void All_TakenBeforeAChange_IsNotChangedUnderTheReader()
    {
        var ring = new Keyring([K1]);
        var before = ring.All;

        ring.Add(K2);

        Assert.Single(before);
        Assert.Equal(2, ring.All.Count);
    }

    [Fact]
    public void FromBase64_ValidKeys_ParsedInOrderWithWhitespaceTrimmed()
    {
        var ring = Keyring.FromBase64([" " + Convert.ToBase64String(K1) + "\n", Convert.ToBase64String(K3)]);

        Assert.Equal(K1, ring.Primary);
        Assert.Equal(2, ring.All.Count);
        Assert.Equal(K3, ring.All[1]);
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("@@@@")]
    [InlineData("abc")] // bad padding
    [InlineData("\u00e9t\u00e9")]
    public void FromBase64_Garbage_ThrowsArgumentException(string text)
    {
        Assert.Throws<ArgumentException>(() => Keyring.FromBase64([text]));
        Assert.Throws<ArgumentException>(() => Keyring.FromBase64([Convert.ToBase64String(K1), text]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("AAAA")] // 3 bytes
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA==")] // 16 bytes: valid
    public void FromBase64_KeyLengthChecked(string text)
    {
        if (Convert.FromBase64String(text).Length == 16)
        {
            Assert.Equal(16, Keyring.FromBase64([text]).Primary.Length);
        }
        else
        {
            Assert.Throws<ArgumentException>(() => Keyring.FromBase64([text]));
        }
    }

    [Fact]
    public void NewKeyBase64_Called_ThirtyTwoRandomBytes()
    {
        var a = Keyring.NewKeyBase64();
        var b = Keyring.NewKeyBase64();

        Assert.Equal(32, Convert.FromBase64String(a).Length);
        Assert.NotEqual(a, b);
        Assert.Equal(32, Keyring.FromBase64([a]).Primary.Length);
    }

    [Fact]
    public void KeyId_DifferentKeys_DifferentIdsSameKeySameId()
    {
        Assert.NotEqual(Keyring.KeyId(K1), Keyring.KeyId(K2));
        Assert.Equal(Keyring.KeyId(K1), Keyring.KeyId([.. K1]));
    }

    [Fact]
    public void Rotation_AddSwitchRemove_MembersTalkThroughoutAndOldKeyLocksOut()
    {
        var ringA = new Keyring([K1]);
        var ringB = new Keyring([K1, K2]);
        var ringOld = new Keyring([K1]); // a member that missed the rotation
        var a = new PacketSealer(ringA, "streamfarm", _time);
        var b = new PacketSealer(ringB, "streamfarm", _time);
        var old = new PacketSealer(ringOld, "streamfarm", _time);

        // Step 0: B already holds the new key; everyone still seals with k1.
        AssertTalk(a, b, "B holds k2, both seal with k1");

        // Step 1: B switches to k2, A learns k2.
        ringB.UsePrimary(K2);
        ringA.Add(K2);
        AssertTalk(a, b, "B seals with k2, A with k1");

        // Step 2: A switches too, and k1 goes away everywhere.
        ringA.UsePrimary(K2);
        ringA.Remove(K1);
        ringB.Remove(K1);
        AssertTalk(a, b, "both on k2 only");
        Assert.Single(ringA.All);
        Assert.Single(ringB.All);

        // A member left with only k1 can no longer open anything, nor be heard.
        Assert.Null(old.Open(a.Seal("x"u8), 1400));
        Assert.Null(old.Open(b.Seal("x"u8), 1400));
        Assert.Equal(2, old.Dropped(DropReason.UnknownKey));
        Assert.Null(a.Open(old.Seal("x"u8), 1400));
        Assert.Equal(1, a.Dropped(DropReason.UnknownKey));
        Assert.Equal(0, b.DroppedTotal);
    }

    [Fact]
    public void Rotation_ReceiverWithoutTheNewKeyYet_DropsAsUnknownKey()
    {
        // The reason for the order of the steps: switching before everyone holds the key cuts members off.
        var ringA = new Keyring([K1]);
        var ringB = new Keyring([K1]);
        var a = new PacketSealer(ringA, "streamfarm", _time);
        var b = new PacketSealer(ringB, "streamfarm", _time);

        ringB.UsePrimary(K2);

        Assert.Null(a.Open(b.Seal("x"u8), 1400));
        Assert.Equal(1, a.Dropped(DropReason.UnknownKey));
        Assert.NotNull(b.Open(a.Seal("x"u8), 1400));
    }

    private static void AssertTalk(PacketSealer a, PacketSealer b, string step)
    {
        for (var i = 0; i < 3; i++)
        {
            var fromA = new[] { (byte)'a', (byte)i };
            var fromB = new[] { (byte)'b', (byte)i };
            Assert.True(b.Open(a.Seal(fromA), 1400)?.SequenceEqual(fromA) == true, $"{step}: B could not open A's packet");
            Assert.True(a.Open(b.Seal(fromB), 1400)?.SequenceEqual(fromB) == true, $"{step}: A could not open B's packet");
        }

        Assert.True(a.DroppedTotal == 0, $"{step}: A dropped {a.DroppedTotal}");
        Assert.True(b.DroppedTotal == 0, $"{step}: B dropped {b.DroppedTotal}");
    }

    private static byte[] Key(byte seed, int length = 32) => [.. Enumerable.Range(0, length).Select(i => (byte)((i * 17) + seed))];
}
