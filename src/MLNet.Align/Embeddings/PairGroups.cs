namespace MLNet.Align.Embeddings;

/// <summary>
/// Positive groups of image-caption rows for multi-positive training
/// (<see cref="MLNet.Align.Projection.AlignmentTrainingOptions.MultiPositive"/>): rows that share an image, or share
/// a caption text, belong to one group, transitively (connected components by union-find). Every row of a group is a
/// positive of every other row of the group, so all captions of an image, and all images of a caption, count.
/// </summary>
public static class PairGroups
{
    /// <summary>Group id of every row: the smallest row index of its component (stable, independent of hashing).</summary>
    /// <param name="images">Image key of every row (e.g. a resolved path), [n].</param>
    /// <param name="captions">Caption text of every row, [n], compared ordinally after trimming; null = no caption
    /// (the row joins through its image only).</param>
    /// <returns>[n] group ids in [0, n).</returns>
    /// <exception cref="ArgumentException">The two lists have different lengths.</exception>
    public static long[] FromImagesAndCaptions(IReadOnlyList<string> images, IReadOnlyList<string?> captions)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(captions);
        if (images.Count != captions.Count)
            throw new ArgumentException($"images has {images.Count} rows but captions has {captions.Count}; they must pair row by row.");
        int n = images.Count;
        var parent = new int[n];
        for (int i = 0; i < n; i++) parent[i] = i;
        int Find(int x) { while (parent[x] != x) { parent[x] = parent[parent[x]]; x = parent[x]; } return x; }
        void Union(int a, int b) { a = Find(a); b = Find(b); if (a != b) { if (a < b) parent[b] = a; else parent[a] = b; } }
        var firstImage = new Dictionary<string, int>(StringComparer.Ordinal);
        var firstCaption = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            if (firstImage.TryGetValue(images[i], out int j)) Union(i, j); else firstImage[images[i]] = i;
            if (captions[i]?.Trim() is { } c)
            {
                if (firstCaption.TryGetValue(c, out int k)) Union(i, k); else firstCaption[c] = i;
            }
        }
        var groups = new long[n];
        for (int i = 0; i < n; i++) groups[i] = Find(i);
        return groups;
    }
}
