using MLNet.Align.Encoders;

namespace MLNet.Align.Projection;

/// <summary>
/// One training/evaluation batch of paired features. Row i of every member belongs to the same image-caption pair.
/// Pooled members are always present; token members only when the source holds them.
/// </summary>
/// <param name="Indices">Row ids of the pairs in the source (stable across epochs).</param>
/// <param name="ImagePooled">[batch, image dim].</param>
/// <param name="TextPooled">[batch, text dim].</param>
/// <param name="ImageTokens">[batch, image tokens, image token dim] or null.</param>
/// <param name="TextTokens">[batch, text tokens, text token dim] with lengths (attention mask) or null.</param>
public sealed record AlignmentBatch(
    long[] Indices,
    EmbeddingMatrix ImagePooled,
    EmbeddingMatrix TextPooled,
    TokenTensor? ImageTokens,
    TokenTensor? TextTokens);

/// <summary>
/// A source of paired image/text features that can be streamed in batches, so training memory is O(batch), not
/// O(dataset). Implemented in memory (<see cref="InMemoryAlignmentData"/>) and over the on-disk embedding store.
/// </summary>
public interface IAlignmentDataSource
{
    /// <summary>Number of pairs.</summary>
    long Count { get; }
    /// <summary>Pooled image embedding width.</summary>
    int ImageDimension { get; }
    /// <summary>Pooled text embedding width.</summary>
    int TextDimension { get; }
    /// <summary>Image token width, or null when the source holds no image tokens.</summary>
    int? ImageTokenDimension { get; }
    /// <summary>Text token width, or null when the source holds no text tokens.</summary>
    int? TextTokenDimension { get; }

    /// <summary>
    /// Yields the rows listed in <paramref name="rows"/> (or all rows when null) in batches of at most
    /// <paramref name="batchSize"/>. With <paramref name="shuffleSeed"/> the order is a deterministic shuffle of that
    /// seed (the same seed gives the same order); without it rows come in the given order.
    /// </summary>
    /// <param name="batchSize">Maximum rows per batch (&gt; 0); the last batch may be smaller.</param>
    /// <param name="rows">Row ids to visit (each in [0, Count)), or null for all rows.</param>
    /// <param name="shuffleSeed">Seed of a deterministic shuffle, or null to keep the given order.</param>
    /// <param name="withTokens">Load token features too (throws if the source has none).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    IEnumerable<AlignmentBatch> GetBatches(int batchSize, IReadOnlyList<long>? rows = null, int? shuffleSeed = null,
        bool withTokens = false, CancellationToken cancellationToken = default);

    /// <summary>
    /// Positive group of every row, [Count], or null when the source does not know (the default). Rows with equal ids
    /// are positives of each other in multi-positive training
    /// (<see cref="MLNet.Align.Projection.AlignmentTrainingOptions.MultiPositive"/>): e.g. all captions of one image
    /// and all images of one caption text (<see cref="Embeddings.PairGroups.FromImagesAndCaptions"/>). Ids are arbitrary longs;
    /// only equality matters.
    /// </summary>
    IReadOnlyList<long>? GroupIds => null;

    /// <summary>
    /// A digest of the rows this source serves (lower-case hex), or null when the source has none (the default). The
    /// trainer records it in its checkpoints, and a resume on a source with another digest is refused, so a run never
    /// continues on other data. Cheap to read (the store's comes from its manifest's shard SHA-256s).
    /// </summary>
    string? ContentDigest => null;

    /// <summary>The frozen image encoder the features came from, or null when the source does not know (the default).
    /// The trainer and the recipes record it in the model they fit, so callers never type it: the store's comes from
    /// its manifest.</summary>
    EncoderIdentity? ImageEncoder => null;
    /// <summary>The frozen text encoder the features came from, or null when the source does not know (the default).</summary>
    EncoderIdentity? TextEncoder => null;
    /// <summary>How to reopen the image encoder (recorded in the fitted model's bundle), or null (the default).</summary>
    EncoderSource? ImageEncoderSource => null;
    /// <summary>How to reopen the text encoder (recorded in the fitted model's bundle), or null (the default).</summary>
    EncoderSource? TextEncoderSource => null;

    /// <summary>
    /// The visiting order of one training epoch over <paramref name="rows"/>: a deterministic function of the rows and
    /// <paramref name="seed"/> only (so a resumed run replays it), with every row exactly once. The trainer asks for it
    /// once per epoch and then streams it with <see cref="GetBatches"/> (no seed). The default is a full uniform
    /// permutation (<see cref="Random.Shuffle{T}(T[])"/> seeded with <paramref name="seed"/>); a source whose random
    /// access is costly returns an order it can stream (e.g. the store's shard-buffered shuffle).
    /// </summary>
    /// <param name="rows">Row ids to visit (each in [0, Count)).</param>
    /// <param name="seed">Seed of the epoch's order.</param>
    /// <returns>A new array holding a permutation of <paramref name="rows"/>.</returns>
    long[] EpochOrder(IReadOnlyList<long> rows, int seed)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var order = rows.ToArray();
        new Random(seed).Shuffle(order);
        return order;
    }
}

