using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;
using SkiaSharp;

namespace MLNet.Align.Demo.Data;

/// <summary>Desktop wallpapers with their titles, from three Debian packages (bookworm):
/// <list type="bullet">
/// <item><c>gnome-backgrounds</c> 43.1: <c>share/gnome-background-properties/*.xml</c> (<c>name</c>, <c>filename</c>);
/// CC-BY-SA 3.0 (debian/copyright). Mostly abstract art; the SVG ones are dropped (not decoded here);</item>
/// <item><c>mate-backgrounds</c> 1.26: <c>share/mate-background-properties/*.xml</c>; GPL-2+. The translators' comment
/// before a name often says what the image shows ("... image that shows an orange/red flower"): caption
/// "Fresh Flower: an orange/red flower";</item>
/// <item><c>plasma-workspace-wallpapers</c> 5.27: <c>share/wallpapers/*/metadata.json</c> (<c>KPlugin.Name</c>,
/// <c>KPlugin.License</c>: LGPLv3 or CC-BY-SA-4.0), the image of <c>contents/images/</c> with the smallest size whose
/// longest side is at least <see cref="MaxSide"/>.</item>
/// </list>
/// Caption = the title (a trailing version number like "Autumn 5.5" removed), plus what the image shows when the
/// metadata says it. Each image is decoded and downscaled to a longest side of <see cref="MaxSide"/> pixels, written as
/// JPEG (quality 90) under the extraction folder (inside the data folder), which the pairs link to: a few dozen
/// files, a few MB. Undecodable files are dropped with the reason. Label = package; no proxy class.</summary>
public sealed partial class WallpaperPairSource(string extractDirectory, string shareRoot = WallpaperPairSource.DefaultShareRoot) : IPairSource
{
    /// <summary>The folder holding the three packages' metadata folders.</summary>
    public const string DefaultShareRoot = "/usr/share";
    /// <summary>Longest side of the extracted images, in pixels.</summary>
    public const int MaxSide = 512;
    /// <summary>The Debian packages (all three are read; each must be installed).</summary>
    public static IReadOnlyList<string> Packages { get; } = ["gnome-backgrounds", "mate-backgrounds", "plasma-workspace-wallpapers"];
    /// <summary>Drop reason: an SVG wallpaper.</summary>
    public const string Svg = "SVG (not decoded)";
    /// <summary>Drop reason: the image file is missing.</summary>
    public const string Missing = "image file missing";
    /// <summary>Drop reason: the image does not decode.</summary>
    public const string Undecodable = "undecodable image";
    /// <summary>Drop reason: no title in the metadata.</summary>
    public const string NoTitle = "no title";
    /// <summary>Drop reason: the same title as an earlier wallpaper of the package (the same picture in another size,
    /// e.g. MATE's three "Something slowly gets clear").</summary>
    public const string SameTitle = "same title as an earlier wallpaper of the package (another size)";
    /// <summary>Drop reason: the same image file listed twice (first kept).</summary>
    public const string ListedTwice = "listed twice (first kept)";

    /// <inheritdoc />
    public string Name => "wallpapers";

    /// <summary>Folder holding gnome-background-properties/, mate-background-properties/ and wallpapers/.</summary>
    public string ShareRoot { get; } = Path.GetFullPath(shareRoot);

    /// <summary>Folder the downscaled JPEGs are written to.</summary>
    public string ExtractDirectory { get; } = Path.GetFullPath(extractDirectory);

    /// <summary>A wallpaper found in the metadata.</summary>
    /// <param name="Package">The Debian package.</param>
    /// <param name="Image">Absolute path of the image.</param>
    /// <param name="Title">The title as written.</param>
    /// <param name="Shows">What the image shows (MATE translators' comment), or null.</param>
    public sealed record Wallpaper(string Package, string Image, string Title, string? Shows);

    /// <inheritdoc />
    public IEnumerable<string> InputFiles()
    {
        Require();
        return MetadataFiles().Select(m => m.File).Concat(Find().Select(w => w.Image).Where(File.Exists)).Distinct(StringComparer.Ordinal);
    }

