using System.Text;
using System.Text.Json;
using MLNet.Align.Demo.Data;
using SkiaSharp;

namespace MLNet.Align.Tests.Datasets;

/// <summary>The opt-in photo-like sources: GCompris (board parsing, WebP extraction, drops), wallpapers (metadata
/// parsing), Twemoji as extra views (split sides), and their wiring into <see cref="DataPreparer"/>. The QML/JSON/XML
/// snippets are written here in the packages' formats (not copied from them).</summary>
public class PhotoSourceTests
{
    private const string ExploreBoard = """
        QtObject {
            property string backgroundImage: "qrc:/gcompris/src/activities/explore_monuments/resource/india/india.svg"
            property var tab: [
                {
                    "image": "qrc:/gcompris/src/activities/explore_monuments/resource/key.svg",
                    "title": qsTr("Stone Arch."),
                    "text": qsTr("A stone arch over a \"quiet\" river. It was built long ago."),
                    "image2": "qrc:/gcompris/src/activities/explore_monuments/resource/a/arch.webp",
                    "x": "0.2"
                },
                {
                    "title": qsTr("No photo"),
                    "text": qsTr("This entry has no image2 and is skipped.")
                }
            ]
            property var instructions: [ { "text": qsTr("Monuments") } ]
        }
        """;

    private const string PaintingBoard = """
        QtObject {
           property string instruction: qsTr("Some Painter, A Red Square - 1900")
           property var levels : [
              { "pixmapfile" : "image/bg.svg", "type" : "SHAPE_BACKGROUND_IMAGE", "width": 80, "height": 40 },
              { "pixmapfile" : "image/Square_a1.webp", "x" : "0.375", "y" : "0.5" },
              { "pixmapfile" : "image/Square_b1.webp", "x" : "0.625", "y" : "0.5" }
           ]
        }
        """;

    private const string DetailsBoard = """
        QtObject {
           property string instruction: qsTr("A castle by a lake.")
           property var levels: [
              { "pixmapfile" : "image/Castle_background.webp", "type" : "SHAPE_BACKGROUND_IMAGE" },
              { "pixmapfile" : "image/Castle_0.webp", "x" : "0.3", "y" : "0.1", "dropAreaSize" : "8" }
           ]
        }
        """;

    private const string CategoryBoard = """
        QtObject {
            property string imagesPrefix: "qrc:/gcompris/src/activities/categorization/resource/images/tools/"
            property var levels: [
                {
                    "type": "lesson",
                    "name": qsTr("Tools"),
                    "image": imagesPrefix + "measuringTape6.webp",
                    "content": [
                        {
                            "instructions": qsTr("Place the TOOLS to the right"),
                            "prefix": "qrc:/gcompris/src/activities/categorization/resource/images/",
                            "good": ["tools/measuringTape5.webp", "tools/hammer1.webp"],
                            "bad": ["others/pan.webp"]
                        },
                        {
                            "prefix": "qrc:/gcompris/src/activities/",
                            "good": ["lang/resource/words_sample/apple.webp"],
                            "bad": []
                        }
                    ]
                }
            ]
        }
        """;

    private const string WordsJson = """
        [ { "type": "chapter", "imgPrefix": "qrc:/x/", "content": [ { "type": "lesson", "name": "color", "content": [
            { "description": "apple tree", "image": "apple_tree.webp", "voice": "v" },
            { "description": "blue", "image": "blue.webp", "voice": "v" } ] } ] } ]
        """;

    [Fact]
    public void ExploreBoard_CaptionIsTitleAndDescription()
    {
        var item = Assert.Single(GComprisPairSource.ParseExploreBoard(ExploreBoard));
        Assert.Equal("gcompris/src/activities/explore_monuments/resource/a/arch.webp", item.Image);
        Assert.Equal("Stone Arch. A stone arch over a \"quiet\" river. It was built long ago.", item.Caption);
    }

