using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.Encoders;

/// <summary>
/// Embeds texts with a frozen <see cref="ITextEncoder"/>: input a Text column, output a known-size float vector
/// column [Dimension] (and optionally a variable-size token column [length*Dt], row-major [token, feature]).
/// Trivial estimator: <c>Fit</c> learns nothing.
/// </summary>
/// <remarks>
/// | Estimator characteristics | |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | No |
/// | Input column data type | Text |
/// | Output column data type | Known-size vector of Single |
/// | Exportable to ML.NET zip / ONNX | No (in-process; see <see cref="EmbeddingTransformerBase.Save"/>) |
/// </remarks>
public sealed class TextEmbeddingEstimator : EmbeddingEstimatorBase<TextEmbeddingTransformer>
{
    /// <summary>Options of <see cref="TextEmbeddingEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>The frozen text encoder (required). Not owned: dispose it after the transformer's last use.</summary>
        public ITextEncoder? Encoder { get; set; }
        /// <summary>Output column: the pooled embedding, float[Dimension].</summary>
        public string OutputColumnName { get; set; } = "TextEmbedding";
        /// <summary>Input Text column; null = <see cref="OutputColumnName"/>.</summary>
        public string? InputColumnName { get; set; }
        /// <summary>Optional output column for token states, variable-size float[length*Dt]; null = none.</summary>
        public string? TokensColumnName { get; set; }
        /// <summary>Rows handed to the encoder at a time (it sorts them by length and pads per batch).</summary>
        public int BatchSize { get; set; } = 64;
    }

    private readonly ITextEncoder _encoder;

    /// <summary>Creates the estimator from <paramref name="options"/> (read once: later changes to the options object do
    /// not affect it). Use <c>mlContext.Alignment.EmbedText(...)</c>.</summary>
    /// <exception cref="ArgumentException"><see cref="Options.Encoder"/> is null or the batch size is not positive.</exception>
    internal TextEmbeddingEstimator(MLContext mlContext, Options options)
        : base(mlContext, EncoderOf(mlContext, options).BatchSize, () => CreateMapper(options.Encoder!, options))
        => _encoder = options.Encoder!;

    private static Options EncoderOf(MLContext mlContext, Options options)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        _ = options.Encoder ?? throw new ArgumentException("Options.Encoder is required.", nameof(options));
        return options;
    }

    private static EmbeddingColumnMapper CreateMapper(ITextEncoder encoder, Options o)
        => new("text", o.InputColumnName ?? o.OutputColumnName, o.OutputColumnName, o.TokensColumnName, o.BatchSize,
            (items, tokens, ct) => encoder.EncodeBatch(items, tokens, ct), encoder.Identity.Dimension, encoder.Identity.TokenDimension,
            fixedTokenCount: null);

    private protected override TextEmbeddingTransformer CreateTransformer() => new(_encoder, Mapper);
}

/// <summary>
/// Adds text embeddings to a data view lazily, a batch of rows at a time as a cursor advances (memory: one batch of
/// embeddings per open cursor). Empty or missing texts throw ArgumentException naming the column and batch.
/// </summary>
public sealed class TextEmbeddingTransformer : EmbeddingTransformerBase
{
    internal TextEmbeddingTransformer(ITextEncoder encoder, EmbeddingColumnMapper mapper) : base(mapper) => Encoder = encoder;

    /// <summary>The encoder (not owned).</summary>
    public ITextEncoder Encoder { get; }
}
