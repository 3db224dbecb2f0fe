using System.Text.Json;
using System.Text.RegularExpressions;
using SkiaSharp;

namespace MLNet.Align.Demo.Data;

/// <summary>GCompris activity images (Debian <c>gcompris-qt-data</c> 3.1: <c>/usr/share/gcompris-qt/rcc/*.rcc</c>, Qt
/// resource archives read by <see cref="QtResourceArchive"/>), captioned from the activities' own board files:
/// <list type="bullet">
/// <item><c>explore_monuments</c>, <c>explore_farm_animals</c>, <c>explore_world_animals</c>: each board item's
/// photo (<c>image2</c>) with "title. text" (the description paragraph, cut at a sentence end within
/// <see cref="MaxCaptionChars"/> characters);</item>
/// <item><c>lang</c> <c>words_sample</c>: each word picture with its word (<c>words_sample.json</c> "description");</item>
/// <item><c>categorization</c>: each photo listed as "good" in a category board, captioned "words of the file name
/// (category)", e.g. "measuring tape (tools)"; the alphabets/numbers images (letters and digits) are dropped;</item>
/// <item><c>details</c>: each board's whole picture (<c>*_background.webp</c>) with the board's instruction, e.g.
/// "Vincent van Gogh, The Night Café - 1888"; the cut-out pieces are dropped (a piece is not what the caption says);</item>
/// <item><c>paintings</c>: each board's painting, reassembled from its puzzle tiles at the board's positions (cropped
/// to the tiles), with the
/// board's instruction ("artist, title - year").</item>
/// </list>
/// Images are WebP; they are decoded with SkiaSharp, shrunk to a longest side of <see cref="MaxSide"/> and written as
/// PNG under the extraction folder (inside the data folder), which the pairs link to. A truncated or undecodable image is dropped with its reason, never linked.
/// Label = activity; no proxy class (GCompris pairs never enter the zero-shot proxy). Split key = "gcompris/" + the
/// lower-cased file stem without digits, so the same monument photographed for two activities (explore_monuments'
/// and categorization's Eiffel Tower) lands on one side of the split.
/// <para>Licences (the package's debian/copyright and the README next to each image folder in the archives): the
/// photos are CC0-1.0, public domain, CC-BY-SA 3.0/4.0 or CC-BY 4.0 (Wikimedia Commons, publicdomainpictures.net, per
/// file in the READMEs); the paintings are from the WebMuseum, released by GCompris under GPL-3.0-or-later; the board
/// texts are GPL-3.0-or-later (GCompris source).</para></summary>
public sealed partial class GComprisPairSource(string extractDirectory, string root = GComprisPairSource.DefaultRoot) : IPairSource
{
    /// <summary>Where Debian installs the archives.</summary>
    public const string DefaultRoot = "/usr/share/gcompris-qt/rcc";
    /// <summary>The Debian package.</summary>
    public const string Package = "gcompris-qt-data";
    /// <summary>Longest side of the extracted PNGs, in pixels (larger pictures are shrunk; the encoders see 224).</summary>
    public const int MaxSide = 512;
    /// <summary>Longest caption built from a description paragraph (cut at a sentence end).</summary>
    public const int MaxCaptionChars = 300;
    /// <summary>Drop reason: no board file names this image with a caption.</summary>
    public const string NoCaption = "no caption in the board files";
    /// <summary>Drop reason: a puzzle piece or cut-out detail, not a whole picture.</summary>
    public const string Piece = "puzzle piece or cut-out detail (not the captioned picture)";
    /// <summary>Drop reason: letters or digits (categorization alphabets/numbers).</summary>
    public const string LettersOrDigits = "letters or digits (no object to caption)";
    /// <summary>Drop reason: the WebP is truncated or does not decode.</summary>
    public const string UndecodableWebP = "truncated or undecodable WebP";
    /// <summary>Drop reason: stored zstd-compressed (no zstd decoder here).</summary>
    public const string ZstdEntry = "zstd-compressed entry (no zstd decoder)";
    /// <summary>Drop reason: a painting tile is missing or undecodable, so the painting cannot be reassembled.</summary>
    public const string PaintingIncomplete = "painting tile missing or undecodable";

