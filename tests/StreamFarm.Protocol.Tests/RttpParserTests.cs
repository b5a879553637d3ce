using System.Buffers;
using System.Text;
using CsCheck;
using StreamFarm.Protocol.Tests.Kit;

namespace StreamFarm.Protocol.Tests;

public sealed class RttpParserTests
{
    /// <summary>
    /// Valid lines of every verb (docs/protocol.md sections 3 and 4): the line, then the verb, the
    /// positional arguments, the fields and meta attributes as <c>name=value</c> with the value
    /// unescaped, and the free text of ERR/BYE.
    /// </summary>
    public static TheoryData<string, RttpVerb, string[], string[], string[], string> ValidLines => new()
    {
        // client to server
        { "HELLO 1 client=ticker", RttpVerb.Hello, ["1"], ["client=ticker"], [], "" },
        { "HELLO 1,2 client=pricer-7 user=alice password=s3cret", RttpVerb.Hello, ["1,2"], ["client=pricer-7", "user=alice", "password=s3cret"], [], "" },
        { "HELLO 1 token=abc\\sdef", RttpVerb.Hello, ["1"], ["token=abc def"], [], "" },
        { "SUB /FX/GBPUSD /EQ/VOD.L", RttpVerb.Sub, ["/FX/GBPUSD", "/EQ/VOD.L"], [], [], "" },
        { "SUB /a_b/C-D/e.f/g:h/i~j/k+l/0", RttpVerb.Sub, ["/a_b/C-D/e.f/g:h/i~j/k+l/0"], [], [], "" },
        { "UNSUB /EQ/VOD.L", RttpVerb.Unsub, ["/EQ/VOD.L"], [], [], "" },
        { "UNSUB /A /B /C", RttpVerb.Unsub, ["/A", "/B", "/C"], [], [], "" },
        { "PUB /FX/GBPUSD bid=1.2702 ask=1.2704 venue=LSE\\sIOB", RttpVerb.Pub, ["/FX/GBPUSD"], ["bid=1.2702", "ask=1.2704", "venue=LSE IOB"], [], "" },
        { "PUB /A expr=a=b", RttpVerb.Pub, ["/A"], ["expr=a=b"], [], "" },
        { "PUB /A empty=", RttpVerb.Pub, ["/A"], ["empty="], [], "" },
        { "PUB /A v=\\\\\\s\\n\\r\\t\\x01\\x1f\\x7F\\x7f", RttpVerb.Pub, ["/A"], ["v=\\ \n\r\t\u0001\u001f\u007f\u007f"], [], "" },
        { "PUB /A url=http://h/x?q=1&r=2", RttpVerb.Pub, ["/A"], ["url=http://h/x?q=1&r=2"], [], "" },
        { "PUB /A name=Zoë city=東京 smile=😀", RttpVerb.Pub, ["/A"], ["name=Zoë", "city=東京", "smile=😀"], [], "" },
        { "PUB /A _x.y-z=1 Z9=2", RttpVerb.Pub, ["/A"], ["_x.y-z=1", "Z9=2"], [], "" },
        { "PUB /A @trace=t1 x=1 @hop=2", RttpVerb.Pub, ["/A"], ["x=1"], ["trace=t1", "hop=2"], "" },
        { "PUBIMAGE /SCORES/match-9 home=2 away=1 minute=67", RttpVerb.PubImage, ["/SCORES/match-9"], ["home=2", "away=1", "minute=67"], [], "" },
        { "PUBIMAGE /A", RttpVerb.PubImage, ["/A"], [], [], "" },
        { "FARM", RttpVerb.Farm, [], [], [], "" },
        { "PING", RttpVerb.Ping, [], [], [], "" },
        { "PING 42", RttpVerb.Ping, ["42"], [], [], "" },
        { "PONG 42", RttpVerb.Pong, ["42"], [], [], "" },
        { "PONG", RttpVerb.Pong, [], [], [], "" },
        { "BYE", RttpVerb.Bye, [], [], [], "" },
        { "BYE done", RttpVerb.Bye, ["done"], [], [], "" },
        { "BYE done see you = later", RttpVerb.Bye, ["done"], [], [], "see you = later" },

        // server to client
        { "WELCOME 1 server=s1 session=17 maxline=16384 ping=1000 idle=10000", RttpVerb.Welcome, ["1"], ["server=s1", "session=17", "maxline=16384", "ping=1000", "idle=10000"], [], "" },
        { "IMAGE /FX/GBPUSD 1732861234000 41 bid=1.2701 ask=1.2703", RttpVerb.Image, ["/FX/GBPUSD", "1732861234000", "41"], ["bid=1.2701", "ask=1.2703"], [], "" },
        { "IMAGE /A 1 0", RttpVerb.Image, ["/A", "1", "0"], [], [], "" },
        { "UPDATE /FX/GBPUSD 1732861234000 42 bid=1.2702", RttpVerb.Update, ["/FX/GBPUSD", "1732861234000", "42"], ["bid=1.2702"], [], "" },
        { "UPDATE /A 18446744073709551615 18446744073709551615 @merged=3 x=1", RttpVerb.Update, ["/A", "18446744073709551615", "18446744073709551615"], ["x=1"], ["merged=3"], "" },
        { "STATUS /FX/EURUSD NOT_FOUND", RttpVerb.Status, ["/FX/EURUSD", "NOT_FOUND"], [], [], "" },
        { "STATUS /A DENIED @reason=not\\sallowed", RttpVerb.Status, ["/A", "DENIED"], [], ["reason=not allowed"], "" },
        { "FARM 1 1", RttpVerb.Farm, ["1", "1"], [], [], "" },
        { "SERVER 1 id=s1 group=default state=active liveness=alive users=3 capacity=10000 tcp=127.0.0.2:7400 ws=ws://127.0.0.2:7480/rttp http=http://127.0.0.2:7480", RttpVerb.Server, ["1"], ["id=s1", "group=default", "state=active", "liveness=alive", "users=3", "capacity=10000", "tcp=127.0.0.2:7400", "ws=ws://127.0.0.2:7480/rttp", "http=http://127.0.0.2:7480"], [], "" },
        { "FARMDEL 2 s1", RttpVerb.FarmDel, ["2", "s1"], [], [], "" },
        { "MOVE REBALANCE @server=s2 @after=500", RttpVerb.Move, ["REBALANCE"], [], ["server=s2", "after=500"], "" },
        { "MOVE SHUTDOWN", RttpVerb.Move, ["SHUTDOWN"], [], [], "" },
        { "ERR SYNTAX expected name=value after the arguments", RttpVerb.Err, ["SYNTAX"], [], [], "expected name=value after the arguments" },
        { "ERR TOO_MANY_SUBS @subject=/A/B too many subscriptions", RttpVerb.Err, ["TOO_MANY_SUBS"], [], ["subject=/A/B"], "too many subscriptions" },
        { "ERR FULL @after=1000 server s1 is full", RttpVerb.Err, ["FULL"], [], ["after=1000"], "server s1 is full" },
        { "ERR IDLE", RttpVerb.Err, ["IDLE"], [], [], "" },
        { "ERR DENIED x=1 is text", RttpVerb.Err, ["DENIED"], [], [], "x=1 is text" },
        { "BYE SHUTDOWN server stopping", RttpVerb.Bye, ["SHUTDOWN"], [], [], "server stopping" },

        // spacing: one or more spaces separate tokens
        { "  PUB   /A   x=1    y=2  ", RttpVerb.Pub, ["/A"], ["x=1", "y=2"], [], "" },
        { "SUB /A  /B", RttpVerb.Sub, ["/A", "/B"], [], [], "" },
    };

