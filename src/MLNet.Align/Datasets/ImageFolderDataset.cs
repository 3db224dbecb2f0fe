using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using SkiaSharp;

namespace MLNet.Align.Datasets;

/// <summary>One image of an <see cref="ImageFolderDataset"/>.</summary>
/// <param name="Path">Absolute path of the image file.</param>
/// <param name="Label">Class index into <see cref="ImageFolderDataset.ClassNames"/>.</param>
public sealed record ImageFolderItem(string Path, int Label);

/// <summary>A labelled image set in the ImageFolder convention (torchvision): <c>ROOT/&lt;class folder&gt;/&lt;image
/// files&gt;</c>, any depth below the class folder. Class order = folder names sorted ordinally, class name = folder
/// name with '_' read as a space. An optional <c>ROOT/classes.tsv</c> (lines <c>folder TAB class name</c>, in label
/// order) overrides both, so names that cannot be folder names ("T-shirt/top") and a label order that is not
/// alphabetical (digits 0..9 named "zero".."nine") survive a round trip. Items are sorted by class, then ordinal path.</summary>
public sealed class ImageFolderDataset
{
    /// <summary>Name of the optional class list file at the root.</summary>
    public const string ClassListFileName = "classes.tsv";
    /// <summary>Name of the marker written by <see cref="Export"/> once a folder is complete.</summary>
    public const string ExportMarkerFileName = ".export.json";

    /// <summary>File extensions read as images (case-insensitive).</summary>
    public static IReadOnlyList<string> DefaultExtensions { get; } = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"];

    private ImageFolderDataset(string root, IReadOnlyList<string> folders, IReadOnlyList<string> names, IReadOnlyList<ImageFolderItem> items)
    {
        Root = root; ClassFolders = folders; ClassNames = names; Items = items;
    }

    /// <summary>Absolute root folder.</summary>
    public string Root { get; }
    /// <summary>Class folder names in label order.</summary>
    public IReadOnlyList<string> ClassFolders { get; }
    /// <summary>Class names in label order (prompt text for zero-shot classification).</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>All images, sorted by label, then ordinal path.</summary>
    public IReadOnlyList<ImageFolderItem> Items { get; }
    /// <summary>Number of images.</summary>
    public int Count => Items.Count;

