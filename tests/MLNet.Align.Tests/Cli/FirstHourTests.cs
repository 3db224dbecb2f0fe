using System.Text.Json;
using MLNet.Align.Cli;
using MLNet.Align.Cli.Commands;
using MLNet.Align.Demo.Data;
using MLNet.Align.Demo;
using MLNet.Align.Charts;
using MLNet.Align.Evaluation;
using Spectre.Console;
using MLNet.Align.Terminal;

namespace MLNet.Align.Tests.Cli;

/// <summary>What a new user reads: progress lines, the serving showcase, report paths, predict's table, console width.</summary>
public class FirstHourTests
{
    /// <summary>A console that records plain text (no colours, no ANSI codes) at a given width.</summary>
    private sealed class RecordingConsole
    {
        private readonly StringWriter _writer = new();
        public RecordingConsole(int width)
        {
            Console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No, Out = new AnsiConsoleOutput(_writer),
            });
            Console.Profile.Width = width;
        }
        public IAnsiConsole Console { get; }
        public string Output => _writer.ToString();
    }

    [Theory]
    [InlineData(2.5, "pairs", "2.5 pairs/s")]
    [InlineData(250.0, "images", "250 images/s")]
    [InlineData(0.04, "epochs", "2.4 epochs/min")]
    [InlineData(0.0001, "pairs", "0.4 pairs/h")]
    [InlineData(0.0, "items", "")]
    [InlineData(3.0, CliProgress.Percent, "")]
    public void Rate_uses_a_unit_that_reads_and_never_prints_zero(double perSecond, string unit, string expected)
        => Assert.Equal(expected, CliProgress.FormatRate(perSecond, unit));

    [Fact]
    public void Plain_lines_name_the_unit_say_at_most_for_early_stopping_and_print_no_rate_before_any_work()
    {
        // 3 epochs in 75 s: 0.04 epochs/s = 2.4/min; 17 left at that rate = 425 s.
        Assert.Equal("Training seed 0: 3 of at most 20 epochs (2.4 epochs/min, at most 00:07:05 left)",
            CliProgress.PlainLine("Training seed 0", 3, 20, 75, "epochs", atMost: true));
        Assert.Equal("Scoring 6 pairs: 2/6 pairs (24.0 pairs/h, 00:10:00 left)", CliProgress.PlainLine("Scoring 6 pairs", 2, 6, 300, "pairs", atMost: false));
        Assert.Equal("Scoring 6 pairs: 0/6 pairs (00:00:12 elapsed)", CliProgress.PlainLine("Scoring 6 pairs", 0, 6, 12, "pairs", atMost: false));
        Assert.Equal("Preparing data: 40% (00:01:10 elapsed)", CliProgress.PlainLine("Preparing data", 40, 100, 70, CliProgress.Percent, atMost: false));
        Assert.DoesNotContain("0.0", CliProgress.PlainLine("Encoding", 0, 10, 5, "items", false));
    }

    [Fact]
    public void Redirected_progress_prints_each_new_sub_step_once()
    {
        var lines = new List<string>();
        var p = new CliProgress.PlainProgress("Preparing data", 100, CliProgress.Percent, false, lines.Add);
        p.Step("apt-get install: unpacking openclipart-png (1/9)");
        p.Step("apt-get install: unpacking openclipart-png (1/9)");
        p.Step("apt-get install: unpacking openclipart-svg (2/9)");
        p.Report(100);
        Assert.Equal(["Preparing data: apt-get install: unpacking openclipart-png (1/9)", "Preparing data: apt-get install: unpacking openclipart-svg (2/9)",
            "Preparing data: 100% (00:00:00 elapsed)"], lines);
    }

    [Fact]
    public void Apt_output_becomes_numbered_named_sub_steps()
    {
        var steps = new List<string>();
        var apt = new DataDependencies.AptOutputProgress(steps.Add);
        foreach (var line in new[]
        {
            "Reading package lists...", "The following NEW packages will be installed:", "  openclipart-png tuxpaint-stamps-default",
            "0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.", "Need to get 150 MB of archives.",
            "Get:1 http://deb.debian.org/debian bookworm/main amd64 openclipart-png all 1:0.18+dfsg-15 [120 MB]",
            "Get:2 http://deb.debian.org/debian bookworm/main amd64 tuxpaint-stamps-default all 2022.06.04-1 [30 MB]",
            "Fetched 150 MB in 9s (16.7 MB/s)", "Selecting previously unselected package openclipart-png.",
            "Unpacking openclipart-png (1:0.18+dfsg-15) ...", "Unpacking tuxpaint-stamps-default (2022.06.04-1) ...",
            "Setting up openclipart-png (1:0.18+dfsg-15) ...", "Setting up tuxpaint-stamps-default:all (2022.06.04-1) ...",
        })
            apt.OnLine(line);
        Assert.Equal(
        [
            "apt-get install: downloading openclipart-png (1/2)", "apt-get install: downloading tuxpaint-stamps-default (2/2)",
            "apt-get install: unpacking openclipart-png (1/2)", "apt-get install: unpacking tuxpaint-stamps-default (2/2)",
            "apt-get install: setting up openclipart-png (1/2)", "apt-get install: setting up tuxpaint-stamps-default (2/2)",
        ], steps);
    }

    private sealed class RecordingBar : CliProgress.IStepProgress
    {
        public List<long> Values { get; } = [];
        public List<string> Steps { get; } = [];
        public void Report(long value) => Values.Add(value);
        public void Step(string text) => Steps.Add(text);
    }

    [Fact]
    public void Preparation_bar_names_install_messages_and_stages_and_never_moves_back()
    {
        var bar = new RecordingBar();
        var prep = new PreparationBar(bar);
        prep.Report(new DataPreparationProgress("install", 0, 0, "apt-get install: unpacking openclipart-png (1/9)"));
        prep.Report(new DataPreparationProgress("export fashion-mnist-test", 500, 1000));
        prep.Report(new DataPreparationProgress("export fashion-mnist-test", 1000, 1000));
        prep.Report(new DataPreparationProgress("check images", 10, 100));
        prep.Report(new DataPreparationProgress("export fashion-mnist-test", 0, 1000)); // late, out of order
        Assert.Equal(["apt-get install: unpacking openclipart-png (1/9)", "exporting fashion-mnist-test as PNGs (1,000 images)",
            "checking that every image decodes (and dropping duplicates) (100 images)", "exporting fashion-mnist-test as PNGs (1,000 images)"], bar.Steps);
        // install 0-5, first export 5-22.5 (half of 5-40), check images 55-90.
        Assert.Equal([0L, 13, 22, 58, 58], bar.Values);
    }

    [Fact]
    public void Redirected_console_gets_a_wide_table_that_keeps_names_on_one_line()
    {
        var rec = new RecordingConsole(80);
        var console = rec.Console;
        CliProgress.ConfigureConsole(console, redirected: false);
        Assert.Equal(80, console.Profile.Width);
        CliProgress.ConfigureConsole(console, redirected: true);
        Assert.Equal(200, console.Profile.Width);
        var name = "resnet18.layer4 x sentence-transformers/all-MiniLM-L6-v2 (pooled, mean of captions)";
        Table Make()
        {
            var t = new Table().AddColumn("pair").AddColumn("linear CKA").AddColumn("RBF CKA").AddColumn("mutual k-NN");
            t.AddRow(Markup.Escape(name), Markup.Escape("0.310 [0.290, 0.332] (0.119)"), Markup.Escape("0.402 [0.380, 0.420] (0.200)"), Markup.Escape("0.101 [0.090, 0.110] (0.020)"));
            return t;
        }
        console.Write(Make());
        Assert.Contains(name, rec.Output);
        // The same table at Spectre's 80-column default splits the name over lines.
        var narrow = new RecordingConsole(80);
        narrow.Console.Write(Make());
        Assert.DoesNotContain(name, narrow.Output);
    }

    [Fact]
    public void Predict_prints_every_image_path_in_full_on_its_own_line()
    {
        var rec = new RecordingConsole(40);
        var console = rec.Console;
        string a = "/data/photos/" + new string('a', 70) + "/sneaker.png", b = "/data/photos/" + new string('a', 70) + "/boot.png";
        PredictCommand.Print(
        [
            new PredictCommand.ImageResult(a, "Sneaker", [new("Sneaker", 0.61f), new("Sandal", 0.2f)]),
            new PredictCommand.ImageResult(b, "Ankle boot", [new("Ankle boot", 0.7f)], "RightTop"),
        ], console);
        var lines = rec.Output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Contains(a, lines);
        Assert.Contains(b, lines);
        Assert.Contains("  -> Ankle boot (EXIF RightTop applied)", lines);
        Assert.Contains("0.6100", rec.Output);
    }

    [Theory]
    [InlineData("t-shirt (blue, casual, clothes, clothing, dressed)", "T-shirt/top")]
    [InlineData("A polo shirt.", "Shirt")]
    [InlineData("jeans (blue, casual, pants)", "Trouser")]
    [InlineData("purse (clothes, coin, dress, handbag)", "Bag")]
    [InlineData("Dresses, fashion, woman", "Dress")]
    [InlineData("woman's boot (boot, clothing, shoe)", "Ankle boot")]
    [InlineData("Hedgehog. Hedgehogs have a spiny coat", null)]
    [InlineData("coat of arms of a town", null)]
    [InlineData("shirt and jeans", null)]
    [InlineData("bagel with cream cheese", null)]
    public void A_caption_names_a_class_only_in_its_head_and_unambiguously(string caption, string? expected)
    {
        var classes = MLNet.Align.Demo.Data.IdxReader.FashionMnistClassNames;
        var c = DemoShowcase.CaptionClass(caption, classes);
        Assert.Equal(expected, c is int i ? classes[i] : null);
    }

    private static ShowcaseRow Row(string truth, params string[] top3) => new()
    {
        Image = $"data/{truth}.png", Origin = "held-out emoji", True = truth, Predicted = top3[0], InProcessPredicted = top3[0],
        Top3 = top3.Select((t, i) => new ShowcaseScore(t, 0.5 - 0.1 * i)).ToList(),
    };

    [Fact]
    public void Showcase_accuracy_is_computed_from_the_rows_shown()
    {
        var rows = new List<ShowcaseRow>
        {
            Row("Dress", "Dress", "Coat", "Shirt"), Row("Bag", "Sandal", "Bag", "Dress"), Row("Shirt", "Coat", "Pullover", "Dress"),
            Row("Trouser", "Trouser", "Dress", "Bag"), Row("Coat", "Pullover", "Shirt", "Bag"),
        };
        Assert.Equal("2 of 5 right at top-1 (40%), 3 of 5 with the true class in the top 3", DemoShowcase.AccuracyLine(rows));
        Assert.Equal("no image shown", DemoShowcase.AccuracyLine([]));
        Assert.Equal(["truth: Bag", "1. Sandal 0.500", "2. Bag 0.400", "3. Dress 0.300", "held-out emoji"], DemoShowcase.SheetLines(rows[1]));
    }

    [Fact]
    public void Showcase_choice_is_fixed_by_captions_and_seed_only()
    {
        var dir = Directory.CreateTempSubdirectory("showcase-").FullName;
        try
        {
            var classes = MLNet.Align.Demo.Data.IdxReader.FashionMnistClassNames;
            foreach (var c in new[] { "Dress", "Bag" })
                for (int i = 0; i < 5; i++)
                {
                    Directory.CreateDirectory(Path.Combine(dir, "fm", c));
                    File.WriteAllBytes(Path.Combine(dir, "fm", c, $"{i}.png"), [0x89, (byte)'P', (byte)'N', (byte)'G']);
                }
            var labelled = MLNet.Align.Embeddings.ImageFolderDataset.Load(Path.Combine(dir, "fm"));
            var held = new List<PairRecord>
            {
                new("/d/dress1.png", "dress (clothing, woman)", "emoji", "people"), new("/d/dress2.png", "A red dress.", "tuxpaint", "clothes"),
                new("/d/dress2.png", "Another caption of the same dress image", "tuxpaint", "clothes"),
                new("/d/purse.png", "purse (dress, handbag)", "emoji", "objects"), new("/d/heron.png", "A great blue heron.", "tuxpaint", "animals"),
            };
            var a = DemoShowcase.Choose(held, classes, labelled, "fashion-mnist-test", labelledCount: 4);
            var b = DemoShowcase.Choose(held.AsEnumerable().Reverse().ToList(), classes, labelled, "fashion-mnist-test", labelledCount: 4);
            Assert.Equal(a, b); // input order does not matter
            // Dress (2 candidate images, one drawn), Bag (the purse: its head names only Bag), no heron; then 4 labelled.
            Assert.Equal(2 + 4, a.Count);
            Assert.Equal("Dress", classes[a[0].Label]);
            Assert.Contains(a[0].Path, new[] { "/d/dress1.png", "/d/dress2.png" });
            Assert.StartsWith("held-out ", a[0].Origin);
            Assert.Equal("/d/purse.png", a[1].Path);
            Assert.Equal("Bag", classes[a[1].Label]);
            Assert.All(a.Skip(2), p => Assert.Equal("fashion-mnist-test", p.Origin));
            Assert.All(a.Skip(2), p => Assert.Equal(Path.GetFileName(Path.GetDirectoryName(p.Path)), classes[p.Label]));
            Assert.NotEqual(a.Skip(2).Select(p => p.Path), DemoShowcase.Choose(held, classes, labelled, "fashion-mnist-test", 4, seed: 1).Skip(2).Select(p => p.Path));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Report_paths_are_relative_to_the_out_folder()
    {
        var outDir = Path.Combine(Path.GetTempPath(), "fh-out");
        var zs = new Dictionary<string, ZeroShotSummary> { ["fashion_mnist"] = new(0.25, 0.6, 1000, 0.24) };
        var rr = new Dictionary<string, RetrievalResult>
        {
            ["heldout"] = new() { N = 10, Captions = 20, ImageToText = new RecallAtK { R1 = 0.1, R5 = 0.3, R10 = 0.5 }, TextToImage = new RecallAtK { R1 = 0.1, R5 = 0.3, R10 = 0.5 } },
        };
        var scores = new MethodScores { ZeroShot = zs, Retrieval = rr, ProxyTop1 = 0.3 };
        var report = new DemoReport
        {
            Encoders = new() { ["image"] = "resnet18", ["text"] = "minilm" }, Data = new() { ["train_pairs"] = 100 }, Recipe = "r",
            Stage1 = new() { ["n"] = 1000, ["linear_cka"] = 0.5, ["unbiased_linear_cka"] = 0.2, ["rbf_cka"] = 0.6, ["mutual_knn10"] = 0.1, ["linear_cka_shuffled_control"] = 0.1, ["unbiased_linear_cka_shuffled_control"] = 0 },
            ZeroShot = zs, Retrieval = rr, Seeds = new() { ["seed0"] = scores }, Baselines = new(), LinearProbe = new() { ["fashion_mnist"] = new LinearProbeResult { Top1 = 0.8, NTrain = 500, NTest = 1000 } },
            Predictions = [Row("Dress", "Dress", "Coat", "Bag") with { Image = Path.Combine(Path.GetTempPath(), "data", "dress.png") }],
            Showcase = new ShowcaseSummary { Zip = Path.Combine(outDir, "zero-shot-fashion-mnist-test.zip"), Rule = "seed 0", Shown = 1, Top1Correct = 1, Top3Correct = 1 },
            Selection = new DemoSelection { Directory = Path.Combine(outDir, "select"), Pairs = [] },
            Models = new() { ["aligned"] = Path.Combine(outDir, "aligned-model"), ["zero_shot_zip"] = Path.Combine(outDir, "zero-shot-fashion-mnist-test.zip") },
            TimingsS = new() { ["total"] = 1 },
        };
        var rel = DemoOutput.RelativePaths(report, outDir);
        Assert.Equal("aligned-model", rel.Models["aligned"]);
        Assert.Equal("zero-shot-fashion-mnist-test.zip", rel.Models["zero_shot_zip"]);
        Assert.Equal("select", rel.Selection!.Directory);
        Assert.Equal(Path.Combine("..", "data", "dress.png"), rel.Predictions[0].Image);
        Assert.Equal(rel.Predictions[0].Image, DemoOutput.RelativePaths(rel, outDir).Predictions[0].Image); // idempotent
        string json = JsonSerializer.Serialize(rel), md = DemoOutput.Markdown(rel, []);
        Assert.DoesNotContain(Path.GetTempPath(), json);
        Assert.DoesNotContain(Path.GetTempPath(), md);
        Assert.Contains("1 of 1 right at top-1 (100%)", md);
        Assert.Contains("not `select`'s per-image probe", md);
    }

    [Fact]
    public void Default_cache_location_is_announced_and_a_chosen_one_is_not()
    {
        Assert.Null(CliCache.DefaultLine("/my/cache", "/my/cache"));
        var line = CliCache.DefaultLine(null, "/home/u/.cache/mlnet-align/embeddings")!;
        Assert.StartsWith("cache: /home/u/.cache/mlnet-align/embeddings (", line);
        Assert.Contains("--cache DIR", line);
        Assert.Contains("set MLNET_ALIGN_CACHE", CliCache.DefaultLine(null, "/x", hasOption: false));
    }

    [Fact]
    public void Contact_sheet_is_a_png_of_the_items_and_a_missing_image_is_named()
    {
        Assert.True(Plots.Available);
        var dir = Directory.CreateTempSubdirectory("contact-").FullName;
        try
        {
            var fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "pairs", "images");
            var images = Directory.GetFiles(fixtures, "*.png").Order(StringComparer.Ordinal).Take(3).ToList();
            var sheet = Path.Combine(dir, "showcase.png");
            Plots.ContactSheet(sheet, images.Select((p, i) => new ContactItem { Path = p, Lines = ["truth: x", $"1. y 0.{i}"], Correct = i == 0 }).ToList(), "title", "subtitle", columns: 3);
            var bytes = File.ReadAllBytes(sheet);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
            // PNG header: width and height, big-endian, at bytes 16-23. Three 224-pixel cells, one row.
            int width = (bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19];
            int height = (bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23];
            Assert.Equal(3 * 224, width);
            Assert.Equal(62 + 160 + 24 + 2 * 17 + 12, height);
            var missing = Path.Combine(dir, "nope.png");
            Assert.Contains($"'{missing}' does not exist", Assert.Throws<ArgumentException>(() => Plots.ContactSheet(Path.Combine(dir, "b.png"), [new ContactItem { Path = missing }], "t")).Message);
            Assert.Throws<ArgumentException>(() => Plots.ContactSheet(Path.Combine(dir, "c.png"), [], "t"));
            Assert.False(File.Exists(Path.Combine(dir, "b.png")));
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>The README's zero-shot chart is drawn from the README's own table: a change of one without the other fails.</summary>
public class ReadmeChartTests
{
    [Fact]
    public void Zero_shot_chart_spec_holds_the_readme_table_values()
    {
        string root = RepoRoot.Path;
        var readme = File.ReadAllLines(Path.Combine(root, "README.md"));
        var spec = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "docs", "demo-zero-shot.spec.json"))).RootElement[0];
        var series = spec.GetProperty("Series").EnumerateArray().Select(e => e.GetString()!).ToList();
        var values = spec.GetProperty("SeriesValues").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToList();
        // README row label -> chart series.
        var rows = new Dictionary<string, string>
        {
            ["| **`train` default: auto's choice"] = "train default (auto's choice)", ["| locked-text recipe, epoch chosen by the zero-shot proxy"] = "locked text, proxy (3 seeds)", ["| least squares (image -> text) |"] = "least_squares",
            ["| reverse ridge (text -> image) |"] = "reverse_ridge", ["| orthogonal Procrustes |"] = "procrustes",
            ["| ASIF (relative representations"] = "asif", ["| linear probe (supervised ceiling"] = "linear probe (supervised)",
        };
        foreach (var (prefix, name) in rows)
        {
            var line = readme.SingleOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
            Assert.True(line is not null, $"README has no single table row starting '{prefix}' (the demo table): keep this test's row map in step with it.");
            var cells = line.Split('|', StringSplitOptions.TrimEntries);
            double Cell(int i) => double.Parse(cells[i].Replace("*", "").TrimEnd('%'), System.Globalization.CultureInfo.InvariantCulture) / 100;
            var v = values[series.IndexOf(name)];
            Assert.True(Math.Abs(Cell(2) - v[0]) < 1e-9 && Math.Abs(Cell(3) - v[1]) < 1e-9,
                $"README row '{name}' reads {cells[2]} / {cells[3]} but docs/demo-zero-shot.spec.json has {v[0]} / {v[1]}: update the spec and redraw the chart (README, below the chart).");
        }
    }
}