    /// <summary>Invalid lines and the error each one must get.</summary>
    public static TheoryData<string, RttpErrorCode> InvalidLines => new()
    {
        // SYNTAX: wrong number of arguments, a token out of place
        { "PUB", RttpErrorCode.Syntax },
        { "PUB /A", RttpErrorCode.Syntax },
        { "PUB /A @m=1", RttpErrorCode.Syntax },
        { "PUB /A x", RttpErrorCode.Syntax },
        { "PUB /A x=1 y", RttpErrorCode.Syntax },
        { "PUB x=1", RttpErrorCode.Syntax },
        { "PUBIMAGE", RttpErrorCode.Syntax },
        { "SUB", RttpErrorCode.Syntax },
        { "SUB /A x=1", RttpErrorCode.Syntax },
        { "UNSUB", RttpErrorCode.Syntax },
        { "HELLO", RttpErrorCode.Syntax },
        { "HELLO client=x", RttpErrorCode.Syntax },
        { "HELLO 1 2", RttpErrorCode.Syntax },
        { "WELCOME", RttpErrorCode.Syntax },
        { "IMAGE /A", RttpErrorCode.Syntax },
        { "IMAGE /A 1", RttpErrorCode.Syntax },
        { "IMAGE /A 1 x=1", RttpErrorCode.Syntax },
        { "IMAGE /A 1 2 3", RttpErrorCode.Syntax },
        { "IMAGE /A x 1", RttpErrorCode.Syntax },
        { "IMAGE /A 1 seq", RttpErrorCode.Syntax },
        { "IMAGE /A 1 -1", RttpErrorCode.Syntax },
        { "IMAGE /A 1 2.5", RttpErrorCode.Syntax },
        { "IMAGE /A +1 2", RttpErrorCode.Syntax },
        { "IMAGE /A 0x10 2", RttpErrorCode.Syntax },
        { "UPDATE /A 1 18446744073709551616 x=1", RttpErrorCode.Syntax },
        { "UPDATE /A 1", RttpErrorCode.Syntax },
        { "STATUS /A", RttpErrorCode.Syntax },
        { "STATUS /A OK x=1", RttpErrorCode.Syntax },
        { "STATUS /A OK extra", RttpErrorCode.Syntax },
        { "FARM 1 2 3", RttpErrorCode.Syntax },
        { "FARM x=1", RttpErrorCode.Syntax },
        { "SERVER", RttpErrorCode.Syntax },
        { "SERVER 1 2", RttpErrorCode.Syntax },
        { "FARMDEL 1", RttpErrorCode.Syntax },
        { "FARMDEL 1 s1 s2", RttpErrorCode.Syntax },
        { "MOVE", RttpErrorCode.Syntax },
        { "MOVE SHUTDOWN s2", RttpErrorCode.Syntax },
        { "MOVE SHUTDOWN server=s2", RttpErrorCode.Syntax },
        { "PING a b", RttpErrorCode.Syntax },
        { "PONG a x=1", RttpErrorCode.Syntax },
        { "ERR", RttpErrorCode.Syntax },
        { "ERR @line=3 text", RttpErrorCode.Syntax },

        // SYNTAX: raw control bytes (only the line terminator may be one)
        { "PUB /A x=a\tb", RttpErrorCode.Syntax },
        { "PUB /A x=1\r", RttpErrorCode.Syntax },
        { "PUB /A x=1\ry=2", RttpErrorCode.Syntax },
        { "PUB /A x=\0", RttpErrorCode.Syntax },
        { "PUB /A x=\u001b[31m", RttpErrorCode.Syntax },
        { "PUB /A x=\u007f", RttpErrorCode.Syntax },
        { "PING\u0001", RttpErrorCode.Syntax },
        { "\tPING", RttpErrorCode.Syntax },
        { "BYE done bad\u001ftext", RttpErrorCode.Syntax },
        { "hello\u0000", RttpErrorCode.Syntax },

        // UNKNOWN_VERB: verbs are upper-case ASCII, from the list
        { "hello 1", RttpErrorCode.UnknownVerb },
        { "Pub /A x=1", RttpErrorCode.UnknownVerb },
        { "HELO 1", RttpErrorCode.UnknownVerb },
        { "PUBLISH /A x=1", RttpErrorCode.UnknownVerb },
        { "SUBS /A", RttpErrorCode.UnknownVerb },
        { "/A x=1", RttpErrorCode.UnknownVerb },
        { "x=1", RttpErrorCode.UnknownVerb },
        { "ÉTAT /A", RttpErrorCode.UnknownVerb },

        // BAD_SUBJECT
        { "PUB A x=1", RttpErrorCode.BadSubject },
        { "PUB / x=1", RttpErrorCode.BadSubject },
        { "PUB /A/ x=1", RttpErrorCode.BadSubject },
        { "PUB //A x=1", RttpErrorCode.BadSubject },
        { "PUB /A//B x=1", RttpErrorCode.BadSubject },
        { "PUB /A/* x=1", RttpErrorCode.BadSubject },
        { "PUB /A/> x=1", RttpErrorCode.BadSubject },
        { "PUB /A# x=1", RttpErrorCode.BadSubject },
        { "PUB /Zoë x=1", RttpErrorCode.BadSubject },
        { "PUB /A\\sB x=1", RttpErrorCode.BadSubject },
        { "PUBIMAGE A", RttpErrorCode.BadSubject },
        { "SUB /A B", RttpErrorCode.BadSubject },
        { "SUB /A /B/ /C", RttpErrorCode.BadSubject },
        { "UNSUB /A/>", RttpErrorCode.BadSubject },
        { "IMAGE A 1 2", RttpErrorCode.BadSubject },
        { "UPDATE /A/ 1 2 x=1", RttpErrorCode.BadSubject },
        { "STATUS A OK", RttpErrorCode.BadSubject },
        { "PUB /" + new string('a', 256) + " x=1", RttpErrorCode.BadSubject },

        // BAD_FIELD
        { "PUB /A 1x=1", RttpErrorCode.BadField },
        { "PUB /A -x=1", RttpErrorCode.BadField },
        { "PUB /A .x=1", RttpErrorCode.BadField },
        { "PUB /A =1", RttpErrorCode.BadField },
        { "PUB /A x$=1", RttpErrorCode.BadField },
        { "PUB /A x/y=1", RttpErrorCode.BadField },
        { "PUB /A é=1", RttpErrorCode.BadField },
        { "PUB /A @=1 x=1", RttpErrorCode.BadField },
        { "PUB /A @1=1 x=1", RttpErrorCode.BadField },
        { "PUB /A @@m=1 x=1", RttpErrorCode.BadField },
        { "PUB /A " + new string('n', 65) + "=1", RttpErrorCode.BadField },
        { "MOVE SHUTDOWN @9=s2", RttpErrorCode.BadField },
        { "ERR SYNTAX @=1 text", RttpErrorCode.BadField },

        // BAD_ESCAPE
        { "PUB /A x=\\q", RttpErrorCode.BadEscape },
        { "PUB /A x=\\", RttpErrorCode.BadEscape },
        { "PUB /A x=a\\", RttpErrorCode.BadEscape },
        { "PUB /A x=\\S", RttpErrorCode.BadEscape },
        { "PUB /A x=\\N", RttpErrorCode.BadEscape },
        { "PUB /A x=\\x", RttpErrorCode.BadEscape },
        { "PUB /A x=\\x4", RttpErrorCode.BadEscape },
        { "PUB /A x=\\xZZ", RttpErrorCode.BadEscape },
        { "PUB /A x=\\x4g", RttpErrorCode.BadEscape },
        { "PUB /A x=\\u0041", RttpErrorCode.BadEscape },
        { "PUB /A x=ok y=\\\\\\", RttpErrorCode.BadEscape },
        { "STATUS /A OK @reason=\\z", RttpErrorCode.BadEscape },
    };