    [Fact]
    public void LongDescriptions_AreCutAtASentenceEnd()
    {
        string text = string.Concat(Enumerable.Repeat("This sentence is exactly fifty characters long ok. ", 10));
        string cut = GComprisPairSource.Cut(text, GComprisPairSource.MaxCaptionChars);
        Assert.True(cut.Length <= GComprisPairSource.MaxCaptionChars);
        Assert.EndsWith("ok.", cut);
        Assert.Equal(text.Trim(), GComprisPairSource.Cut(text, 10_000));
    }

    [Fact]
    public void PaintingAndDetailsBoards_GiveInstructionAndPictures()
    {
        var painting = GComprisPairSource.ParsePaintingBoard(PaintingBoard)!;
        Assert.Equal("Some Painter, A Red Square - 1900", painting.Caption);
        Assert.Equal((80, 40), (painting.Width, painting.Height));
        Assert.Equal(["image/Square_a1.webp", "image/Square_b1.webp"], painting.Tiles.Select(t => t.File));
        Assert.Equal(0.625, painting.Tiles[1].X);
        Assert.Equal("A castle by a lake.", GComprisPairSource.ParseInstruction(DetailsBoard));
        var pix = GComprisPairSource.ParsePixmaps(DetailsBoard);
        Assert.Equal("SHAPE_BACKGROUND_IMAGE", pix[0].Type);
        Assert.Null(pix[1].Type);
        Assert.Null(GComprisPairSource.ParsePaintingBoard("QtObject { }"));
    }

    [Fact]
    public void CategoryBoard_ResolvesEachPrefix()
    {
        var (category, good) = GComprisPairSource.ParseCategoryBoard(CategoryBoard);
        Assert.Equal("Tools", category);
        Assert.Equal(["gcompris/src/activities/categorization/resource/images/tools/measuringTape5.webp",
            "gcompris/src/activities/categorization/resource/images/tools/hammer1.webp",
            "gcompris/src/activities/lang/resource/words_sample/apple.webp"], good);
        Assert.Equal("measuring tape", GComprisPairSource.StemWords("tools/measuringTape5.webp"));
        Assert.Equal("india gate", GComprisPairSource.StemWords("IndiaGate.webp"));
        Assert.Equal("van gogh the night cafe", GComprisPairSource.StemWords("Van_Gogh_The_Night_Cafe_background.webp"));
        Assert.Equal("fish (animals, fishes)", GComprisPairSource.CategorizationCaption("fish", ["animals", "fishes"]));
        Assert.Equal(GComprisPairSource.SplitKey("france/eiffelTower.webp"), GComprisPairSource.SplitKey("images/monuments/eiffelTower.webp"));
    }

    [Fact]
    public void Words_AreReadFromTheLessons()
    {
        Assert.Equal([("apple tree", "apple_tree.webp"), ("blue", "blue.webp")], GComprisPairSource.ParseWords(WordsJson));
    }

    [Fact]
    public void UndecodableWebP_IsDroppedWithItsReason()
    {
        byte[] webp = Webp(SKColors.Red, 16, 12);
        var (png, reason) = GComprisPairSource.ToPng(webp);
        Assert.Null(reason);
        using (var decoded = SKBitmap.Decode(png))
        {
            Assert.Equal((16, 12), (decoded.Width, decoded.Height));
            Near(SKColors.Red, decoded.GetPixel(8, 6));
        }
        var (none, why) = GComprisPairSource.ToPng(webp[..(webp.Length / 2)]);
        Assert.Null(none);
        Assert.Equal(GComprisPairSource.UndecodableWebP, why);
        Assert.Equal(GComprisPairSource.UndecodableWebP, GComprisPairSource.ToPng("not an image"u8.ToArray()).Reason);
    }

