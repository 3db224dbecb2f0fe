namespace MLNet.Align.Search;

/// <summary>
/// A query as a weighted sum of parts in the aligned space: texts, images (a file or its bytes) and items already in
/// the index, e.g. <c>SearchQuery.ForImage("beach.jpg").AndText("at night", 0.5f)</c>. Each part is embedded and
/// L2-normalised, the weighted sum is L2-normalised again and compared to every image by cosine similarity.
/// </summary>
public sealed class SearchQuery
{
    private readonly List<QueryPart> _parts = [];

    /// <summary>The parts in the order they were added.</summary>
    public IReadOnlyList<QueryPart> Parts => _parts;

    /// <summary>A query of one text.</summary>
    public static SearchQuery ForText(string text, float weight = 1f) => new SearchQuery().AndText(text, weight);
    /// <summary>A query of one image file.</summary>
    public static SearchQuery ForImage(string path, float weight = 1f) => new SearchQuery().AndImage(path, weight);
    /// <summary>A query of one image given as encoded bytes (PNG, JPEG, ...).</summary>
    public static SearchQuery ForImageBytes(byte[] bytes, float weight = 1f) => new SearchQuery().AndImageBytes(bytes, weight);
    /// <summary>A query of one indexed item, found by its path ("more like this" without re-encoding).</summary>
    public static SearchQuery ForItem(string path, float weight = 1f) => new SearchQuery().AndItem(path, weight);

    /// <summary>Adds a text part.</summary>
    /// <exception cref="ArgumentException">The text is empty or whitespace, or the weight is not finite.</exception>
    public SearchQuery AndText(string text, float weight = 1f)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new ArgumentException("A text query must not be empty.", nameof(text));
        return Add(new QueryPart(QueryPartKind.Text, text, null, weight));
    }

    /// <summary>Adds an image file part.</summary>
    /// <exception cref="ArgumentException">The path is empty or the weight is not finite.</exception>
    public SearchQuery AndImage(string path, float weight = 1f)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("An image query needs a file path.", nameof(path));
        return Add(new QueryPart(QueryPartKind.ImageFile, path, null, weight));
    }

    /// <summary>Adds an image given as its encoded bytes.</summary>
    /// <exception cref="ArgumentException">The bytes are empty or the weight is not finite.</exception>
    public SearchQuery AndImageBytes(byte[] bytes, float weight = 1f)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0) throw new ArgumentException("An image query's bytes are empty.", nameof(bytes));
        return Add(new QueryPart(QueryPartKind.ImageBytes, null, bytes, weight));
    }

    /// <summary>Adds an indexed item (its stored vector) by path.</summary>
    /// <exception cref="ArgumentException">The path is empty or the weight is not finite.</exception>
    public SearchQuery AndItem(string path, float weight = 1f)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("An item query needs the item's path.", nameof(path));
        return Add(new QueryPart(QueryPartKind.Item, path, null, weight));
    }

    private SearchQuery Add(QueryPart part)
    {
        if (!float.IsFinite(part.Weight)) throw new ArgumentException($"A query weight must be finite, got {part.Weight}.", nameof(part));
        _parts.Add(part);
        return this;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(" + ", _parts.Select(p => p.ToString()));
}

/// <summary>What a query part is.</summary>
public enum QueryPartKind
{
    /// <summary>A text, encoded by the model's text encoder and projector.</summary>
    Text,
    /// <summary>An image file, encoded by the model's image encoder and projector.</summary>
    ImageFile,
    /// <summary>An image's encoded bytes (e.g. an upload).</summary>
    ImageBytes,
    /// <summary>An item of the index, by path (its stored aligned vector).</summary>
    Item,
}

/// <summary>One weighted part of a <see cref="SearchQuery"/>.</summary>
/// <param name="Kind">What the part is.</param>
/// <param name="Value">The text, file path or item path (null for bytes).</param>
/// <param name="Bytes">The image bytes (only for <see cref="QueryPartKind.ImageBytes"/>).</param>
/// <param name="Weight">Its weight in the sum (any finite number; negative moves away from the part).</param>
public sealed record QueryPart(QueryPartKind Kind, string? Value, byte[]? Bytes, float Weight)
{
    /// <inheritdoc/>
    public override string ToString()
    {
        string what = Kind switch
        {
            QueryPartKind.Text => $"text \"{Value}\"",
            QueryPartKind.ImageFile => $"image {Value}",
            QueryPartKind.ImageBytes => $"image ({Bytes!.Length} bytes)",
            _ => $"item {Value}",
        };
        return Weight == 1f ? what : $"{Weight:0.###} x {what}";
    }
}
