using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MLNet.Align.Embeddings;
using SkiaSharp;

namespace MLNet.Align.Demo.Data;

/// <summary>Writes the demo's labelled idx sets (Fashion-MNIST, MNIST) as ImageFolder trees that
/// <see cref="ImageFolderDataset"/> and `zeroshot eval` read.</summary>
public static class ImageFolderExport
{
    /// <summary>Name of the marker written by <see cref="Export"/> once a folder is complete.</summary>
    public const string MarkerFileName = ".export.json";

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

        var folders = set.ClassNames.Select(ImageFolderDataset.FolderNameForClass).ToList();
        if (folders.Distinct(StringComparer.Ordinal).Count() != folders.Count)
            throw new ArgumentException($"Class names map to duplicate folder names: {string.Join(", ", folders)}.", nameof(set));
        string temp = root.TrimEnd(System.IO.Path.DirectorySeparatorChar) + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            Directory.CreateDirectory(temp);
            foreach (var f in folders) Directory.CreateDirectory(System.IO.Path.Combine(temp, f));
            File.WriteAllLines(System.IO.Path.Combine(temp, ImageFolderDataset.ClassListFileName),
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
            File.WriteAllText(System.IO.Path.Combine(temp, MarkerFileName), JsonSerializer.Serialize(marker));
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
        string markerPath = System.IO.Path.Combine(root, MarkerFileName);
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