    [Fact]
    public void GComprisSource_ExtractsCaptionedPicturesAndDropsTheRest()
    {
        using var dir = new TempDir();
        string root = Path.Combine(dir.Path, "rcc");
        Directory.CreateDirectory(root);
        string M(string activity, string rel) => $"gcompris/src/activities/{activity}/resource/{rel}";
        var archives = GComprisPairSource.Activities.ToDictionary(a => a, _ => new List<(string, byte[], int)>());
        archives["explore_monuments"].Add((M("explore_monuments", "board/board1.qml"), Encoding.UTF8.GetBytes(ExploreBoard), 1));
        archives["explore_monuments"].Add((M("explore_monuments", "a/arch.webp"), Webp(SKColors.Blue, 800, 600), 0));
        archives["explore_monuments"].Add((M("explore_monuments", "a/uncaptioned.webp"), Webp(SKColors.Green, 8, 8), 0));
        archives["paintings"].Add((M("paintings", "board/board1_0.qml"), Encoding.UTF8.GetBytes(PaintingBoard), 0));
        archives["paintings"].Add((M("paintings", "image/Square_a1.webp"), Webp(SKColors.Red, 20, 20), 0));
        archives["paintings"].Add((M("paintings", "image/Square_b1.webp"), Webp(SKColors.Yellow, 20, 20), 0));
        archives["details"].Add((M("details", "board/board1_0.qml"), Encoding.UTF8.GetBytes(DetailsBoard), 0));
        byte[] castle = Webp(SKColors.Gray, 30, 20);
        archives["details"].Add((M("details", "image/Castle_background.webp"), castle[..(castle.Length - 10)], 0)); // truncated
        archives["details"].Add((M("details", "image/Castle_0.webp"), Webp(SKColors.Gray, 5, 5), 0));
        archives["lang"].Add((M("lang", "words_sample.json"), Encoding.UTF8.GetBytes(WordsJson), 1));
        archives["lang"].Add((M("lang", "words_sample/blue.webp"), Webp(SKColors.Blue, 10, 10), 0));
        foreach (var (a, files) in archives) File.WriteAllBytes(Path.Combine(root, a + ".rcc"), RccWriter.Write(files).Bytes);

        string extract = Path.Combine(dir.Path, "data", "extracted", "gcompris");
        var result = new GComprisPairSource(extract, root).Build();
        Assert.Equal(["gcompris/explore_monuments/a/arch.png", "gcompris/lang/words_sample/blue.png", "gcompris/paintings/image/Square.png"],
            result.Pairs.Select(p => p.Key));
        var arch = result.Pairs[0];
        Assert.StartsWith("Stone Arch. A stone arch", arch.Caption);
        Assert.Equal("explore_monuments", arch.Label);
        Assert.Null(arch.ProxyClass);
        Assert.Equal("gcompris/arch", arch.SplitKey);
        using (var png = SKBitmap.Decode(arch.SourcePath)) Assert.Equal((512, 384), (png.Width, png.Height)); // shrunk
        Assert.Equal("blue", result.Pairs[1].Caption);
        using (var painting = SKBitmap.Decode(result.Pairs[2].SourcePath))
        {
            // Tiles 20x20 centred at (30, 20) and (50, 20) on an 80x40 board: cropped to x 20..60, y 10..30.
            Assert.Equal((40, 20), (painting.Width, painting.Height));
            Near(SKColors.Red, painting.GetPixel(5, 10));
            Near(SKColors.Yellow, painting.GetPixel(35, 10));
        }
        Assert.Equal("Some Painter, A Red Square - 1900", result.Pairs[2].Caption);
        Assert.Equal(1, result.Dropped[GComprisPairSource.UndecodableWebP]);   // the truncated castle
        Assert.Equal(1, result.Dropped[GComprisPairSource.NoCaption]);         // uncaptioned.webp
        Assert.Equal(3, result.Dropped[GComprisPairSource.Piece]);             // Castle_0 and the two tiles
        Assert.Equal(result.Candidates, result.Pairs.Count + result.Dropped.Values.Sum());
        Assert.False(File.Exists(Path.Combine(extract, "details", "image", "Castle_background.png"))); // never written, never linked
    }