/// <summary>An <see cref="IAlignmentDataSource"/> over matrices held in memory (tests, small sets, baselines).</summary>
public sealed class InMemoryAlignmentData : IAlignmentDataSource
{
    private readonly EmbeddingMatrix _image, _text;
    private readonly TokenTensor? _imageTokens, _textTokens;
    private readonly IReadOnlyList<long>? _groupIds;

    /// <summary>Wraps paired features already in memory (not copied: the matrices must not change while in use).</summary>
    /// <param name="image">Pooled image features [n, image dim]; row i pairs with text row i.</param>
    /// <param name="text">Pooled text features [n, text dim].</param>
    /// <param name="imageTokens">Image token features for the same n items ([n, tokens, image token dim]), or null.</param>
    /// <param name="textTokens">Text token features for the same n items ([n, tokens, text token dim] with lengths), or null.</param>
    /// <param name="groupIds">Positive group of every row ([n]; equal ids are positives of each other, see
    /// <see cref="IAlignmentDataSource.GroupIds"/> and <see cref="Embeddings.PairGroups"/>), or null.</param>
    /// <exception cref="ArgumentException">Row counts differ (the message gives both counts).</exception>
    public InMemoryAlignmentData(EmbeddingMatrix image, EmbeddingMatrix text, TokenTensor? imageTokens = null, TokenTensor? textTokens = null,
        IReadOnlyList<long>? groupIds = null)
    {
        if (groupIds != null && groupIds.Count != image.Rows)
            throw new ArgumentException($"groupIds holds {groupIds.Count} ids, expected one per row ({image.Rows}).", nameof(groupIds));
        _groupIds = groupIds;
        if (image.Rows != text.Rows)
            throw new ArgumentException($"Image and text matrices must have the same rows: {image.Rows} vs {text.Rows}.");
        if (imageTokens != null && imageTokens.Count != image.Rows)
            throw new ArgumentException($"Image tokens hold {imageTokens.Count} items, expected {image.Rows}.");
        if (textTokens != null && textTokens.Count != text.Rows)
            throw new ArgumentException($"Text tokens hold {textTokens.Count} items, expected {text.Rows}.");
        _image = image; _text = text; _imageTokens = imageTokens; _textTokens = textTokens;
    }

    /// <inheritdoc/>
    public long Count => _image.Rows;
    /// <inheritdoc/>
    public int ImageDimension => _image.Columns;
    /// <inheritdoc/>
    public int TextDimension => _text.Columns;
    /// <inheritdoc/>
    public int? ImageTokenDimension => _imageTokens?.Dimension;
    /// <inheritdoc/>
    public int? TextTokenDimension => _textTokens?.Dimension;
    /// <inheritdoc/>
    public IReadOnlyList<long>? GroupIds => _groupIds;
    /// <summary>The image encoder the features came from (recorded in models fitted on them); null = unknown.</summary>
    public EncoderIdentity? ImageEncoder { get; init; }
    /// <summary>The text encoder the features came from (recorded in models fitted on them); null = unknown.</summary>
    public EncoderIdentity? TextEncoder { get; init; }

    /// <inheritdoc/>
    /// <remarks>Batches are copies (token batches re-padded to their longest item); the shuffle is
    /// <see cref="Random.Shuffle{T}(T[])"/> seeded with <paramref name="shuffleSeed"/>.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is not positive.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="withTokens"/> is true but this source holds no tokens.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public IEnumerable<AlignmentBatch> GetBatches(int batchSize, IReadOnlyList<long>? rows = null, int? shuffleSeed = null,
        bool withTokens = false, CancellationToken cancellationToken = default)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be positive.");
        if (withTokens && (_imageTokens == null || _textTokens == null))
            throw new InvalidOperationException("Token features were requested but this source holds pooled embeddings only.");
        long[] order = rows?.ToArray() ?? Enumerable.Range(0, _image.Rows).Select(i => (long)i).ToArray();
        if (shuffleSeed is int seed) new Random(seed).Shuffle(order);
        for (int start = 0; start < order.Length; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var idx = order.AsSpan(start, Math.Min(batchSize, order.Length - start)).ToArray();
            var ints = idx.Select(i => checked((int)i)).ToArray();
            yield return new AlignmentBatch(idx, _image.SelectRows(ints), _text.SelectRows(ints),
                withTokens ? SelectTokens(_imageTokens!, ints) : null,
                withTokens ? SelectTokens(_textTokens!, ints) : null);
        }
    }

    /// <summary>Copies the given items of a token tensor, re-padded to the longest selected item.</summary>
    internal static TokenTensor SelectTokens(TokenTensor source, IReadOnlyList<int> items)
    {
        int max = 0;
        foreach (var i in items) max = Math.Max(max, source.Lengths[i]);
        var data = new float[checked(items.Count * max * source.Dimension)];
        var lengths = new int[items.Count];
        for (int r = 0; r < items.Count; r++)
        {
            int len = source.Lengths[items[r]];
            lengths[r] = len;
            source.Item(items[r]).Slice(0, len * source.Dimension).CopyTo(data.AsSpan(r * max * source.Dimension));
        }
        return new TokenTensor(data, items.Count, max, source.Dimension, lengths);
    }
}
