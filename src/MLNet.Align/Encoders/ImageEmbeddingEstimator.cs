using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.Encoders;

/// <summary>
/// Embeds images with a frozen <see cref="IImageEncoder"/>: input a Text column of image paths, output a known-size
/// float vector column [Dimension] (and optionally a token column [T*Dt], row-major [token, feature]).
/// Trivial estimator: <see cref="Fit"/> learns nothing, it checks the schema and wraps the encoder.
/// </summary>
/// <remarks>
/// | Estimator characteristics | |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | No |
/// | Input column data type | Text (image path) |
/// | Output column data type | Known-size vector of Single |
/// | Exportable to ML.NET zip / ONNX | No (in-process; see <see cref="ImageEmbeddingTransformer.Save"/>) |
/// </remarks>
public sealed class ImageEmbeddingEstimator : IEstimator<ImageEmbeddingTransformer>
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
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        _encoder = options.Encoder ?? throw new ArgumentException("Options.Encoder is required.", nameof(options));
        if (options.BatchSize <= 0) throw new ArgumentException($"Options.BatchSize must be positive, got {options.BatchSize}.", nameof(options));
        Mapper = CreateMapper(_encoder, options);
    }

    internal EmbeddingColumnMapper Mapper { get; }

    internal static EmbeddingColumnMapper CreateMapper(IImageEncoder encoder, Options o)
    {
        int? tokenCount = encoder is OnnxImageEncoder onnx && onnx.TokenCount > 0 ? onnx.TokenCount : null;
        return new EmbeddingColumnMapper("image path", o.InputColumnName ?? o.OutputColumnName, o.OutputColumnName, o.TokensColumnName,
            o.BatchSize, (items, tokens, ct) => encoder.EncodeBatch(items, tokens, ct),
            encoder.Identity.Dimension, encoder.Identity.TokenDimension, tokenCount);
    }

    /// <summary>Checks the input column and returns the transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or not Text.</exception>
    public ImageEmbeddingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Mapper.CheckInput(input.Schema);
        return new ImageEmbeddingTransformer(_encoder, Mapper);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => Mapper.GetOutputSchema(inputSchema);
}

/// <summary>
/// Adds image embeddings to a data view, lazily: rows are encoded a batch at a time (Options.BatchSize) as a cursor
/// advances, so memory holds one batch of embeddings per open cursor, never the whole column; each new cursor encodes
/// again (cache with <c>mlContext.Data.Cache</c> or the embedding store when a view is read several times).
/// Row-to-row (PredictionEngine) use encodes each row alone.
/// </summary>
public sealed class ImageEmbeddingTransformer : ITransformer
{
    private readonly EmbeddingColumnMapper _m;

    internal ImageEmbeddingTransformer(IImageEncoder encoder, EmbeddingColumnMapper mapper)
    {
        Encoder = encoder;
        _m = mapper;
    }

    /// <summary>The encoder (not owned).</summary>
    public IImageEncoder Encoder { get; }

    /// <summary>True: usable in PredictionEngine (one row per encoder call).</summary>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _m.GetOutputSchema(inputSchema);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new EmbeddingRowMapper(inputSchema, _m);

    /// <summary>Returns a lazy view with the embedding column(s) appended.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or not Text.</exception>
    public IDataView Transform(IDataView input) => new EmbeddingDataView(input, _m);

    /// <summary>Always throws: ML.NET model zips can only hold transformers that ML.NET itself can load.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public void Save(ModelSaveContext ctx) => throw new NotSupportedException(EmbeddingSaveMessage.Text("ImageEmbeddingTransformer"));
}

internal static class EmbeddingSaveMessage
{
    public static string Text(string type) =>
        $"{type} runs an ONNX encoder in-process and cannot be saved in an ML.NET model zip: ML.NET's save/load API is " +
        "internal, so a zip can only hold transformers ML.NET itself knows how to load. To ship a model, save the " +
        "ONNX-based zero-shot pipeline (stock ApplyOnnxModel steps over the encoder and the exported projector, which " +
        "mlContext.Model.Save handles) or the aligned-model bundle, and rebuild this transformer from the encoder at load time.";
}
