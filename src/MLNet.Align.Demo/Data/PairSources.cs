using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MLNet.Align.Demo.Data;

/// <summary>A pair found in an installed source, before images are checked and linked into a data folder.</summary>
/// <param name="SourcePath">Absolute path of the original image file.</param>
/// <param name="Key">Stable '/'-separated identity "source/relative/path.png": the link path under the data folder's
/// images/ and the input of the split hash, so splits are equal on every machine.</param>
/// <param name="Caption">Cleaned caption.</param>
/// <param name="Source">Source name.</param>
/// <param name="Label">Coarse label written to the TSV.</param>
/// <param name="Group">Finer grouping: Tux Paint/OpenClipart folder path below the root, emoji "group/subgroup" key.</param>
/// <param name="ProxyClass">Class name in the zero-shot proxy task, or null when the pair cannot serve as a proxy item.</param>
/// <param name="SplitKey">Input of the split and subset hashes when several images show one item (null: the image
/// path "images/" + Key). Twemoji pairs use the Noto emoji's image path, so both views of an emoji land on the same
/// side; GCompris pictures use their stem, so one monument photographed for two activities stays on one side.</param>
/// <param name="ExtraView">True when the pair is another rendering of an item of another source (its
/// <paramref name="SplitKey"/> is that item's image path): it follows that item onto its side of the split, and where
/// that side is the proxy it is dropped (never trained on, and the proxy set stays what it was).</param>
public sealed record SourcePair(string SourcePath, string Key, string Caption, string Source, string Label, string Group, string? ProxyClass,
    string? SplitKey = null, bool ExtraView = false);

/// <summary>What a source produced: pairs, how many candidates were seen and why the others were dropped.</summary>
public sealed record PairSourceResult(string Source, int Candidates, IReadOnlyList<SourcePair> Pairs, IReadOnlyDictionary<string, int> Dropped);

/// <summary>A source of image-caption pairs read from installed files (no network).</summary>
public interface IPairSource
{
    /// <summary>Source name used in the TSV's <c>source</c> column.</summary>
    string Name { get; }

    /// <summary>The input files this source reads, for change detection (absolute paths).</summary>
    IEnumerable<string> InputFiles();

    /// <summary>Builds the pairs, sorted by <see cref="SourcePair.Key"/> (ordinal).</summary>
    /// <exception cref="DirectoryNotFoundException">The source is not installed (the message says what to install).</exception>
    PairSourceResult Build(CancellationToken cancellationToken = default);
}

/// <summary>Tux Paint stamps (Debian tuxpaint-stamps-default): every <c>X.png</c> with a sibling <c>X.txt</c> whose
/// first line is the English description. Label = top folder ("animals"); proxy class = top folder as words
/// ("natural forces"). SVG-only stamps are skipped (PNG only); "_mirror" PNGs have no .txt and are dropped.</summary>
public sealed class TuxPaintPairSource(string root = TuxPaintPairSource.DefaultRoot) : IPairSource
{
    /// <summary>Where Debian installs the stamps.</summary>
    public const string DefaultRoot = "/usr/share/tuxpaint/stamps";
    /// <summary>Drop reason: the PNG has no .txt description.</summary>
    public const string NoDescription = "no .txt description";
    /// <summary>Drop reason: the description's first line is empty.</summary>
    public const string EmptyDescription = "empty description";

    private static readonly Dictionary<string, string> FolderWords = new(StringComparer.Ordinal) { ["naturalforces"] = "natural forces" };

    /// <inheritdoc />
    public string Name => "tuxpaint";