    /// <summary>Lines that are not UTF-8 (given as bytes).</summary>
    public static TheoryData<byte[]> NotUtf8Lines => new()
    {
        Bytes("PUB /A x=", 0xFF),
        Bytes("PUB /A x=", 0xC3),
        Bytes("PUB /A x=", 0xC3, 0x28),
        Bytes("PUB /A x=", 0xC0, 0x80),
        Bytes("PUB /A x=", 0xED, 0xA0, 0x80),
        Bytes("PUB /A x=", 0xF4, 0x90, 0x80, 0x80),
        Bytes("PUB /A x=", 0xE2, 0x82),
        Bytes("PUB /A x=", 0x80),
        Bytes("SUB /A", 0xFE),
        Bytes("ERR SYNTAX bad ", 0xFF, 0xFE),
    };

    [Theory]
    [MemberData(nameof(ValidLines))]
    public void TryParse_ValidLine_GivesVerbArgsFieldsMetaAndText(string line, RttpVerb verb, string[] args, string[] fields, string[] metas, string text)
    {
        var frame = new RttpFrame();

        var error = RttpParser.TryParse(Line(line), frame, RttpLimits.Default, out var reason);

        Assert.Equal(RttpErrorCode.None, error);
        Assert.Null(reason);
        Assert.Equal(verb, frame.Verb);
        Assert.Equal(args, Enumerable.Range(0, frame.ArgCount).Select(i => Utf8(frame.Arg(i))));
        Assert.Equal(fields, Enumerable.Range(0, frame.FieldCount).Select(i => Utf8(frame.FieldName(i)) + "=" + FieldEscaping.Unescape(frame.FieldValue(i))));
        Assert.Equal(metas, Enumerable.Range(0, frame.MetaCount).Select(i => Utf8(frame.MetaName(i)) + "=" + FieldEscaping.Unescape(frame.MetaValue(i))));
        Assert.Equal(text, Utf8(frame.Text));
    }