    /// <summary>The activities read, in order.</summary>
    public static IReadOnlyList<string> Activities { get; } =
        ["categorization", "details", "explore_farm_animals", "explore_monuments", "explore_world_animals", "lang", "paintings"];

    /// <inheritdoc />
    public string Name => "gcompris";

    /// <summary>Folder of the .rcc archives.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>Folder the PNGs are written to (inside the data folder, so links into it are relative).</summary>
    public string ExtractDirectory { get; } = Path.GetFullPath(extractDirectory);

    /// <inheritdoc />
    public IEnumerable<string> InputFiles()
    {
        Require();
        return Activities.Select(ArchivePath);
    }

    /// <summary>One captioned picture found in the board files.</summary>
    /// <param name="Image">Archive path of the WebP ("gcompris/src/activities/.../x.webp").</param>
    /// <param name="Caption">The caption.</param>
    public sealed record BoardItem(string Image, string Caption);

    /// <summary>A painting board: the instruction and the tiles with their centre positions (fractions of the board).</summary>
    /// <param name="Caption">The board's instruction ("artist, title - year").</param>
    /// <param name="Width">Board width in pixels (the background item's <c>width</c>).</param>
    /// <param name="Height">Board height in pixels.</param>
    /// <param name="Tiles">Archive-relative tile file names ("image/GreatWave_a1.webp") and their x, y in [0, 1].</param>
    public sealed record PaintingBoard(string Caption, int Width, int Height, IReadOnlyList<(string File, double X, double Y)> Tiles);

    /// <summary>Items of an explore_* board (<c>tab</c> entries with <c>image2</c>, <c>title</c> and <c>text</c>);
    /// caption = "title. text" cut at a sentence end within <see cref="MaxCaptionChars"/>. Entries missing any of the
    /// three are skipped.</summary>
    public static IReadOnlyList<BoardItem> ParseExploreBoard(string qml)
    {
        var items = new List<BoardItem>();
        foreach (Match block in ObjectRegex().Matches(qml))
        {
            string b = block.Value;
            var image = ImageFieldRegex().Match(b);
            string? title = QsTrField(b, "title"), text = QsTrField(b, "text");
            if (!image.Success || title is null || text is null) continue;
            title = title.Trim().TrimEnd('.');
            items.Add(new BoardItem(image.Groups[1].Value.TrimStart('/'), Cut($"{title}. {text.Trim()}", MaxCaptionChars)));
        }
        return items;
    }

    /// <summary>The board instruction (<c>property string instruction: qsTr("...")</c>), trimmed, or null.</summary>
    public static string? ParseInstruction(string qml)
    {
        var m = InstructionRegex().Match(qml);
        return m.Success ? Unescape(m.Groups[1].Value).Trim() : null;
    }

    /// <summary>Every <c>pixmapfile</c> of a board in file order, with the item's x and y when given.</summary>
    public static IReadOnlyList<(string File, double? X, double? Y, string? Type)> ParsePixmaps(string qml)
    {
        var list = new List<(string, double?, double?, string?)>();
        foreach (Match block in ObjectRegex().Matches(qml))
        {
            var f = PixmapRegex().Match(block.Value);
            if (!f.Success) continue;
            list.Add((f.Groups[1].Value, Number(block.Value, "x"), Number(block.Value, "y"), StringField(block.Value, "type")));
        }
        return list;
    }

    /// <summary>A painting board, or null when it has no instruction or no tiles.</summary>
    public static PaintingBoard? ParsePaintingBoard(string qml)
    {
        string? caption = ParseInstruction(qml);
        var pix = ParsePixmaps(qml);
        var bg = ObjectRegex().Matches(qml).Select(m => m.Value).FirstOrDefault(b => b.Contains("SHAPE_BACKGROUND_IMAGE", StringComparison.Ordinal));
        double? w = bg is null ? null : Number(bg, "width"), h = bg is null ? null : Number(bg, "height");
        var tiles = pix.Where(p => p.Type is null && p.X is not null && p.Y is not null).Select(p => (p.File, p.X!.Value, p.Y!.Value)).ToList();
        if (caption is null || tiles.Count == 0 || w is not > 0 || h is not > 0) return null;
        return new PaintingBoard(caption, (int)w, (int)h, tiles);
    }