    /// <summary>Stamp root folder.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <inheritdoc />
    public IEnumerable<string> InputFiles()
    {
        Require();
        return Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase));
    }

    /// <inheritdoc />
    public PairSourceResult Build(CancellationToken cancellationToken = default)
    {
        Require();
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var pairs = new List<SourcePair>();
        var pngs = Directory.EnumerateFiles(Root, "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
        foreach (var png in pngs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string rel = Path.GetRelativePath(Root, png).Replace('\\', '/');
            string txt = Path.ChangeExtension(png, ".txt");
            if (!File.Exists(txt)) { Count(dropped, NoDescription); continue; }
            string caption = FirstLine(txt);
            if (caption.Length == 0) { Count(dropped, EmptyDescription); continue; }
            int slash = rel.IndexOf('/');
            string top = slash > 0 ? rel[..slash] : "";
            string group = Path.GetDirectoryName(rel)?.Replace('\\', '/') ?? "";
            string? proxy = top.Length == 0 ? null : FolderWords.GetValueOrDefault(top, top.Replace('_', ' '));
            pairs.Add(new SourcePair(png, $"{Name}/{rel}", caption, Name, top, group, proxy));
        }
        return new PairSourceResult(Name, pngs.Count, pairs, dropped);
    }

    /// <summary>First line of a stamp description, trimmed, a leading dash removed ("– Because ..." -> "Because ...").</summary>
    public static string FirstLine(string txtPath)
    {
        using var reader = new StreamReader(txtPath, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string line = (reader.ReadLine() ?? "").Trim();
        return line.TrimStart('–', '—', '-', ' ').Trim();
    }

    private void Require()
    {
        if (!Directory.Exists(Root))
            throw new DirectoryNotFoundException($"Tux Paint stamps not found at {Root}: install them with 'apt-get install -y --no-install-recommends tuxpaint-stamps-default'.");
    }

    internal static void Count(IDictionary<string, int> d, string reason) => d[reason] = d.TryGetValue(reason, out int n) ? n + 1 : 1;
}

/// <summary>Emoji (npm emoji-datasource-google: Noto, 64x64 PNG; or emoji-datasource-twitter: Twemoji, 64x64 PNG)
/// joined by code point sequence with CLDR names and tags (npm emojibase-data, en/data.json). Caption = "label (tag1,
/// tag2, ...)"; label = "group/subgroup" keys from emojibase's meta/groups.json (e.g. "animals-nature/animal-marine");
/// proxy class = the group's English name from en/messages.json ("animals &amp; nature"), none for the "component"
/// group (skin-tone swatches, hair parts).
/// <para>Image set "google" is the source "emoji" (Noto: Apache-2.0). Image set "twitter" is the source "twemoji"
/// (Twemoji graphics: CC-BY 4.0, (c) Twitter, Inc and other contributors, per the emoji-datasource README): the same
/// captions as "emoji", as extra views (<see cref="SourcePair.ExtraView"/>: split key = the Noto image path, so both
/// renderings of an emoji land on the same side; Twemoji images of proxy emoji are dropped; no proxy class). The
/// Apple and Facebook sets of emoji-datasource are not offered: Apple's images are "not licensed for commercial
/// usage" and Facebook's "have no clear licensing" (same README).</para></summary>
public sealed class EmojiPairSource(string nodeModules, string imageSet = "google") : IPairSource
{
    /// <summary>Drop reason: emojibase has the emoji but the Noto set has no image for it.</summary>
    public const string NoImage = "no Noto 64px image";
    /// <summary>Drop reason: emojibase has the emoji but the Twemoji set has no image for it.</summary>
    public const string NoTwemojiImage = "no Twemoji 64px image";
    /// <summary>Drop reason: the emoji has no group (regional indicator letters).</summary>
    public const string NoGroup = "no group";
    /// <summary>The image sets offered (emoji-datasource-{set}), with a clear licence for the images.</summary>
    public static IReadOnlyList<string> ImageSets { get; } = ["google", "twitter"];

    /// <inheritdoc />
    public string Name { get; } = imageSet switch
    {
        "google" => "emoji",
        "twitter" => "twemoji",
        _ => throw new ArgumentException($"unknown emoji image set '{imageSet}'; offered: {string.Join(", ", ImageSets)} (apple and facebook are not clearly licensed for this use).", nameof(imageSet)),
    };

    /// <summary>The emoji-datasource image set ("google" or "twitter").</summary>
    public string ImageSet { get; } = imageSet;

    /// <summary>The npm package of the images.</summary>
    public string Package => $"emoji-datasource-{ImageSet}";

    /// <summary>node_modules folder holding both npm packages.</summary>
    public string NodeModules { get; } = Path.GetFullPath(nodeModules);

    private string DataJson => Path.Combine(NodeModules, "emojibase-data", "en", "data.json");
    private string MessagesJson => Path.Combine(NodeModules, "emojibase-data", "en", "messages.json");
    private string GroupsJson => Path.Combine(NodeModules, "emojibase-data", "meta", "groups.json");
    private string DatasourceJson => Path.Combine(NodeModules, Package, "emoji.json");
    private string ImageDir => Path.Combine(NodeModules, Package, "img", ImageSet, "64");
    private bool IsExtraView => ImageSet != "google";

    /// <inheritdoc />
    public IEnumerable<string> InputFiles()
    {
        Require();
        return new[] { DataJson, MessagesJson, GroupsJson, DatasourceJson }.Concat(Directory.EnumerateFiles(ImageDir, "*.png"));
    }

    /// <inheritdoc />
    public PairSourceResult Build(CancellationToken cancellationToken = default)
    {
        Require();
        // emojibase hexcodes are fully qualified ("263A-FE0F"); emoji-datasource names images by "unified" and lists the
        // unqualified form too, so index both to join all of them.
        var imageByCode = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        using (var ds = JsonDocument.Parse(File.ReadAllBytes(DatasourceJson)))
            foreach (var e in ds.RootElement.EnumerateArray())
            {
                if (!e.TryGetProperty($"has_img_{ImageSet}", out var has) || has.ValueKind != JsonValueKind.True) continue;
                string image = e.GetProperty("image").GetString()!;
                foreach (var k in new[] { "unified", "non_qualified" })
                    if (e.TryGetProperty(k, out var code) && code.ValueKind == JsonValueKind.String)
                        imageByCode.TryAdd(code.GetString()!, image);
            }
        var groupKeys = new Dictionary<int, string>();
        var subgroupKeys = new Dictionary<int, string>();
        using (var g = JsonDocument.Parse(File.ReadAllBytes(GroupsJson)))
        {
            foreach (var p in g.RootElement.GetProperty("groups").EnumerateObject()) groupKeys[int.Parse(p.Name)] = p.Value.GetString()!;
            foreach (var p in g.RootElement.GetProperty("subgroups").EnumerateObject()) subgroupKeys[int.Parse(p.Name)] = p.Value.GetString()!;
        }
        var groupNames = new Dictionary<string, string>(StringComparer.Ordinal);
        using (var m = JsonDocument.Parse(File.ReadAllBytes(MessagesJson)))
            foreach (var e in m.RootElement.GetProperty("groups").EnumerateArray())
                groupNames[e.GetProperty("key").GetString()!] = e.GetProperty("message").GetString()!;

        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var pairs = new List<SourcePair>();
        int candidates = 0;
        using var data = JsonDocument.Parse(File.ReadAllBytes(DataJson));
        foreach (var e in data.RootElement.EnumerateArray())
        {
            cancellationToken.ThrowIfCancellationRequested();
            candidates++;
            string hex = e.GetProperty("hexcode").GetString()!;
            if (!imageByCode.TryGetValue(hex, out var image) || !File.Exists(Path.Combine(ImageDir, image)))
            { TuxPaintPairSource.Count(dropped, IsExtraView ? NoTwemojiImage : NoImage); continue; }
            if (!e.TryGetProperty("group", out var gEl) || !e.TryGetProperty("subgroup", out var sEl))
            { TuxPaintPairSource.Count(dropped, NoGroup); continue; }
            string group = groupKeys.GetValueOrDefault(gEl.GetInt32(), $"group{gEl.GetInt32()}");
            string subgroup = subgroupKeys.GetValueOrDefault(sEl.GetInt32(), $"subgroup{sEl.GetInt32()}");
            string label = e.GetProperty("label").GetString()!.Trim();
            var tags = e.TryGetProperty("tags", out var t)
                ? t.EnumerateArray().Select(x => x.GetString()!.Trim()).Where(x => x.Length > 0).ToList() : [];
            string caption = tags.Count > 0 ? $"{label} ({string.Join(", ", tags)})" : label;
            string? proxy = group == "component" || IsExtraView ? null : groupNames.GetValueOrDefault(group, group.Replace('-', ' '));
            pairs.Add(new SourcePair(Path.Combine(ImageDir, image), $"{Name}/{image}", caption, Name, $"{group}/{subgroup}", $"{group}/{subgroup}", proxy,
                IsExtraView ? $"images/emoji/{image}" : null, IsExtraView));
        }
        pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return new PairSourceResult(Name, candidates, pairs, dropped);
    }

    private void Require()
    {
        foreach (var f in new[] { DataJson, MessagesJson, GroupsJson, DatasourceJson })
            if (!File.Exists(f))
                throw new DirectoryNotFoundException($"Emoji data not found ({f} is missing): run 'npm install --ignore-scripts --no-audit --no-fund {Package}@16.0.0 emojibase-data@17.0.0' with --prefix {Path.GetDirectoryName(NodeModules)}.");
        if (!Directory.Exists(ImageDir))
            throw new DirectoryNotFoundException($"Emoji images not found at {ImageDir}: reinstall {Package}@16.0.0.");
    }
}

/// <summary>OpenClipart (Debian openclipart-png + openclipart-svg): each pre-rendered PNG with the SVG of the same path
/// stem, captioned from the SVG's RDF metadata (<c>cc:Work</c>'s own <c>dc:title</c> and <c>dc:subject</c> keywords),
/// cleaned by <see cref="CaptionCleaner"/>. Label = top folder ("animals").</summary>
public sealed partial class OpenClipartPairSource(string root = OpenClipartPairSource.DefaultRoot, CaptionCleaningOptions? options = null) : IPairSource
{
    /// <summary>Where Debian installs the png/ and svg/ trees.</summary>
    public const string DefaultRoot = "/usr/share/openclipart";
    /// <summary>Drop reason: a PNG without its SVG (no metadata).</summary>
    public const string NoSvg = "no SVG with metadata";

    /// <inheritdoc />
    public string Name => "openclipart";

    /// <summary>Folder holding png/ and svg/.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>Cleaning options in use.</summary>
    public CaptionCleaningOptions Options { get; } = options ?? new CaptionCleaningOptions();

    /// <inheritdoc />
    public IEnumerable<string> InputFiles()
    {
        Require();
        return Directory.EnumerateFiles(Path.Combine(Root, "png"), "*.png", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Path.Combine(Root, "svg"), "*.svg", SearchOption.AllDirectories));
    }

    /// <summary>Metadata read from one SVG.</summary>
    /// <param name="Title">The work's own title (not the creator's/publisher's), raw, or null.</param>
    /// <param name="Author">The creator's name, or null.</param>
    /// <param name="Keywords">Raw <c>dc:subject</c> keywords in file order.</param>
    public sealed record SvgMetadata(string? Title, string? Author, IReadOnlyList<string> Keywords);

    /// <summary>Reads the RDF metadata of an OpenClipart SVG with regular expressions (some files declare DTD
    /// entities an XML reader rejects; the metadata block itself is plain).</summary>
    public static SvgMetadata ReadMetadata(string svgText)
    {
        var work = WorkRegex().Match(svgText);
        if (!work.Success) return new SvgMetadata(null, null, []);
        string w = work.Groups[1].Value;
        var creator = CreatorRegex().Match(w);
        string? author = creator.Success ? creator.Groups[1].Value.Trim() : null;
        string own = AgentBlocksRegex().Replace(w, "");
        var title = TitleRegex().Match(own);
        var subject = SubjectRegex().Match(own);
        var keywords = subject.Success ? LiRegex().Matches(subject.Groups[1].Value).Select(m => m.Groups[1].Value).ToList() : [];
        return new SvgMetadata(title.Success ? title.Groups[1].Value : null, author, keywords);
    }

    /// <inheritdoc />
    public PairSourceResult Build(CancellationToken cancellationToken = default)
    {
        Require();
        string pngRoot = Path.Combine(Root, "png"), svgRoot = Path.Combine(Root, "svg");
        var pngs = Directory.EnumerateFiles(pngRoot, "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToArray();
        var meta = new SvgMetadata?[pngs.Length];
        Parallel.For(0, pngs.Length, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            string rel = Path.GetRelativePath(pngRoot, pngs[i]);
            string svg = Path.Combine(svgRoot, Path.ChangeExtension(rel, ".svg"));
            if (File.Exists(svg)) meta[i] = ReadMetadata(File.ReadAllText(svg));
        });
        var titleCounts = meta.Where(m => m?.Title is not null).GroupBy(m => m!.Title!.Trim(), StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var pairs = new List<SourcePair>();
        for (int i = 0; i < pngs.Length; i++)
        {
            if (meta[i] is not { } m) { TuxPaintPairSource.Count(dropped, NoSvg); continue; }
            var (title, reason) = CaptionCleaner.CleanTitle(m.Title, m.Author, m.Title is null ? 0 : titleCounts[m.Title.Trim()], Options);
            if (title is null && Options.FileNameFallback)
            {
                string fromName = CaptionCleaner.TitleFromFileName(pngs[i]);
                if (fromName.Length > 0) title = fromName;
            }
            if (title is null) { TuxPaintPairSource.Count(dropped, reason!); continue; }
            var keywords = CaptionCleaner.CleanKeywords(m.Keywords, title, Options, m.Author);
            string rel = Path.GetRelativePath(pngRoot, pngs[i]).Replace('\\', '/');
            int slash = rel.IndexOf('/');
            pairs.Add(new SourcePair(pngs[i], $"{Name}/{rel}", CaptionCleaner.Compose(title, keywords, Options), Name,
                slash > 0 ? rel[..slash] : "", Path.GetDirectoryName(rel)?.Replace('\\', '/') ?? "", null));
        }
        return new PairSourceResult(Name, pngs.Length, pairs, dropped);
    }

    private void Require()
    {
        foreach (var (dir, pkg) in new[] { ("png", "openclipart-png"), ("svg", "openclipart-svg") })
            if (!Directory.Exists(Path.Combine(Root, dir)))
                throw new DirectoryNotFoundException($"OpenClipart {dir}/ not found under {Root}: install it with 'apt-get install -y --no-install-recommends {pkg}'.");
    }

    [GeneratedRegex(@"<cc:Work\b[^>]*>(.*?)</cc:Work>", RegexOptions.Singleline)]
    private static partial Regex WorkRegex();
    [GeneratedRegex(@"<dc:creator\b[^>]*>.*?<dc:title>([^<]*)</dc:title>", RegexOptions.Singleline)]
    private static partial Regex CreatorRegex();
    [GeneratedRegex(@"<dc:(creator|publisher|rights|contributor)\b[^>]*>.*?</dc:\1>", RegexOptions.Singleline)]
    private static partial Regex AgentBlocksRegex();
    [GeneratedRegex(@"<dc:title>([^<]*)</dc:title>", RegexOptions.Singleline)]
    private static partial Regex TitleRegex();
    [GeneratedRegex(@"<dc:subject\b[^>]*>(.*?)</dc:subject>", RegexOptions.Singleline)]
    private static partial Regex SubjectRegex();
    [GeneratedRegex(@"<rdf:li>([^<]*)</rdf:li>", RegexOptions.Singleline)]
    private static partial Regex LiRegex();
}