    /// <summary>Lists an ImageFolder.</summary>
    /// <param name="root">Root folder.</param>
    /// <param name="extensions">Image extensions with the dot (default <see cref="DefaultExtensions"/>).</param>
    /// <exception cref="DirectoryNotFoundException">The root (or a folder named in classes.tsv) does not exist.</exception>
    /// <exception cref="InvalidDataException">classes.tsv is malformed, or the root has no class folder.</exception>
    public static ImageFolderDataset Load(string root, IReadOnlyList<string>? extensions = null)
    {
        root = System.IO.Path.GetFullPath(root);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"ImageFolder root not found: {root}");
        var ext = new HashSet<string>(extensions ?? DefaultExtensions, StringComparer.OrdinalIgnoreCase);
        List<string> folders, names;
        string list = System.IO.Path.Combine(root, ClassListFileName);
        if (File.Exists(list))
        {
            folders = []; names = [];
            int line = 0;
            foreach (var raw in File.ReadAllLines(list, Encoding.UTF8))
            {
                line++;
                if (raw.Length == 0) continue;
                var parts = raw.Split('\t');
                if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Trim().Length == 0)
                    throw new InvalidDataException($"{list}: line {line}: expected 'folder<TAB>class name', found '{raw}'.");
                if (!Directory.Exists(System.IO.Path.Combine(root, parts[0])))
                    throw new DirectoryNotFoundException($"{list}: line {line}: class folder '{parts[0]}' does not exist under {root}.");
                if (folders.Contains(parts[0], StringComparer.Ordinal))
                    throw new InvalidDataException($"{list}: line {line}: class folder '{parts[0]}' listed twice.");
                folders.Add(parts[0]); names.Add(parts[1].Trim());
            }
        }
        else
        {
            folders = Directory.EnumerateDirectories(root).Select(d => System.IO.Path.GetFileName(d)!)
                .Where(n => !n.StartsWith('.')).OrderBy(n => n, StringComparer.Ordinal).ToList();
            names = folders.Select(ClassNameFromFolder).ToList();
        }
        if (folders.Count == 0)
            throw new InvalidDataException($"ImageFolder {root} has no class folder.");
        var items = new List<ImageFolderItem>();
        for (int c = 0; c < folders.Count; c++)
        {
            var dir = System.IO.Path.Combine(root, folders[c]);
            items.AddRange(Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                .Where(f => ext.Contains(System.IO.Path.GetExtension(f)))
                .OrderBy(f => f, StringComparer.Ordinal)
                .Select(f => new ImageFolderItem(f, c)));
        }
        return new ImageFolderDataset(root, folders, names, items);
    }

    /// <summary>Class name read from a folder name: '_' becomes a space ("Ankle_boot" -> "Ankle boot").</summary>
    public static string ClassNameFromFolder(string folder) => folder.Replace('_', ' ').Trim();

    /// <summary>A folder name for a class name: spaces become '_', characters that are invalid or awkward in paths
    /// ('/', '\\', ':', ...) become '-' ("T-shirt/top" -> "T-shirt-top"). The exact name is kept in classes.tsv.</summary>
    public static string FolderNameForClass(string className)
    {
        var sb = new StringBuilder(className.Length);
        foreach (char ch in className.Trim())
            sb.Append(ch == ' ' ? '_' : (ch is '/' or '\\' or ':' or '*' or '?' or '"' or '<' or '>' or '|' or '\t' ? '-' : ch));
        return sb.ToString();
    }

    /// <summary>Writes a labelled idx set as an ImageFolder of PNGs (<c>ROOT/&lt;class folder&gt;/&lt;index:D5&gt;.png</c>,
    /// index = position in the idx file, 8-bit grey) plus classes.tsv. Idempotent: when ROOT holds a complete export
    /// of the same items (marker with the same content hash), nothing is written and false is returned. The folder is
    /// built under a temporary sibling and renamed into place, so an interrupted export leaves no partial ROOT.</summary>
    /// <param name="set">Images, labels and class names.</param>
    /// <param name="root">Destination folder (replaced when it holds something else).</param>
    /// <param name="progress">Receives the number of images written so far.</param>
    /// <param name="cancellationToken">Stops between images; the temporary folder is removed.</param>
    /// <returns>True when the folder was (re)written, false when it was already up to date.</returns>
    public static bool Export(LabelledIdxSet set, string root, IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(set);
        root = System.IO.Path.GetFullPath(root);
        string identity = ContentHash(set);
        if (IsCompleteExport(root, identity, set.Count)) return false;

        var folders = set.ClassNames.Select(FolderNameForClass).ToList();
        if (folders.Distinct(StringComparer.Ordinal).Count() != folders.Count)
            throw new ArgumentException($"Class names map to duplicate folder names: {string.Join(", ", folders)}.", nameof(set));
        string temp = root.TrimEnd(System.IO.Path.DirectorySeparatorChar) + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            Directory.CreateDirectory(temp);
            foreach (var f in folders) Directory.CreateDirectory(System.IO.Path.Combine(temp, f));
            File.WriteAllLines(System.IO.Path.Combine(temp, ClassListFileName),
                folders.Select((f, i) => f + "\t" + set.ClassNames[i]), new UTF8Encoding(false));
            for (int i = 0; i < set.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var bitmap = set.Images.ToBitmap(i);
                using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
                    ?? throw new InvalidOperationException($"SkiaSharp could not encode image {i} of {set.Images.Source} as PNG.");
                string file = System.IO.Path.Combine(temp, folders[set.Labels[i]], i.ToString("D5", CultureInfo.InvariantCulture) + ".png");
                using (var fs = File.Create(file)) data.SaveTo(fs);
                if ((i & 255) == 255) progress?.Report(i + 1);
            }
            var marker = new ExportMarker(identity, set.Count, set.Images.Source, set.ClassNames.ToArray());
            File.WriteAllText(System.IO.Path.Combine(temp, ExportMarkerFileName), JsonSerializer.Serialize(marker));
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
            Directory.Move(temp, root);
            progress?.Report(set.Count);
            return true;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>True when <paramref name="root"/> holds a finished <see cref="Export"/> of exactly this set.</summary>
    public static bool IsCompleteExport(LabelledIdxSet set, string root)
        => IsCompleteExport(System.IO.Path.GetFullPath(root), ContentHash(set), set.Count);

    private static bool IsCompleteExport(string root, string identity, int count)
    {
        string markerPath = System.IO.Path.Combine(root, ExportMarkerFileName);
        if (!File.Exists(markerPath)) return false;
        try
        {
            var marker = JsonSerializer.Deserialize<ExportMarker>(File.ReadAllText(markerPath));
            if (marker is null || marker.ContentSha256 != identity || marker.Count != count) return false;
            // Cheap guard against files deleted after the export.
            return Directory.EnumerateFiles(root, "*.png", SearchOption.AllDirectories).Count() == count;
        }
        catch (JsonException) { return false; }
    }

    /// <summary>SHA-256 over shape, pixels, labels and class names: equal hashes mean an identical export.</summary>
    private static string ContentHash(LabelledIdxSet set)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes($"{set.Images.Count}x{set.Images.Rows}x{set.Images.Columns}\n"));
        sha.AppendData(set.Images.Pixels);
        sha.AppendData(set.Labels);
        sha.AppendData(Encoding.UTF8.GetBytes(string.Join("\n", set.ClassNames)));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private sealed record ExportMarker(string ContentSha256, int Count, string Source, string[] ClassNames);
}
