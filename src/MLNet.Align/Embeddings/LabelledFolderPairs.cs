using System.Text;

namespace MLNet.Align.Embeddings;

/// <summary>
/// Captioned pairs from a labelled image folder tree (ROOT/CLASS/*.png, the ImageFolder layout users most often have):
/// each image gets a caption made from its class name with a prompt template, and the class name in a label column, so
/// the pairs train like any other (<c>embed</c>, <c>train</c>) and the labels give zero-shot validation.
/// </summary>
public static class LabelledFolderPairs
{
    /// <summary>One captioned pair.</summary>
    /// <param name="Image">Image path relative to the pairs file's folder when it lies below it, else absolute.</param>
    /// <param name="Caption">The caption.</param>
    /// <param name="Label">The class name (the folder name with '_' as space).</param>
    public sealed record Pair(string Image, string Caption, string Label);

    /// <summary>Builds the pairs: for image j of a class (in the folder's sorted order) the templates are used in turn,
    /// starting at j, <paramref name="captionsPerImage"/> of them, so a class's captions cover every template.</summary>
    /// <param name="dataset">The loaded folder tree (<see cref="ImageFolderDataset.Load"/>).</param>
    /// <param name="templates">Caption templates with "{}" for the class name (at least one), e.g. CLIP's
    /// "a photo of a {}.".</param>
    /// <param name="captionsPerImage">Captions (rows) per image, in [1, templates].</param>
    /// <param name="descriptions">Optional extra sentences per class name (e.g. WordNet gloss sentences), used in turn
    /// with the templates.</param>
    /// <exception cref="ArgumentException">No templates, a template without "{}", or captionsPerImage out of range.</exception>
    public static IReadOnlyList<Pair> Build(ImageFolderDataset dataset, IReadOnlyList<string> templates, int captionsPerImage = 1,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? descriptions = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(templates);
        if (templates.Count == 0) throw new ArgumentException("At least one caption template is needed.", nameof(templates));
        var bad = templates.FirstOrDefault(t => !t.Contains("{}", StringComparison.Ordinal));
        if (bad != null) throw new ArgumentException($"Template '{bad}' has no '{{}}' for the class name.", nameof(templates));
        if (captionsPerImage < 1 || captionsPerImage > templates.Count)
            throw new ArgumentException($"captionsPerImage must be in [1, {templates.Count}] (the template count), got {captionsPerImage}.", nameof(captionsPerImage));
        var pairs = new List<Pair>(dataset.Count * captionsPerImage);
        var seen = new int[dataset.ClassNames.Count];
        foreach (var item in dataset.Items)
        {
            string label = dataset.ClassNames[item.Label];
            var captions = templates.Select(t => t.Replace("{}", label, StringComparison.Ordinal)).ToList();
            if (descriptions != null && descriptions.TryGetValue(label, out var extra)) captions.AddRange(extra);
            int j = seen[item.Label]++;
            for (int c = 0; c < captionsPerImage; c++) pairs.Add(new Pair(item.Path, captions[(j + c) % captions.Count], label));
        }
        return pairs;
    }

    /// <summary>Writes <paramref name="pairs"/> as a UTF-8 TSV with columns image, caption, label (paths relative to
    /// the file's folder where possible), atomically.</summary>
    /// <exception cref="ArgumentException">A field holds a tab or a line break (the message names the image).</exception>
    public static void WriteTsv(string path, IReadOnlyList<Pair> pairs)
    {
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        var sb = new StringBuilder("image\tcaption\tlabel\n");
        foreach (var p in pairs)
        {
            var full = System.IO.Path.GetFullPath(p.Image);
            var rel = System.IO.Path.GetRelativePath(folder, full);
            var image = rel.StartsWith("..", StringComparison.Ordinal) ? full : rel;
            foreach (var field in new[] { image, p.Caption, p.Label })
                if (field.IndexOfAny(['\t', '\n', '\r']) >= 0)
                    throw new ArgumentException($"Pair of image '{p.Image}' has a tab or line break in '{field}'; TSV cannot hold it.");
            sb.Append(image).Append('\t').Append(p.Caption).Append('\t').Append(p.Label).Append('\n');
        }
        System.IO.Directory.CreateDirectory(folder);
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