    /// <summary>(word, image file name) of lang's words_sample.json (every "description"/"image" object).</summary>
    public static IReadOnlyList<(string Word, string Image)> ParseWords(string json)
    {
        var list = new List<(string, string)>();
        using var doc = JsonDocument.Parse(json);
        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array) { foreach (var x in e.EnumerateArray()) Walk(x); return; }
            if (e.ValueKind != JsonValueKind.Object) return;
            if (e.TryGetProperty("description", out var d) && e.TryGetProperty("image", out var i)
                && d.ValueKind == JsonValueKind.String && i.ValueKind == JsonValueKind.String)
                list.Add((d.GetString()!.Trim(), i.GetString()!));
            if (e.TryGetProperty("content", out var c)) Walk(c);
        }
        Walk(doc.RootElement);
        return list;
    }

    /// <summary>(category name, archive paths of the "good" images) of a categorization board: the lesson's
    /// <c>name: qsTr("Tools")</c>, and each content item's <c>prefix</c> (without "qrc:/") joined with every entry of
    /// its <c>good</c> list.</summary>
    public static (string? Category, IReadOnlyList<string> Good) ParseCategoryBoard(string qml)
    {
        string? name = QsTrField(qml, "name");
        var good = new List<string>();
        foreach (Match block in ObjectRegex().Matches(qml))
        {
            var g = GoodRegex().Match(block.Value);
            if (!g.Success) continue;
            string prefix = (StringField(block.Value, "prefix") ?? "").Replace("qrc:", "", StringComparison.Ordinal).TrimStart('/');
            foreach (Match s in QuotedRegex().Matches(g.Groups[1].Value)) good.Add(prefix + s.Groups[1].Value);
        }
        return (name?.Trim(), good);
    }

    /// <summary>Caption of a categorization photo: "words (category, category)", e.g. "fish (animals, fishes)".</summary>
    public static string CategorizationCaption(string words, IEnumerable<string> categories) => $"{words} ({string.Join(", ", categories)})";

    /// <summary>Words of a file stem: digits and a trailing "_background" removed, camelCase and '_'/'-' split, lower
    /// case ("measuringTape5" -> "measuring tape", "IndiaGate" -> "india gate").</summary>
    public static string StemWords(string fileName)
    {
        string stem = Path.GetFileNameWithoutExtension(fileName);
        stem = DigitsRegex().Replace(stem, " ");
        stem = CamelRegex().Replace(stem, " ");
        return string.Join(' ', stem.Split([' ', '_', '-'], StringSplitOptions.RemoveEmptyEntries)).ToLowerInvariant();
    }

    /// <summary>The captioned pictures the board files describe (archive path of the WebP, or for a painting the
    /// tile stem + ".webp"), without decoding any image; the drops counted so far and the candidates.</summary>
    public (IReadOnlyList<BoardItem> Items, IReadOnlyDictionary<string, int> Dropped, int Candidates) Describe(CancellationToken cancellationToken = default)
    {
        var (jobs, dropped, candidates) = Plan(cancellationToken);
        return (jobs.Select(j => new BoardItem(j.Image, j.Caption)).ToList(), dropped, candidates);
    }

    /// <inheritdoc />
    public PairSourceResult Build(CancellationToken cancellationToken = default)
    {
        var (jobs, dropped, candidates) = Plan(cancellationToken);
        var results = new SourcePair?[jobs.Count];
        var reasonsOut = new string?[jobs.Count];
        Directory.CreateDirectory(ExtractDirectory);
        Parallel.For(0, jobs.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var j = jobs[i];
            string rel = j.Image[$"gcompris/src/activities/{j.Activity}/resource/".Length..];
            string relPng = $"{j.Activity}/{Path.ChangeExtension(rel, ".png")}";
            string target = Path.Combine(ExtractDirectory, relPng);
            var (png, reason) = j.Painting is null ? Extract(j.Archive, j.Archive.Find(j.Image)!) : Assemble(j.Archive, $"gcompris/src/activities/{j.Activity}/resource/", j.Painting);
            if (png is null) { reasonsOut[i] = reason; return; }
            AtomicFile.Write(target, st => st.Write(png));
            string group = Path.GetDirectoryName(relPng)!.Replace('\\', '/');
            results[i] = new SourcePair(target, $"{Name}/{relPng}", j.Caption, Name, j.Activity, group, null, SplitKey(rel));
        });
        foreach (var r in reasonsOut) if (r is not null) TuxPaintPairSource.Count(dropped, r);
        var pairs = results.Where(p => p is not null).Select(p => p!).OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
        return new PairSourceResult(Name, candidates, pairs, dropped);
    }

    private (List<Job> Jobs, SortedDictionary<string, int> Dropped, int Candidates) Plan(CancellationToken cancellationToken)
    {
        Require();
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var jobs = new List<Job>();
        int candidates = 0;
        foreach (var activity in Activities)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var archive = QtResourceArchive.Open(ArchivePath(activity));
            string prefix = $"gcompris/src/activities/{activity}/resource/";
            var webps = archive.Entries.Where(e => e.Path.StartsWith(prefix, StringComparison.Ordinal) && e.Path.EndsWith(".webp", StringComparison.OrdinalIgnoreCase)).ToList();
            var webpPaths = webps.Select(e => e.Path).ToHashSet(StringComparer.Ordinal);
            var captioned = new Dictionary<string, Job>(StringComparer.Ordinal);
            var reasons = new Dictionary<string, string>(StringComparer.Ordinal);
            var boards = archive.Entries.Where(e => e.Path.StartsWith(prefix + "board/", StringComparison.Ordinal) && e.Path.EndsWith(".qml", StringComparison.Ordinal))
                .OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
            string Text(QtResourceEntry e) => System.Text.Encoding.UTF8.GetString(archive.ReadBytes(e));
            void Add(string image, string caption)
            {
                if (!captioned.ContainsKey(image)) captioned[image] = new Job(archive, activity, image, caption, null);
            }
            switch (activity)
            {
                case "explore_farm_animals" or "explore_monuments" or "explore_world_animals":
                    foreach (var b in boards) foreach (var item in ParseExploreBoard(Text(b))) Add(item.Image, item.Caption);
                    break;
                case "lang":
                    var wordsJson = archive.Find(prefix + "words_sample.json");
                    if (wordsJson is not null) foreach (var (word, image) in ParseWords(Text(wordsJson))) if (word.Length > 0) Add(prefix + "words_sample/" + image, word);
                    foreach (var w in webps.Where(e => !e.Path.StartsWith(prefix + "words_sample/", StringComparison.Ordinal))) reasons[w.Path] = NoCaption;
                    break;
                case "categorization":
                    // An image can be "good" in several boards (a fish is in fishes, animals and living beings): all
                    // of its categories go into the caption, in ordinal order.
                    var categories = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
                    foreach (var b in boards)
                    {
                        var (category, good) = ParseCategoryBoard(Text(b));
                        if (category is null) continue;
                        // Boards also list other activities' pictures (words_sample...): only this archive's count.
                        foreach (var image in good.Where(g => webpPaths.Contains(g)))
                        {
                            if (!categories.TryGetValue(image, out var set)) categories[image] = set = new SortedSet<string>(StringComparer.Ordinal);
                            set.Add(category.ToLowerInvariant());
                        }
                    }
                    foreach (var (image, set) in categories)
                    {
                        if (image.Contains("/images/alphabets/", StringComparison.Ordinal) || image.Contains("/images/numbers/", StringComparison.Ordinal)) continue;
                        string words = StemWords(image);
                        if (words.Length > 0) Add(image, CategorizationCaption(words, set));
                    }
                    foreach (var w in webps.Where(e => e.Path.Contains("/images/alphabets/", StringComparison.Ordinal) || e.Path.Contains("/images/numbers/", StringComparison.Ordinal)))
                        reasons[w.Path] = LettersOrDigits;
                    break;
                case "details":
                    foreach (var b in boards)
                    {
                        string qml = Text(b);
                        string? caption = ParseInstruction(qml);
                        foreach (var (file, _, _, type) in ParsePixmaps(qml))
                        {
                            string image = prefix + file;
                            if (type == "SHAPE_BACKGROUND_IMAGE" && caption is not null) Add(image, caption.TrimEnd('.'));
                            else reasons.TryAdd(image, Piece);
                        }
                    }
                    break;
                case "paintings":
                    foreach (var b in boards)
                    {
                        var board = ParsePaintingBoard(Text(b));
                        if (board is null) continue;
                        string first = prefix + board.Tiles[0].File;
                        // One pair per painting: its first tile's path names it; the other tiles are consumed.
                        string key = prefix + board.Tiles[0].File[..board.Tiles[0].File.LastIndexOf('_')] + ".webp";
                        if (!captioned.ContainsKey(key)) captioned[key] = new Job(archive, activity, key, board.Caption.TrimEnd('.'), board);
                        foreach (var t in board.Tiles) reasons.TryAdd(prefix + t.File, Piece);
                    }
                    break;
            }
            int counted = 0;
            foreach (var w in webps)
            {
                if (captioned.ContainsKey(w.Path)) continue;
                counted++;
                TuxPaintPairSource.Count(dropped, reasons.GetValueOrDefault(w.Path, NoCaption));
            }
            // A painting is one candidate made of many tiles (its tiles are counted above as pieces); a caption whose
            // picture is not in the archive is no candidate.
            var present = captioned.Values.Where(j => j.Painting is not null || webpPaths.Contains(j.Image)).ToList();
            candidates += counted + present.Count;
            jobs.AddRange(present);
        }

        return (jobs, dropped, candidates);
    }

    /// <summary>The split key of a GCompris picture: "gcompris/" + <see cref="StemWords"/> without spaces.</summary>
    public static string SplitKey(string relativePath) => "gcompris/" + StemWords(relativePath).Replace(" ", "", StringComparison.Ordinal);

    /// <summary>Decodes an image fully and re-encodes it as PNG with its longest side at most
    /// <see cref="MaxSide"/>; (null, <see cref="UndecodableWebP"/>) when it is truncated or does not decode.</summary>
    public static (byte[]? Png, string? Reason) ToPng(byte[] encoded)
    {
        using var bitmap = ImageExtraction.DecodeFully(encoded);
        return bitmap is null ? (null, UndecodableWebP) : (ImageExtraction.EncodePng(bitmap, MaxSide), null);
    }

    private static (byte[]? Png, string? Reason) Extract(QtResourceArchive archive, QtResourceEntry entry)
    {
        if (entry.Compression == QtResourceCompression.Zstd) return (null, ZstdEntry);
        return ToPng(archive.ReadBytes(entry));
    }

    /// <summary>Draws each tile centred at (x * width, y * height) of the board on white, cropped to the tiles'
    /// bounding box (the board is larger than the painting).</summary>
    private static (byte[]? Png, string? Reason) Assemble(QtResourceArchive archive, string prefix, PaintingBoard board)
    {
        var tiles = new List<(SKBitmap Bitmap, float Left, float Top)>();
        try
        {
            foreach (var (file, x, y) in board.Tiles)
            {
                var entry = archive.Find(prefix + file);
                if (entry is null || entry.Compression == QtResourceCompression.Zstd) return (null, PaintingIncomplete);
                var tile = ImageExtraction.DecodeFully(archive.ReadBytes(entry));
                if (tile is null) return (null, PaintingIncomplete);
                tiles.Add((tile, (float)(x * board.Width - tile.Width / 2.0), (float)(y * board.Height - tile.Height / 2.0)));
            }
            float left = tiles.Min(t => t.Left), top = tiles.Min(t => t.Top);
            int width = (int)Math.Ceiling(tiles.Max(t => t.Left + t.Bitmap.Width) - left), height = (int)Math.Ceiling(tiles.Max(t => t.Top + t.Bitmap.Height) - top);
            using var canvasBitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
            using (var canvas = new SKCanvas(canvasBitmap))
            {
                canvas.Clear(SKColors.White);
                foreach (var (tile, l, t) in tiles) canvas.DrawBitmap(tile, l - left, t - top);
            }
            return (ImageExtraction.EncodePng(canvasBitmap, MaxSide), null);
        }
        finally
        {
            foreach (var t in tiles) t.Bitmap.Dispose();
        }
    }

    private sealed record Job(QtResourceArchive Archive, string Activity, string Image, string Caption, PaintingBoard? Painting);

    private string ArchivePath(string activity) => Path.Combine(Root, activity + ".rcc");

    private void Require()
    {
        foreach (var a in Activities)
            if (!File.Exists(ArchivePath(a)))
                throw new DirectoryNotFoundException($"GCompris data not found ({ArchivePath(a)} is missing): install it with 'apt-get install -y --no-install-recommends {Package}'.");
    }

    /// <summary>Text of <c>"field": qsTr("...")</c> (or <c>field: qsTr("...")</c>), unescaped, or null.</summary>
    private static string? QsTrField(string block, string field)
    {
        var m = Regex.Match(block, "\"?" + Regex.Escape(field) + "\"?\\s*:\\s*qsTr\\(\\s*\"((?:[^\"\\\\]|\\\\.)*)\"\\s*\\)");
        return m.Success ? Unescape(m.Groups[1].Value) : null;
    }

    private static string? StringField(string block, string field)
    {
        var m = Regex.Match(block, "\"" + Regex.Escape(field) + "\"\\s*:\\s*\"([^\"]*)\"");
        return m.Success ? m.Groups[1].Value : null;
    }

    private static double? Number(string block, string field)
    {
        var m = Regex.Match(block, "\"" + Regex.Escape(field) + "\"\\s*:\\s*\"?(-?[0-9]+(?:\\.[0-9]+)?)\"?");
        return m.Success ? double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    private static string Unescape(string s) => s.Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\n", " ", StringComparison.Ordinal)
        .Replace("\\'", "'", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);

    /// <summary>The text up to the last sentence end ('.', '!' or '?' followed by a space or the end) within
    /// <paramref name="max"/> characters; the whole text when it is short enough or has no sentence end there.</summary>
    public static string Cut(string text, int max)
    {
        text = WhitespaceRegex().Replace(text, " ").Trim();
        if (text.Length <= max) return text;
        int end = -1;
        for (int i = 0; i < max; i++)
            if (text[i] is '.' or '!' or '?' && (i + 1 == text.Length || text[i + 1] == ' ')) end = i;
        return end > 0 ? text[..(end + 1)] : text[..max].TrimEnd();
    }

    [GeneratedRegex(@"\{[^{}]*\}", RegexOptions.Singleline)]
    private static partial Regex ObjectRegex();
    [GeneratedRegex("\"image2\"\\s*:\\s*\"qrc:([^\"]+)\"")]
    private static partial Regex ImageFieldRegex();
    [GeneratedRegex("instruction\\s*:\\s*qsTr\\(\\s*\"((?:[^\"\\\\]|\\\\.)*)\"\\s*\\)")]
    private static partial Regex InstructionRegex();
    [GeneratedRegex("\"pixmapfile\"\\s*:\\s*\"([^\"]+)\"")]
    private static partial Regex PixmapRegex();
    [GeneratedRegex("\"good\"\\s*:\\s*\\[([^\\]]*)\\]", RegexOptions.Singleline)]
    private static partial Regex GoodRegex();
    [GeneratedRegex("\"([^\"]+)\"")]
    private static partial Regex QuotedRegex();
    [GeneratedRegex(@"[0-9]+|_background$")]
    private static partial Regex DigitsRegex();
    [GeneratedRegex(@"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")]
    private static partial Regex CamelRegex();
    [GeneratedRegex(@"\s+")]
    private static partial Regex WhitespaceRegex();
}