    /// <summary>Parses a GNOME or MATE background-properties XML: every <c>wallpaper</c> with an untranslated
    /// <c>name</c> and a <c>filename</c>; "shows ..." from a comment inside the element. Paths under /usr/share/ are
    /// rebased onto <paramref name="shareRoot"/>.</summary>
    /// <exception cref="InvalidDataException">The XML does not parse (the message names the file).</exception>
    public static IReadOnlyList<Wallpaper> ParseBackgroundProperties(string xml, string package, string shareRoot, string fileName = "xml")
    {
        XDocument doc;
        try
        {
            using var reader = XmlReader.Create(new StringReader(xml), new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore, XmlResolver = null });
            doc = XDocument.Load(reader);
        }
        catch (XmlException e) { throw new InvalidDataException($"{fileName}: not valid XML at line {e.LineNumber}, column {e.LinePosition}: {e.Message}", e); }
        var list = new List<Wallpaper>();
        foreach (var w in doc.Descendants("wallpaper"))
        {
            if ((string?)w.Attribute("deleted") == "true") continue;
            string? name = w.Elements("name").FirstOrDefault(n => n.Attribute(XNamespace.Xml + "lang") is null)?.Value.Trim();
            string? file = w.Element("filename")?.Value.Trim();
            if (string.IsNullOrEmpty(file)) continue;
            string? shows = null;
            foreach (var c in w.Nodes().OfType<XComment>())
            {
                var m = ShowsRegex().Match(c.Value);
                if (m.Success) { shows = Regex.Replace(m.Groups[1].Value, @"\s+", " ").Trim(); break; }
            }
            list.Add(new Wallpaper(package, Rebase(file, shareRoot), name ?? "", shows));
        }
        return list;
    }

    /// <summary>Parses a Plasma wallpaper's metadata.json: (title, licence) from <c>KPlugin.Name</c> and
    /// <c>KPlugin.License</c>; null title when absent.</summary>
    public static (string? Title, string? License) ParsePlasmaMetadata(string json)
    {
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("KPlugin", out var k)) return (null, null);
        string? name = k.TryGetProperty("Name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        string? lic = k.TryGetProperty("License", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString() : null;
        return (name, lic);
    }

    /// <summary>The Plasma image to use among "WxH.ext" file names: the smallest (by pixels) whose longest side is at
    /// least <paramref name="minSide"/>, else the largest; null when none is named WxH.</summary>
    public static string? PickPlasmaImage(IEnumerable<string> files, int minSide = MaxSide)
    {
        var sized = files.Select(f => (File: f, M: SizeRegex().Match(Path.GetFileNameWithoutExtension(f))))
            .Where(x => x.M.Success).Select(x => (x.File, W: int.Parse(x.M.Groups[1].Value), H: int.Parse(x.M.Groups[2].Value))).ToList();
        if (sized.Count == 0) return null;
        var big = sized.Where(x => Math.Max(x.W, x.H) >= minSide).OrderBy(x => (long)x.W * x.H).ThenBy(x => x.File, StringComparer.Ordinal).ToList();
        return big.Count > 0 ? big[0].File : sized.OrderByDescending(x => (long)x.W * x.H).ThenBy(x => x.File, StringComparer.Ordinal).First().File;
    }

    /// <summary>Caption of a wallpaper: the title with a trailing version number removed ("Autumn 5.5" -> "Autumn"),
    /// then ": " and what it shows when known; empty when there is no title.</summary>
    public static string Caption(string title, string? shows)
    {
        string t = VersionRegex().Replace(title.Trim(), "").Trim();
        if (t.Length == 0) return "";
        return string.IsNullOrWhiteSpace(shows) ? t : $"{t}: {shows.Trim().TrimEnd('.')}";
    }

    /// <summary>Every wallpaper the installed metadata lists, in metadata order.</summary>
    public IReadOnlyList<Wallpaper> Find()
    {
        var list = new List<Wallpaper>();
        foreach (var (package, file) in MetadataFiles())
        {
            if (package == "plasma-workspace-wallpapers")
            {
                var (title, _) = ParsePlasmaMetadata(File.ReadAllText(file));
                string images = Path.Combine(Path.GetDirectoryName(file)!, "contents", "images");
                string? pick = Directory.Exists(images) ? PickPlasmaImage(Directory.EnumerateFiles(images)) : null;
                list.Add(new Wallpaper(package, pick ?? Path.Combine(images, "missing"), title ?? "", null));
            }
            else list.AddRange(ParseBackgroundProperties(File.ReadAllText(file), package, ShareRoot, file));
        }
        return list;
    }

    /// <inheritdoc />
    public PairSourceResult Build(CancellationToken cancellationToken = default)
    {
        Require();
        var found = Find();
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var jobs = new List<(Wallpaper W, string Caption, string Rel)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var titles = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in found)
        {
            string caption = Caption(w.Title, w.Shows);
            if (!seen.Add(w.Image)) { TuxPaintPairSource.Count(dropped, ListedTwice); continue; }
            if (caption.Length == 0) { TuxPaintPairSource.Count(dropped, NoTitle); continue; }
            if (!titles.Add(w.Package + "\n" + Caption(w.Title, null))) { TuxPaintPairSource.Count(dropped, SameTitle); continue; }
            if (w.Image.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)) { TuxPaintPairSource.Count(dropped, Svg); continue; }
            if (!File.Exists(w.Image)) { TuxPaintPairSource.Count(dropped, Missing); continue; }
            string stem = w.Package == "plasma-workspace-wallpapers"
                ? Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(w.Image)))!)
                : Path.GetFileNameWithoutExtension(w.Image);
            jobs.Add((w, caption, $"{w.Package}/{stem}.jpg"));
        }
        var pairs = new SourcePair?[jobs.Count];
        Parallel.For(0, jobs.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var (w, caption, rel) = jobs[i];
            byte[]? jpeg = Downscale(File.ReadAllBytes(w.Image), MaxSide);
            if (jpeg is null) return;
            string target = Path.Combine(ExtractDirectory, rel);
            AtomicFile.Write(target, s => s.Write(jpeg));
            pairs[i] = new SourcePair(target, $"{Name}/{rel}", caption, Name, w.Package, w.Package, null);
        });
        for (int i = 0; i < jobs.Count; i++) if (pairs[i] is null) TuxPaintPairSource.Count(dropped, Undecodable);
        var kept = pairs.Where(p => p is not null).Select(p => p!).OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
        return new PairSourceResult(Name, found.Count, kept, dropped);
    }

    /// <summary>Decodes an image fully and re-encodes it as JPEG (quality 90) with its longest side at most
    /// <paramref name="maxSide"/> (never enlarged); null when it does not decode.</summary>
    public static byte[]? Downscale(byte[] encoded, int maxSide)
    {
        using var bitmap = ImageExtraction.DecodeFully(encoded);
        return bitmap is null ? null : ImageExtraction.EncodeJpeg(bitmap, maxSide);
    }

    private IEnumerable<(string Package, string File)> MetadataFiles()
    {
        foreach (var (package, dir, pattern) in new[]
        {
            ("gnome-backgrounds", Path.Combine(ShareRoot, "gnome-background-properties"), "*.xml"),
            ("mate-backgrounds", Path.Combine(ShareRoot, "mate-background-properties"), "*.xml"),
        })
            if (Directory.Exists(dir))
                foreach (var f in Directory.EnumerateFiles(dir, pattern).OrderBy(f => f, StringComparer.Ordinal)) yield return (package, f);
        string plasma = Path.Combine(ShareRoot, "wallpapers");
        if (Directory.Exists(plasma))
            foreach (var f in Directory.EnumerateDirectories(plasma).OrderBy(d => d, StringComparer.Ordinal)
                .Select(d => Path.Combine(d, "metadata.json")).Where(File.Exists)) yield return ("plasma-workspace-wallpapers", f);
    }

    /// <summary>The packages whose metadata folder is absent under <paramref name="shareRoot"/>.</summary>
    public static IReadOnlyList<string> MissingPackages(string shareRoot)
    {
        var missing = new List<string>();
        if (!Directory.Exists(Path.Combine(shareRoot, "gnome-background-properties"))) missing.Add("gnome-backgrounds");
        if (!Directory.Exists(Path.Combine(shareRoot, "mate-background-properties"))) missing.Add("mate-backgrounds");
        if (!File.Exists(Path.Combine(shareRoot, "wallpapers", "Autumn", "metadata.json"))) missing.Add("plasma-workspace-wallpapers");
        return missing;
    }

    private void Require()
    {
        var missing = MissingPackages(ShareRoot);
        if (missing.Count > 0)
            throw new DirectoryNotFoundException($"Wallpapers not found under {ShareRoot}: install them with 'apt-get install -y --no-install-recommends {string.Join(' ', missing)}'.");
    }

    private static string Rebase(string file, string shareRoot) =>
        file.StartsWith(DefaultShareRoot + "/", StringComparison.Ordinal) ? Path.Combine(shareRoot, file[(DefaultShareRoot.Length + 1)..]) : file;

    [GeneratedRegex(@"image that shows (.+?)\.(?:\s|$)", RegexOptions.Singleline)]
    private static partial Regex ShowsRegex();
    [GeneratedRegex(@"^(\d+)x(\d+)$")]
    private static partial Regex SizeRegex();
    [GeneratedRegex(@"\s+\d+(\.\d+)*$")]
    private static partial Regex VersionRegex();
}
