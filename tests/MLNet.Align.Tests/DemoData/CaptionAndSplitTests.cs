using MLNet.Align.Demo.Data;

namespace MLNet.Align.Tests.Datasets;

public class CaptionCleaningTests
{
    private static readonly CaptionCleaningOptions Defaults = new();

    // Real titles from the Debian openclipart-svg package (author from the same file's dc:creator).
    [Theory]
    [InlineData("rss_button", "Roman Bertle", 1, "rss button")]
    [InlineData("24_ports_switch", "Nicolas Clementz", 1, "24 ports switch")]
    [InlineData("Chinese flag (correct)", "Stephen Silver", 1, "Chinese flag (correct)")]
    [InlineData("  Ice Cream Cone (1 scoop) ", "Gerald G.", 3, "Ice Cream Cone (1 scoop)")]
    public void UsableTitles_AreCleaned(string raw, string author, int sameTitleFiles, string expected)
    {
        var (title, reason) = CaptionCleaner.CleanTitle(raw, author, sameTitleFiles, Defaults);
        Assert.Null(reason);
        Assert.Equal(expected, title);
    }

    [Theory]
    [InlineData("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)", "Danny Allen", 599, CaptionCleaner.FlatIconTitle)]
    [InlineData("Clipart by Nicu Buculei - antenna", "Nicu Buculei", 24, CaptionCleaner.ClipartByTitle)]
    [InlineData("HASH(0x8a07724)", "x", 1, CaptionCleaner.HashTitle)]
    [InlineData("Architetto Francesco Rollandin", "Architetto Francesco Rollandin", 1, CaptionCleaner.AuthorTitle)]
    [InlineData("gramastar", "codifiedivining", 1375, CaptionCleaner.CollectionTitle)]
    [InlineData("Lemon SVG theme", "Jose Hevia", 431, CaptionCleaner.CollectionTitle)]
    [InlineData("", "Jon Phillips", 62, CaptionCleaner.EmptyTitle)]
    public void BoilerplateTitles_AreDroppedWithTheirReason(string raw, string author, int sameTitleFiles, string expectedReason)
    {
        var (title, reason) = CaptionCleaner.CleanTitle(raw, author, sameTitleFiles, Defaults);
        Assert.Null(title);
        Assert.Equal(expectedReason, reason);
    }

    [Fact]
    public void Options_ChangeTheRules()
    {
        var keepAll = new CaptionCleaningOptions { DropBoilerplateTitles = false, UnderscoresToSpaces = false };
        Assert.Equal("rss_button", CaptionCleaner.CleanTitle("rss_button", null, 1, keepAll).Title);
        Assert.Equal("gramastar", CaptionCleaner.CleanTitle("gramastar", null, 1375, keepAll).Title);
        var noCollections = new CaptionCleaningOptions { CollectionTitleMinFiles = 0 };
        Assert.Equal("card", CaptionCleaner.CleanTitle("card", "Nicu Buculei", 226, noCollections).Title);
        Assert.Equal("aiga waiting room", CaptionCleaner.TitleFromFileName("aiga_waiting_room1.svg"));
        Assert.Equal("", CaptionCleaner.TitleFromFileName("01_02.png"));
    }

    [Fact]
    public void Keywords_DropHashStopListDuplicatesAuthorAndTitle_ThenCompose()
    {
        // Keywords of heart_jon_phillips_01.svg and a Lemon-theme icon, as stored in the files.
        var heart = CaptionCleaner.CleanKeywords(["holiday", "valentines", "", "valentine", "shapes", "hash(0x8a07724)", "hash(0x8a07754)", "day"], "Heart", Defaults);
        Assert.Equal(["holiday", "valentines", "valentine", "shapes", "day"], heart);
        var lemon = CaptionCleaner.CleanKeywords(["icon", "", "lemon_theme_icon", "icons", "hash", "action", "computer", "theme", "Icon"], "fileprint", Defaults);
        Assert.Equal(["icon", "action", "computer"], lemon);
        var rana = CaptionCleaner.CleanKeywords(["architetto_francesco_rollandin", "animal", "Rana01"], "Rana01", Defaults, "Architetto Francesco Rollandin");
        Assert.Equal(["animal"], rana);
        Assert.Equal("Heart (holiday, valentines)", CaptionCleaner.Compose("Heart", ["holiday", "valentines"], Defaults));
        Assert.Equal("Heart", CaptionCleaner.Compose("Heart", ["holiday"], new CaptionCleaningOptions { IncludeKeywords = false }));
        Assert.Equal(3, CaptionCleaner.CleanKeywords(["a", "b", "c", "d"], null, new CaptionCleaningOptions { MaxKeywords = 3 }).Count);
    }

