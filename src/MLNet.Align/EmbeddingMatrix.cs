namespace MLNet.Align;

/// <summary>
/// A dense row-major matrix of embeddings: <see cref="Rows"/> items x <see cref="Columns"/> dimensions, fp32.
/// The exchange type between encoders, the embedding store, the trainer and the evaluators.
/// </summary>
public sealed class EmbeddingMatrix
{
    /// <summary>Wraps <paramref name="data"/> (not copied) as a [rows, columns] matrix.</summary>
    /// <exception cref="ArgumentException">data.Length != rows * columns, or a negative size.</exception>
    public EmbeddingMatrix(float[] data, int rows, int columns)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (rows < 0 || columns < 0)
            throw new ArgumentException($"Matrix sizes must be non-negative, got [{rows}, {columns}].");
        if ((long)rows * columns != data.Length)
            throw new ArgumentException($"Data length {data.Length} does not match shape [{rows}, {columns}] (expected {(long)rows * columns}).", nameof(data));
        Data = data;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>Creates a zero-filled [rows, columns] matrix.</summary>
    public static EmbeddingMatrix Zeros(int rows, int columns) => new(new float[checked(rows * columns)], rows, columns);

    /// <summary>The values, row-major, length Rows*Columns.</summary>
    public float[] Data { get; }

    /// <summary>Number of items (rows).</summary>
    public int Rows { get; }

    /// <summary>Embedding dimension (columns).</summary>
    public int Columns { get; }

    /// <summary>Row <paramref name="i"/> as a span over <see cref="Data"/>.</summary>
    public Span<float> Row(int i) => Data.AsSpan(checked(i * Columns), Columns);

    /// <summary>A new matrix holding the given rows, in the given order.</summary>
    public EmbeddingMatrix SelectRows(IReadOnlyList<int> rows)
    {
        var result = new float[checked(rows.Count * Columns)];
        for (int r = 0; r < rows.Count; r++)
            Data.AsSpan(rows[r] * Columns, Columns).CopyTo(result.AsSpan(r * Columns, Columns));
        return new EmbeddingMatrix(result, rows.Count, Columns);
    }

    /// <summary>A new matrix holding columns [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>)
    /// of every row (e.g. one layer out of side-by-side layer features).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside [0, Columns).</exception>
    public EmbeddingMatrix SelectColumns(int offset, int count)
    {
        if (offset < 0 || count < 0 || offset + count > Columns)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Columns [{offset}, {offset + count}) are not inside [0, {Columns}).");
        var result = new float[checked(Rows * count)];
        for (int r = 0; r < Rows; r++) Row(r).Slice(offset, count).CopyTo(result.AsSpan(r * count, count));
        return new EmbeddingMatrix(result, Rows, count);
    }

    /// <summary>Stacks matrices of equal width vertically.</summary>
    /// <exception cref="ArgumentException">Widths differ.</exception>
    public static EmbeddingMatrix Concat(IReadOnlyList<EmbeddingMatrix> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("Nothing to concatenate.", nameof(parts));
        int cols = parts[0].Columns;
        long rows = 0;
        foreach (var p in parts)
        {
            if (p.Columns != cols) throw new ArgumentException($"Cannot stack a matrix of width {p.Columns} under width {cols}.");
            rows += p.Rows;
        }
        var data = new float[checked(rows * cols)];
        int at = 0;
        foreach (var p in parts) { p.Data.CopyTo(data, at); at += p.Data.Length; }
        return new EmbeddingMatrix(data, (int)rows, cols);
    }
}

/// <summary>
/// Token-level features of a batch, zero-padded: [Count, MaxTokens, Dimension] plus each item's valid token count.
/// For text: the encoder's last hidden states and the attention mask as lengths. For images: patch tokens (ViT,
/// CLS excluded) or the last convolutional feature map as H*W tokens (CNN); every image has the same count.
/// </summary>
public sealed class TokenTensor
{
    /// <exception cref="ArgumentException">Shapes do not agree, or a length is outside [0, maxTokens].</exception>
    public TokenTensor(float[] data, int count, int maxTokens, int dimension, int[] lengths)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(lengths);
        if ((long)count * maxTokens * dimension != data.Length)
            throw new ArgumentException($"Data length {data.Length} does not match shape [{count}, {maxTokens}, {dimension}].", nameof(data));
        if (lengths.Length != count)
            throw new ArgumentException($"Expected {count} lengths, got {lengths.Length}.", nameof(lengths));
        for (int i = 0; i < lengths.Length; i++)
            if (lengths[i] < 0 || lengths[i] > maxTokens)
                throw new ArgumentException($"Length {lengths[i]} of item {i} is outside [0, {maxTokens}].", nameof(lengths));
        Data = data; Count = count; MaxTokens = maxTokens; Dimension = dimension; Lengths = lengths;
    }

    /// <summary>Values, [Count, MaxTokens, Dimension] row-major; positions at or past an item's length are zero.</summary>
    public float[] Data { get; }
    /// <summary>Number of items.</summary>
    public int Count { get; }
    /// <summary>Padded token count (the longest item in the batch).</summary>
    public int MaxTokens { get; }
    /// <summary>Feature dimension of one token.</summary>
    public int Dimension { get; }
    /// <summary>Valid tokens per item (the attention mask's sum).</summary>
    public int[] Lengths { get; }

    /// <summary>Item <paramref name="i"/>'s tokens, [MaxTokens, Dimension] row-major, padding included.</summary>
    public Span<float> Item(int i) => Data.AsSpan(checked(i * MaxTokens * Dimension), MaxTokens * Dimension);
}