    [Theory]
    [MemberData(nameof(ValidLines))]
    public void TryParse_ValidLineInOneByteSegments_GivesSameFrameAsOneSegment(string line, RttpVerb verb, string[] args, string[] fields, string[] metas, string text)
    {
        _ = (verb, args, fields, metas, text);
        var bytes = Encoding.UTF8.GetBytes(line);
        var expected = Parsed.Parse(new ReadOnlySequence<byte>(bytes), new RttpFrame());

        var actual = Parsed.Parse(Segments.OneBytePerSegment(bytes), new RttpFrame());

        Assert.Equal(expected, actual);
    }

    [Theory]
    [MemberData(nameof(InvalidLines))]
    public void TryParse_InvalidLine_GivesErrorCodeAndReason(string line, RttpErrorCode expected)
    {
        var error = RttpParser.TryParse(Line(line), new RttpFrame(), RttpLimits.Default, out var reason);

        Assert.Equal(expected, error);
        Assert.False(string.IsNullOrEmpty(reason));
    }

    [Theory]
    [MemberData(nameof(NotUtf8Lines))]
    public void TryParse_NotUtf8_GivesBadUtf8(byte[] line)
    {
        var error = RttpParser.TryParse(new ReadOnlySequence<byte>(line), new RttpFrame(), RttpLimits.Default, out var reason);

        Assert.Equal(RttpErrorCode.BadUtf8, error);
        Assert.False(string.IsNullOrEmpty(reason));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("    ")]
    public void TryParse_EmptyOrSpacesOnly_GivesNoErrorAndVerbNone(string line)
    {
        var frame = new RttpFrame();

        var error = RttpParser.TryParse(Line(line), frame, RttpLimits.Default, out _);

        Assert.Equal(RttpErrorCode.None, error);
        Assert.Equal(RttpVerb.None, frame.Verb);
    }