    [Fact]
    public void HtmlEntities_AreDecodedTwice()
        => Assert.Equal("Tomáš Kratochvíla", CaptionCleaner.Normalise("Tom&amp;aacute;&amp;scaron; Kratochv&amp;iacute;la", false));

    [Fact]
    public void SvgMetadata_TakesTheWorksOwnTitleNotTheCreators()
    {
        // Structure of /usr/share/openclipart/svg/science/provetta_plasma_sangue_a_01.svg.
        const string svg = """
            <svg><metadata><rdf:RDF><cc:Work rdf:about="">
              <dc:title>Provetta plasma sangue</dc:title>
              <dc:description></dc:description>
              <dc:subject><rdf:Bag><rdf:li>unsorted</rdf:li><rdf:li>blood</rdf:li></rdf:Bag></dc:subject>
              <dc:publisher><cc:Agent rdf:about="http://www.openclipart.org/"><dc:title>Open Clip Art Library</dc:title></cc:Agent></dc:publisher>
              <dc:creator><cc:Agent><dc:title>Architetto Francesco Rollandin</dc:title></cc:Agent></dc:creator>
            </cc:Work></rdf:RDF></metadata></svg>
            """;
        var m = OpenClipartPairSource.ReadMetadata(svg);
        Assert.Equal("Provetta plasma sangue", m.Title);
        Assert.Equal("Architetto Francesco Rollandin", m.Author);
        Assert.Equal(["unsorted", "blood"], m.Keywords);
        // Creator first, no own title: the creator's name must not become the title.
        var noTitle = OpenClipartPairSource.ReadMetadata("<cc:Work><dc:creator><cc:Agent><dc:title>Jon</dc:title></cc:Agent></dc:creator><dc:title/></cc:Work>");
        Assert.Null(noTitle.Title);
        Assert.Equal("Jon", noTitle.Author);
    }
}

public class PairSplitTests
{
    private static string PairsFixture => FixtureFeatures.PairsFile;

    [Fact]
    public void UnitHash_IsSha256OfSaltAndPath()
    {
        // Values computed independently with Python hashlib: sha256(b"mlnet-align/split/v1\n" + key)[:8] / 2**64.
        Assert.Equal(0.30174540534610744, PairSplitter.UnitHash("images/tuxpaint/animals/birds/vulture.png"), 15);
        Assert.Equal(0.8916425450974511, PairSplitter.UnitHash("images/a.png"), 15);
        Assert.Equal(PairSplitter.UnitHash("images/a.png"), PairSplitter.UnitHash("images\\a.png"));
        Assert.NotEqual(PairSplitter.UnitHash("images/a.png"), PairSplitter.UnitHash("images/a.png", PairSplitter.SubsetSalt));
    }

