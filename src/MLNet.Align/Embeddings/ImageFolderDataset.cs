using System.Globalization;
using System.Text;

namespace MLNet.Align.Embeddings;

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

    /// <summary>File extensions read as images (case-insensitive).</summary>
    public static IReadOnlyList<string> DefaultExtensions { get; } = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"];

    private ImageFolderDataset(string root, IReadOnlyList<string> folders, IReadOnlyList<string> names, IReadOnlyList<ImageFolderItem> items,
        IReadOnlyList<(string Path, string Reason)> skipped)
    {
        Root = root; ClassFolders = folders; ClassNames = names; Items = items; Skipped = skipped;
    }

    /// <summary>What the walk did not list and why: symbolic-link loops (each real folder is listed once), and files
    /// with an image extension that are not regular files (named pipes, devices, dangling links).</summary>
    public IReadOnlyList<(string Path, string Reason)> Skipped { get; }

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
            InputFiles.RequireRegularFile(list, "Class list file");
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
        var skipped = new List<(string Path, string Reason)>();
        for (int c = 0; c < folders.Count; c++)
        {
            var dir = System.IO.Path.Combine(root, folders[c]);
            // Each real directory once: a symbolic link back up the tree is not followed until the path limit.
            var walkSkipped = new List<(string Path, string Reason)>();
            items.AddRange(InputFiles.EnumerateFilesOnce(dir, walkSkipped)
                .Where(f => ext.Contains(System.IO.Path.GetExtension(f)))
                .OrderBy(f => f, StringComparer.Ordinal)
                .Select(f => new ImageFolderItem(f, c)));
            skipped.AddRange(walkSkipped.Where(s => Directory.Exists(s.Path) || ext.Contains(System.IO.Path.GetExtension(s.Path))));
        }
        return new ImageFolderDataset(root, folders, names, items, skipped);
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
}