    [Fact]
    public void TryParse_MaxFieldsFields_IsAccepted()
    {
        var line = "PUB /A" + string.Concat(Enumerable.Range(0, 256).Select(i => $" f{i}={i}"));
        var frame = new RttpFrame();

        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line(line), frame, RttpLimits.Default, out _));
        Assert.Equal(256, frame.FieldCount);
        Assert.Equal("f255", Utf8(frame.FieldName(255)));
        Assert.Equal("255", Utf8(frame.FieldValue(255)));
    }

    [Fact]
    public void TryParse_OneFieldOverMaxFields_GivesTooManyFields()
    {
        var line = "PUB /A" + string.Concat(Enumerable.Range(0, 257).Select(i => $" f{i}={i}"));

        Assert.Equal(RttpErrorCode.TooManyFields, RttpParser.TryParse(Line(line), new RttpFrame(), RttpLimits.Default, out _));
    }

    [Theory]
    [InlineData("PUB /A a=1 b=2", RttpErrorCode.None)]
    [InlineData("PUB /A a=1 b=2 c=3", RttpErrorCode.TooManyFields)]
    [InlineData("PUB /A @m=1 a=1", RttpErrorCode.None)]
    [InlineData("PUB /A @m=1 a=1 b=2", RttpErrorCode.TooManyFields)]
    [InlineData("UPDATE /A 1 2 @merged=2 @n=1 a=1", RttpErrorCode.TooManyFields)]
    [InlineData("ERR SYNTAX @a=1 @b=2 @c=3 text", RttpErrorCode.TooManyFields)]
    public void TryParse_CustomMaxFields_CountsFieldsAndMetaTogether(string line, RttpErrorCode expected)
    {
        var limits = new RttpLimits { MaxFields = 2 };

        Assert.Equal(expected, RttpParser.TryParse(Line(line), new RttpFrame(), limits, out _));
    }

    [Fact]
    public void TryParse_SubWithMaxArgsSubjects_IsAcceptedAndOneMoreIsSyntax()
    {
        var subjects = string.Concat(Enumerable.Range(0, RttpLimits.Default.MaxArgs).Select(i => $" /S/{i}"));
        var frame = new RttpFrame();

        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line("SUB" + subjects), frame, RttpLimits.Default, out _));
        Assert.Equal(RttpLimits.Default.MaxArgs, frame.ArgCount);
        Assert.Equal(RttpErrorCode.Syntax, RttpParser.TryParse(Line("SUB" + subjects + " /S/x"), frame, RttpLimits.Default, out _));
    }

    [Fact]
    public void TryParse_SubjectOfMaxLength_IsAccepted()
    {
        var subject = "/" + new string('a', RttpLimits.MaxSubjectBytes - 1);

        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line($"PUB {subject} x=1"), new RttpFrame(), RttpLimits.Default, out _));
    }

    [Fact]
    public void TryParse_FieldNameOfMaxLength_IsAccepted()
    {
        var name = new string('n', RttpLimits.MaxNameBytes);
        var frame = new RttpFrame();

        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line($"PUB /A {name}=1"), frame, RttpLimits.Default, out _));
        Assert.Equal(name, Utf8(frame.FieldName(0)));
    }

    [Theory]
    [InlineData("IMAGE /A 0 0", 0UL, 0UL)]
    [InlineData("IMAGE /A 1732861234000 41 x=1", 1732861234000UL, 41UL)]
    [InlineData("UPDATE /A 18446744073709551615 7 x=1", ulong.MaxValue, 7UL)]
    [InlineData("UPDATE /A 007 0042 x=1", 7UL, 42UL)]
    public void TryGetUInt64_EpochAndSeq_AreTheNumbers(string line, ulong epoch, ulong seq)
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line(line), frame, RttpLimits.Default, out _));

        Assert.True(frame.TryGetUInt64(1, out var e));
        Assert.True(frame.TryGetUInt64(2, out var s));
        Assert.Equal(epoch, e);
        Assert.Equal(seq, s);
        Assert.False(frame.TryGetUInt64(0, out _));
    }

    [Fact]
    public void TryGetField_RepeatedName_LastOneWins()
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line("PUB /A x=1 y=2 x=3 @m=a @m=b"), frame, RttpLimits.Default, out _));

        Assert.True(frame.TryGetField("x"u8, out var x));
        Assert.Equal("3", Utf8(x));
        Assert.True(frame.TryGetMeta("m"u8, out var m));
        Assert.Equal("b", Utf8(m));
        Assert.False(frame.TryGetField("z"u8, out _));
        Assert.False(frame.TryGetField("m"u8, out _));
        Assert.False(frame.TryGetMeta("x"u8, out _));
    }

    [Theory]
    [InlineData("PUB /A x=1 y=\\s2", "x=1 y=\\s2")]
    [InlineData("PUB /A  @m=1  x=1 y=2", "x=1 y=2")]
    [InlineData("IMAGE /A 1 2", "")]
    [InlineData("UPDATE /A 1 2 @merged=2 a=b", "a=b")]
    public void FieldsSection_ParsedLine_StartsAtFirstField(string line, string expected)
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line(line), frame, RttpLimits.Default, out _));

        Assert.Equal(expected, Utf8(frame.FieldsSection));
    }

    [Fact]
    public void TryParse_FrameReusedAfterBigLine_HoldsOnlyTheNewLine()
    {
        var frame = new RttpFrame();
        var big = "PUB /A @m=1 @n=2 @o=3 @p=4 @q=5" + string.Concat(Enumerable.Range(0, 40).Select(i => $" f{i}={i}"));
        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Segments.Of(big[..50], big[50..]), frame, RttpLimits.Default, out _));
        Assert.Equal(40, frame.FieldCount);
        Assert.Equal(5, frame.MetaCount);

        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line("PING 7"), frame, RttpLimits.Default, out _));

        Assert.Equal(Parsed.Valid(RttpVerb.Ping, ["7"], []), Parsed.From(RttpErrorCode.None, frame));
        Assert.True(frame.FieldsSection.IsEmpty);
        Assert.False(frame.TryGetField("f1"u8, out _));
    }

    [Fact]
    public void TryParse_FrameReusedAfterError_HoldsOnlyTheNewLine()
    {
        var frame = new RttpFrame();
        Assert.Equal(RttpErrorCode.BadEscape, RttpParser.TryParse(Line("PUB /A a=1 b=\\q"), frame, RttpLimits.Default, out _));

        Assert.Equal(RttpErrorCode.None, RttpParser.TryParse(Line("SUB /B"), frame, RttpLimits.Default, out _));

        Assert.Equal(Parsed.Valid(RttpVerb.Sub, ["/B"], []), Parsed.From(RttpErrorCode.None, frame));
    }

    [Fact]
    public void TryParse_GeneratedValidLine_GivesTheGeneratedParts()
    {
        Gen.Select(RttpGen.ValidLine, Gen.Int[0, 200]).Sample((line, cut) =>
        {
            var bytes = Encoding.UTF8.GetBytes(line.Text);
            Assert.Equal(line.Expected, Parsed.Parse(new ReadOnlySequence<byte>(bytes), new RttpFrame()));
            var at = Math.Min(cut, bytes.Length);
            Assert.Equal(line.Expected, Parsed.Parse(Segments.Split(bytes, at), new RttpFrame()));
        }, iter: 2000);
    }

    [Theory]
    [InlineData("HELLO", RttpVerb.Hello)]
    [InlineData("WELCOME", RttpVerb.Welcome)]
    [InlineData("SUB", RttpVerb.Sub)]
    [InlineData("UNSUB", RttpVerb.Unsub)]
    [InlineData("PUB", RttpVerb.Pub)]
    [InlineData("PUBIMAGE", RttpVerb.PubImage)]
    [InlineData("IMAGE", RttpVerb.Image)]
    [InlineData("UPDATE", RttpVerb.Update)]
    [InlineData("STATUS", RttpVerb.Status)]
    [InlineData("FARM", RttpVerb.Farm)]
    [InlineData("SERVER", RttpVerb.Server)]
    [InlineData("FARMDEL", RttpVerb.FarmDel)]
    [InlineData("MOVE", RttpVerb.Move)]
    [InlineData("PING", RttpVerb.Ping)]
    [InlineData("PONG", RttpVerb.Pong)]
    [InlineData("ERR", RttpVerb.Err)]
    [InlineData("BYE", RttpVerb.Bye)]
    [InlineData("ping", RttpVerb.None)]
    [InlineData("PIN", RttpVerb.None)]
    [InlineData("PINGS", RttpVerb.None)]
    [InlineData("", RttpVerb.None)]
    public void ParseVerb_Token_GivesVerb(string token, RttpVerb expected)
    {
        Assert.Equal(expected, RttpParser.ParseVerb(Encoding.UTF8.GetBytes(token)));
    }

    private static ReadOnlySequence<byte> Line(string s) => new(Encoding.UTF8.GetBytes(s));

    private static string Utf8(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    private static byte[] Bytes(string prefix, params byte[] tail) => [.. Encoding.UTF8.GetBytes(prefix), .. tail];
}