    [Fact]
    public void Split_IsDeterministic_Disjoint_AndKeepsAllCaptionsOfAnImageTogether()
    {
        var pairs = PairsTsv.Read(PairsFixture);
        Assert.Equal(56, pairs.Count);
        // Give every image a second caption, as COCO-style data has several.
        var doubled = pairs.Concat(pairs.Select(p => p with { Caption = p.Caption + " (second caption)" })).ToList();
        var a = PairSplitter.Split(doubled, 0.3);
        var b = PairSplitter.Split(doubled.AsEnumerable().Reverse().ToList(), 0.3);
        Assert.Equal(a.HeldOut.Select(p => p.Image).ToHashSet(), b.HeldOut.Select(p => p.Image).ToHashSet());
        Assert.Equal(doubled.Count, a.Train.Count + a.HeldOut.Count);
        var heldImages = a.HeldOut.Select(p => p.Image).ToHashSet();
        Assert.DoesNotContain(a.Train, p => heldImages.Contains(p.Image));
        Assert.All(a.HeldOut.GroupBy(p => p.Image), g => Assert.Equal(2, g.Count()));
        Assert.All(heldImages, i => Assert.True(PairSplitter.UnitHash(i) < 0.3));
        Assert.InRange(heldImages.Count, 5, 30); // ~17 of 56 expected; a broken hash gives 0 or 56

        var byCount = PairSplitter.SplitByCount(doubled, 10);
        Assert.Equal(10, byCount.HeldOut.Select(p => p.Image).Distinct().Count());
        Assert.Equal(20, byCount.HeldOut.Count);
        // The 10 smallest hashes are a prefix of any larger held-out set.
        Assert.Subset(PairSplitter.SplitByCount(doubled, 20).HeldOut.Select(p => p.Image).ToHashSet(), byCount.HeldOut.Select(p => p.Image).ToHashSet());
    }

    [Fact]
    public void Assign_UsesDisjointHashBandsForHeldOutAndProxy()
    {
        var keys = Enumerable.Range(0, 2000).Select(i => $"images/x/{i}.png").ToList();
        var sides = keys.Select(k => PairSplitter.Assign(k, 0.1, 0.1, proxyEligible: true)).ToList();
        Assert.InRange(sides.Count(s => s == PairSplitSide.HeldOut), 150, 250);
        Assert.InRange(sides.Count(s => s == PairSplitSide.Proxy), 150, 250);
        // Not eligible for the proxy: the held-out side is unchanged, proxy images go to training.
        var noProxy = keys.Select(k => PairSplitter.Assign(k, 0.1, 0.1, proxyEligible: false)).ToList();
        Assert.Equal(sides.Select(s => s == PairSplitSide.HeldOut), noProxy.Select(s => s == PairSplitSide.HeldOut));
        Assert.DoesNotContain(PairSplitSide.Proxy, noProxy);
        Assert.Throws<ArgumentOutOfRangeException>(() => PairSplitter.Assign("a", 0.7, 0.5, true));
    }

    [Fact]
    public void PairsTsv_RoundTripsAndRejectsBadRows()
    {
        string dir = Directory.CreateTempSubdirectory("pairs-tsv").FullName;
        try
        {
            var pairs = PairsTsv.Read(PairsFixture);
            Assert.Equal(new PairRecord("images/tux_animals_adelaide-rosella.png", "An Adelaide Rosella.", "tuxpaint", "animals"), pairs[0]);
            Assert.True(File.Exists(PairsTsv.ResolveImage(PairsFixture, pairs[0])));
            string copy = Path.Combine(dir, "copy.tsv");
            PairsTsv.Write(copy, pairs.Append(new PairRecord("images/x.png", "a\ttab\nand newline", "s", "l")));
            var back = PairsTsv.Read(copy);
            Assert.Equal(pairs, back.Take(56));
            Assert.Equal("a tab and newline", back[56].Caption);

            string bad = Path.Combine(dir, "bad.tsv");
            File.WriteAllText(bad, "image\tcaption\nimages/a.png\tok\nimages/b.png\t \n");
            var e = Assert.Throws<InvalidDataException>(() => PairsTsv.Read(bad));
            Assert.Contains("line 3", e.Message);
            Assert.Contains(bad, e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void SourceSelection_ParsesNamesAndFractions()
    {
        var list = SourceSelection.ParseList("tuxpaint, emoji:0.5,openclipart:0.25");
        Assert.Equal([new SourceSelection("tuxpaint"), new SourceSelection("emoji", 0.5), new SourceSelection("openclipart", 0.25)], list);
        Assert.Contains("coco", Assert.Throws<ArgumentException>(() => SourceSelection.ParseList("coco")).Message);
        Assert.Throws<ArgumentException>(() => SourceSelection.ParseList("emoji:1.5"));
        Assert.Throws<ArgumentException>(() => SourceSelection.ParseList("emoji,emoji"));
    }
}