    [Fact]
    public void GComprisSource_MissingArchiveNamesThePackage()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => new GComprisPairSource("/tmp/x", "/nonexistent/rcc").Build());
        Assert.Contains("apt-get install -y --no-install-recommends gcompris-qt-data", e.Message);
    }

    [FactWhenInstalled(GComprisPairSource.DefaultRoot, GComprisPairSource.Package)]
    public void RealGCompris_CaptionsEveryActivity()
    {
        var (items, dropped, candidates) = new GComprisPairSource(Path.Combine(Path.GetTempPath(), "unused")).Describe();
        Assert.Equal(747, candidates); // WebP pictures of the seven activities, plus 22 reassembled paintings
        Assert.InRange(items.Count, 340, 360); // 351 in gcompris-qt-data 3.1
        var golden = Assert.Single(items, i => i.Image.EndsWith("/india/goldenTemple.webp", StringComparison.Ordinal));
        Assert.StartsWith("Golden Temple. Sri Harimandir Sahib", golden.Caption);
        Assert.Contains(items, i => i.Caption == "Albrecht Dürer, Lion - 1494");
        Assert.Contains(items, i => i.Caption.StartsWith("measuring tape (", StringComparison.Ordinal));
        Assert.Contains(items, i => i.Caption == "apple");
        Assert.All(items, i => Assert.InRange(i.Caption.Length, 1, GComprisPairSource.MaxCaptionChars));
        Assert.True(dropped[GComprisPairSource.Piece] > 300);
    }

    private const string MateXml = """
        <?xml version="1.0"?>
        <!DOCTYPE wallpapers SYSTEM "mate-wp-list.dtd">
        <wallpapers>
          <wallpaper deleted="false">
            <!-- Translators: This is the name of a desktop background image that shows an orange/red flower.
                You might want to translate it  -->
            <name>Fresh Flower</name>
            <name xml:lang="fr">Fleur fraîche</name>
            <filename>/usr/share/backgrounds/mate/nature/FreshFlower.jpg</filename>
          </wallpaper>
          <wallpaper deleted="true"><name>Gone</name><filename>/usr/share/backgrounds/gone.jpg</filename></wallpaper>
          <wallpaper><name>Stripes</name><filename>/opt/stripes.png</filename></wallpaper>
        </wallpapers>
        """;

    [Fact]
    public void WallpaperMetadata_GivesTitlesAndWhatTheyShow()
    {
        var list = WallpaperPairSource.ParseBackgroundProperties(MateXml, "mate-backgrounds", "/tmp/share");
        Assert.Equal(2, list.Count);
        Assert.Equal(new WallpaperPairSource.Wallpaper("mate-backgrounds", "/tmp/share/backgrounds/mate/nature/FreshFlower.jpg", "Fresh Flower", "an orange/red flower"), list[0]);
        Assert.Equal("/opt/stripes.png", list[1].Image);
        Assert.Null(list[1].Shows);
        Assert.Equal("Fresh Flower: an orange/red flower", WallpaperPairSource.Caption(list[0].Title, list[0].Shows));
        Assert.Equal("Autumn", WallpaperPairSource.Caption("Autumn 5.5", null));
        Assert.Equal("", WallpaperPairSource.Caption("  ", null));
        var e = Assert.Throws<InvalidDataException>(() => WallpaperPairSource.ParseBackgroundProperties("<wallpapers><x>", "p", "/", "bad.xml"));
        Assert.Contains("bad.xml", e.Message);

        var (title, licence) = WallpaperPairSource.ParsePlasmaMetadata("""{ "KPlugin": { "Name": "Cold Ripple", "Name[de]": "x", "License": "LGPLv3" } }""");
        Assert.Equal(("Cold Ripple", "LGPLv3"), (title, licence));
        Assert.Equal("images/640x480.jpg", WallpaperPairSource.PickPlasmaImage(["images/1920x1080.jpg", "images/640x480.jpg", "images/440x247.png", "images/screenshot.jpg"]));
        Assert.Equal("images/440x247.png", WallpaperPairSource.PickPlasmaImage(["images/440x247.png", "images/300x200.png"]));
        Assert.Null(WallpaperPairSource.PickPlasmaImage(["screenshot.jpg"]));
    }

    [Fact]
    public void WallpaperSource_DownscalesAndDropsWhatItCannotUse()
    {
        using var dir = new TempDir();
        string share = Path.Combine(dir.Path, "share");
        Directory.CreateDirectory(Path.Combine(share, "gnome-background-properties"));
        Directory.CreateDirectory(Path.Combine(share, "mate-background-properties"));
        string plasma = Path.Combine(share, "wallpapers", "Autumn", "contents", "images");
        Directory.CreateDirectory(plasma);
        File.WriteAllText(Path.Combine(share, "wallpapers", "Autumn", "metadata.json"), """{ "KPlugin": { "Name": "Autumn 5.5", "License": "LGPLv3" } }""");
        File.WriteAllBytes(Path.Combine(plasma, "1280x800.jpg"), Jpeg(1280, 800));
        File.WriteAllBytes(Path.Combine(plasma, "320x200.jpg"), Jpeg(320, 200));
        string bg = Path.Combine(share, "backgrounds");
        Directory.CreateDirectory(bg);
        File.WriteAllBytes(Path.Combine(bg, "flower.jpg"), Jpeg(600, 300));
        File.WriteAllBytes(Path.Combine(bg, "broken.jpg"), "not a jpeg"u8.ToArray());
        File.WriteAllText(Path.Combine(share, "mate-background-properties", "m.xml"), $"""
            <wallpapers>
              <wallpaper><!-- image that shows a red flower. --><name>Flower</name><filename>{bg}/flower.jpg</filename></wallpaper>
              <wallpaper><name>Flower</name><filename>{bg}/flower-big.jpg</filename></wallpaper>
              <wallpaper><name>Broken</name><filename>{bg}/broken.jpg</filename></wallpaper>
              <wallpaper><name>Vector</name><filename>{bg}/v.svg</filename></wallpaper>
              <wallpaper><name>Missing</name><filename>{bg}/none.jpg</filename></wallpaper>
            </wallpapers>
            """);
        var result = new WallpaperPairSource(Path.Combine(dir.Path, "x"), share).Build();
        Assert.Equal(["wallpapers/mate-backgrounds/flower.jpg", "wallpapers/plasma-workspace-wallpapers/Autumn.jpg"], result.Pairs.Select(p => p.Key));
        Assert.Equal("Flower: a red flower", result.Pairs[0].Caption);
        Assert.Equal("Autumn", result.Pairs[1].Caption);
        using (var a = SKBitmap.Decode(result.Pairs[1].SourcePath)) Assert.Equal((512, 320), (a.Width, a.Height)); // from 1280x800
        using (var f = SKBitmap.Decode(result.Pairs[0].SourcePath)) Assert.Equal((512, 256), (f.Width, f.Height));
        Assert.Equal(1, result.Dropped[WallpaperPairSource.SameTitle]);
        Assert.Equal(1, result.Dropped[WallpaperPairSource.Undecodable]);
        Assert.Equal(1, result.Dropped[WallpaperPairSource.Svg]);
        Assert.Equal(1, result.Dropped[WallpaperPairSource.Missing]);
        Assert.Equal(result.Candidates, result.Pairs.Count + result.Dropped.Values.Sum());
    }

    [FactWhenInstalled("/usr/share/mate-background-properties", "mate-backgrounds gnome-backgrounds plasma-workspace-wallpapers")]
    public void RealWallpapers_AreListedWithTitles()
    {
        var found = new WallpaperPairSource(Path.Combine(Path.GetTempPath(), "unused")).Find();
        Assert.InRange(found.Count, 50, 120); // 73 in bookworm
        Assert.Contains(found, w => w.Title == "Fresh Flower" && w.Shows == "an orange/red flower");
        Assert.Contains(found, w => w.Package == "plasma-workspace-wallpapers" && w.Title == "Cold Ripple" && File.Exists(w.Image));
    }

    [Fact]
    public void Sources_DefaultIsAllSixChosenByTheAblation()
    {
        Assert.Equal(["tuxpaint", "emoji", "openclipart", "gcompris", "wallpapers", "twemoji"], new DataPreparerOptions { OutputDirectory = "x" }.Sources.Select(s => s.Name));
        Assert.Equal(["gcompris", "wallpapers", "twemoji:0.5"], SourceSelection.ParseList("gcompris,wallpapers,twemoji:0.5").Select(s => s.Fraction == 1 ? s.Name : $"{s.Name}:{s.Fraction}"));
        Assert.Equal(["gcompris-qt-data", "gnome-backgrounds", "mate-backgrounds", "plasma-workspace-wallpapers"],
            DataDependencies.AptPackagesFor(["gcompris", "wallpapers"], labelled: false));
        var e = Assert.Throws<ArgumentException>(() => new EmojiPairSource("/x", "apple"));
        Assert.Contains("not clearly licensed", e.Message);
    }

    [Fact]
    public void NewSources_NotInstalled_NameThePackages()
    {
        using var dir = new TempDir();
        var options = new DataPreparerOptions
        {
            OutputDirectory = dir.Path, Install = false, IncludeLabelled = false,
            Sources = SourceSelection.ParseList("gcompris,wallpapers,twemoji"),
            GComprisRoot = "/nonexistent/rcc", WallpaperShareRoot = "/nonexistent/share",
        };
        var e = Assert.Throws<DataPreparationException>(() => DataPreparer.Prepare(options));
        Assert.Contains("gcompris-qt-data", e.Message);
        Assert.Contains("plasma-workspace-wallpapers", e.Message);
        Assert.Contains("emoji-datasource-twitter", e.Message);
        Assert.False(File.Exists(Path.Combine(dir.Path, "pairs.tsv")));
    }

    [Fact]
    public void Twemoji_FollowsTheNotoSideAndStaysOutOfTheProxy()
    {
        using var dir = new TempDir();
        string nm = Path.Combine(dir.Path, "npm", "node_modules");
        const int n = 60;
        var codes = Enumerable.Range(0, n).Select(i => (0x1F600 + i).ToString("X")).ToList();
        Write(Path.Combine(nm, "emojibase-data", "package.json"), """{ "version": "17.0.0" }""");
        Write(Path.Combine(nm, "emojibase-data", "meta", "groups.json"), """{ "groups": { "0": "smileys-emotion" }, "subgroups": { "0": "face-smiling" } }""");
        Write(Path.Combine(nm, "emojibase-data", "en", "messages.json"), """{ "groups": [ { "key": "smileys-emotion", "message": "smileys & emotion" } ] }""");
        Write(Path.Combine(nm, "emojibase-data", "en", "data.json"),
            JsonSerializer.Serialize(codes.Select((c, i) => new { hexcode = c, label = $"face {i}", group = 0, subgroup = 0, tags = new[] { "t" } })));
        foreach (var set in new[] { "google", "twitter" })
        {
            string pkg = Path.Combine(nm, $"emoji-datasource-{set}");
            Write(Path.Combine(pkg, "package.json"), """{ "version": "16.0.0" }""");
            var items = codes.Select(c => new Dictionary<string, object> { ["unified"] = c, ["image"] = c.ToLowerInvariant() + ".png", [$"has_img_{set}"] = true });
            Write(Path.Combine(pkg, "emoji.json"), JsonSerializer.Serialize(items));
            for (int i = 0; i < n; i++)
                File.WriteAllBytes(Path.Combine(Directory.CreateDirectory(Path.Combine(pkg, "img", set, "64")).FullName, codes[i].ToLowerInvariant() + ".png"),
                    Png(new SKColor((byte)i, (byte)(set == "google" ? 10 : 200), 50)));
        }
        var result = DataPreparer.Prepare(new DataPreparerOptions
        {
            OutputDirectory = Path.Combine(dir.Path, "data"), NodeModulesDirectory = nm, Install = false, IncludeLabelled = false,
            Sources = SourceSelection.ParseList("emoji,twemoji"), HeldOutFraction = 0.25, ProxyFraction = 0.25,
        });
        static Dictionary<string, string> Sides(DataPreparationResult r)
        {
            var side = new Dictionary<string, string>();
            foreach (var (file, name) in new[] { (r.TrainTsv, "train"), (r.HeldOutTsv, "heldout"), (r.ProxyTsv, "proxy") })
                foreach (var line in File.ReadLines(file).Skip(1)) side[line.Split('\t')[0]] = name;
            return side;
        }
        var sides = Sides(result);
        var noto = sides.Where(kv => kv.Key.StartsWith("images/emoji/", StringComparison.Ordinal)).ToList();
        Assert.Contains(noto, kv => kv.Value == "proxy");
        Assert.Contains(noto, kv => kv.Value == "heldout");
        int dropped = 0;
        foreach (var (image, side) in noto)
        {
            string tw = image.Replace("images/emoji/", "images/twemoji/", StringComparison.Ordinal);
            if (side == "proxy") { Assert.False(sides.ContainsKey(tw), $"{tw} must be kept out (its Noto view is a proxy item)"); dropped++; }
            else Assert.Equal(side, sides[tw]);
        }
        var twemoji = Assert.Single(result.Sources, s => s.Name == "twemoji");
        Assert.Equal(0, twemoji.Proxy);
        Assert.Equal(dropped, twemoji.Dropped[DataPreparer.ExtraViewOfProxyItem]);
        Assert.Equal(n - dropped, twemoji.Pairs);
        Assert.Equal(["emoji"], result.Proxy.Select(p => p.Name));
        var heldCaptions = File.ReadLines(result.HeldOutTsv).Skip(1).Where(l => l.StartsWith("images/twemoji/", StringComparison.Ordinal)).Select(l => l.Split('\t')[1]);
        var trainCaptions = File.ReadLines(result.TrainTsv).Skip(1).Select(l => l.Split('\t')[1]).ToHashSet();
        Assert.DoesNotContain(heldCaptions, trainCaptions.Contains); // no caption of a held-out emoji is trained on
    }

    /// <summary>WebP is lossy here: colours within 12 levels per channel.</summary>
    private static void Near(SKColor expected, SKColor actual)
    {
        Assert.True(Math.Abs(expected.Red - actual.Red) <= 12 && Math.Abs(expected.Green - actual.Green) <= 12 && Math.Abs(expected.Blue - actual.Blue) <= 12,
            $"expected about {expected}, got {actual}");
    }

    private static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static byte[] Encode(SKColor color, int w, int h, SKEncodedImageFormat format, int quality)
    {
        using var bitmap = new SKBitmap(w, h);
        bitmap.Erase(color);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, quality);
        return data.ToArray();
    }

    private static byte[] Webp(SKColor color, int w, int h) => Encode(color, w, h, SKEncodedImageFormat.Webp, 100);
    private static byte[] Jpeg(int w, int h) => Encode(SKColors.Orange, w, h, SKEncodedImageFormat.Jpeg, 90);
    private static byte[] Png(SKColor color) => Encode(color, 8, 8, SKEncodedImageFormat.Png, 100);

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("mlnet-photo-").FullName;
        public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
    }
}
