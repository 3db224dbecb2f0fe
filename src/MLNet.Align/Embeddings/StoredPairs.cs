namespace MLNet.Align.Embeddings;

/// <summary>
/// A whole store loaded into memory by <see cref="EmbeddingStore.LoadPooled"/>: one row per stored pair (for an
/// image-only store, one row per image), with the image's pooled embedding repeated on each of its caption rows, plus
/// the caption sets retrieval needs and the extra columns (e.g. "label", "source").
/// </summary>
public sealed class StoredPairs
{
    private readonly Dictionary<string, int> _extraIndex;

    internal StoredPairs(EmbeddingStore store, EmbeddingMatrix image, EmbeddingMatrix? text, IReadOnlyList<StoredRowInfo> rows)
    {
        Store = store; Image = image; Text = text; RowInfo = rows;
        ExtraColumns = store.Manifest.Input.ExtraColumns;
        _extraIndex = ExtraColumns.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        ImagePaths = rows.Select(r => store.ResolveImagePath(r.Image)).ToArray();
        Captions = rows.Select(r => r.Caption).ToArray();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var unique = new List<string>();
        var firstRow = new List<int>();
        var sets = new List<List<int>>();
        ImageIds = new int[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            if (!ids.TryGetValue(ImagePaths[r], out int id))
            {
                id = unique.Count;
                ids.Add(ImagePaths[r], id);
                unique.Add(ImagePaths[r]);
                firstRow.Add(r);
                sets.Add([]);
            }
            ImageIds[r] = id;
            sets[id].Add(r);
        }
        UniqueImagePaths = unique;
        UniqueImageRows = firstRow.ToArray();
        CaptionRowsByImage = sets.Select(s => (IReadOnlyList<int>)s).ToArray();
    }

    /// <summary>The store these rows came from.</summary>
    public EmbeddingStore Store { get; }
    /// <summary>Number of rows.</summary>
    public int Count => RowInfo.Count;
    /// <summary>Pooled image embeddings, [Count, Di], one per row (repeated for images with several captions).</summary>
    public EmbeddingMatrix Image { get; }
    /// <summary>Pooled text embeddings, [Count, Dt], or null for an image-only store.</summary>
    public EmbeddingMatrix? Text { get; }
    /// <summary>Per-row metadata: pair index and line in the pairs file, image path as written, caption, extras.</summary>
    public IReadOnlyList<StoredRowInfo> RowInfo { get; }
    /// <summary>Per-row captions (null entries for an image-only store).</summary>
    public IReadOnlyList<string?> Captions { get; }
    /// <summary>Per-row image paths, resolved against the pairs file's folder.</summary>
    public IReadOnlyList<string> ImagePaths { get; }
    /// <summary>Per-row index into <see cref="UniqueImagePaths"/>.</summary>
    public int[] ImageIds { get; }
    /// <summary>Distinct images, in row order of first appearance.</summary>
    public IReadOnlyList<string> UniqueImagePaths { get; }
    /// <summary>For each distinct image, its first row.</summary>
    public int[] UniqueImageRows { get; }
    /// <summary>For each distinct image, all its rows (its caption set), for text-to-image / image-to-text Recall@K.</summary>
    public IReadOnlyList<IReadOnlyList<int>> CaptionRowsByImage { get; }
    /// <summary>Names of the extra columns.</summary>
    public IReadOnlyList<string> ExtraColumns { get; }

    /// <summary>Pooled embeddings of the distinct images, [UniqueImagePaths.Count, Di].</summary>
    public EmbeddingMatrix UniqueImageEmbeddings() => Image.SelectRows(UniqueImageRows);

    /// <summary>Per-row values of an extra column (e.g. "label").</summary>
    /// <exception cref="KeyNotFoundException">No such column (the message lists the columns present).</exception>
    public IReadOnlyList<string> Column(string name)
    {
        if (!_extraIndex.TryGetValue(name, out int c))
            throw new KeyNotFoundException($"Store {Store.Directory} has no column '{name}'; extra columns are [{string.Join(", ", ExtraColumns)}].");
        return RowInfo.Select(r => r.Extra[c]).ToArray();
    }
}
