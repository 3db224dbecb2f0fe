using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.Encoders;

/// <summary>
/// Embeds images with a frozen <see cref="IImageEncoder"/>: input a Text column of image paths, output a known-size
/// float vector column [Dimension] (and optionally a token column [T*Dt], row-major [token, feature]).
/// Trivial estimator: <c>Fit</c> learns nothing, it checks the schema and wraps the encoder.
/// </summary>
/// <remarks>
/// | Estimator characteristics | |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | No |
/// | Input column data type | Text (image path) |
/// | Output column data type | Known-size vector of Single |
/// | Exportable to ML.NET zip / ONNX | No (in-process; see <see cref="EmbeddingTransformerBase.Save"/>) |
/// </remarks>
public sealed class ImageEmbeddingEstimator : EmbeddingEstimatorBase<ImageEmbeddingTransformer>
{
    /// <summary>Options of <see cref="ImageEmbeddingEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>The frozen image encoder (required). Not owned: dispose it after the transformer's last use.</summary>
        public IImageEncoder? Encoder { get; set; }
        /// <summary>Output column: the pooled embedding, float[Dimension].</summary>
        public string OutputColumnName { get; set; } = "ImageEmbedding";
        /// <summary>Input column of image paths (Text); null = <see cref="OutputColumnName"/>.</summary>
        public string? InputColumnName { get; set; }
        /// <summary>Optional output column for token features, float[T*Dt] (known size for CNN feature maps); null = none.</summary>
        public string? TokensColumnName { get; set; }
        /// <summary>Rows handed to the encoder at a time as the cursor advances.</summary>
        public int BatchSize { get; set; } = 32;
    }

    private readonly IImageEncoder _encoder;

    /// <summary>Creates the estimator from <paramref name="options"/> (read once: later changes to the options object do
    /// not affect it). Use <c>mlContext.Alignment.EmbedImages(...)</c>.</summary>
    /// <exception cref="ArgumentException"><see cref="Options.Encoder"/> is null or the batch size is not positive.</exception>
    internal ImageEmbeddingEstimator(MLContext mlContext, Options options)
        : base(mlContext, EncoderOf(mlContext, options).BatchSize, () => CreateMapper(options.Encoder!, options))
        => _encoder = options.Encoder!;

    private static Options EncoderOf(MLContext mlContext, Options options)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        _ = options.Encoder ?? throw new ArgumentException("Options.Encoder is required.", nameof(options));
        return options;
    }

    private static EmbeddingColumnMapper CreateMapper(IImageEncoder encoder, Options o)
    {
        int? tokenCount = encoder is OnnxImageEncoder onnx && onnx.TokenCount > 0 ? onnx.TokenCount : null;
        return new EmbeddingColumnMapper("image path", o.InputColumnName ?? o.OutputColumnName, o.OutputColumnName, o.TokensColumnName,
            o.BatchSize, (items, tokens, ct) => encoder.EncodeBatch(items, tokens, ct),
            encoder.Identity.Dimension, encoder.Identity.TokenDimension, tokenCount);
    }

    private protected override ImageEmbeddingTransformer CreateTransformer() => new(_encoder, Mapper);
}

/// <summary>
/// Adds image embeddings to a data view, lazily: rows are encoded a batch at a time (Options.BatchSize) as a cursor
/// advances, so memory holds one batch of embeddings per open cursor, never the whole column; each new cursor encodes
/// again (cache with <c>mlContext.Data.Cache</c> or the embedding store when a view is read several times).
/// Row-to-row (PredictionEngine) use encodes each row alone.
/// </summary>
public sealed class ImageEmbeddingTransformer : EmbeddingTransformerBase
{
    internal ImageEmbeddingTransformer(IImageEncoder encoder, EmbeddingColumnMapper mapper) : base(mapper) => Encoder = encoder;

    /// <summary>The encoder (not owned).</summary>
    public IImageEncoder Encoder { get; }
}
