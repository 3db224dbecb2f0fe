using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.Encoders;

/// <summary>
/// Embeds texts with a frozen <see cref="ITextEncoder"/>: input a Text column, output a known-size float vector
/// column [Dimension] (and optionally a variable-size token column [length*Dt], row-major [token, feature]).
/// Trivial estimator: <see cref="Fit"/> learns nothing.
/// </summary>
/// <remarks>
/// | Estimator characteristics | |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | No |
/// | Input column data type | Text |
/// | Output column data type | Known-size vector of Single |
/// | Exportable to ML.NET zip / ONNX | No (in-process; see <see cref="TextEmbeddingTransformer.Save"/>) |
/// </remarks>
public sealed class TextEmbeddingEstimator : IEstimator<TextEmbeddingTransformer>
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
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        var encoder = _encoder = options.Encoder ?? throw new ArgumentException("Options.Encoder is required.", nameof(options));
        if (options.BatchSize <= 0) throw new ArgumentException($"Options.BatchSize must be positive, got {options.BatchSize}.", nameof(options));
        Mapper = new EmbeddingColumnMapper("text", options.InputColumnName ?? options.OutputColumnName, options.OutputColumnName,
            options.TokensColumnName, options.BatchSize, (items, tokens, ct) => encoder.EncodeBatch(items, tokens, ct),
            encoder.Identity.Dimension, encoder.Identity.TokenDimension, fixedTokenCount: null);
    }

    internal EmbeddingColumnMapper Mapper { get; }

    /// <summary>Checks the input column and returns the transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or not Text.</exception>
    public TextEmbeddingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Mapper.CheckInput(input.Schema);
        return new TextEmbeddingTransformer(_encoder, Mapper);
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => Mapper.GetOutputSchema(inputSchema);
}

/// <summary>
/// Adds text embeddings to a data view lazily, a batch of rows at a time as a cursor advances (memory: one batch of
/// embeddings per open cursor). Empty or missing texts throw ArgumentException naming the column and batch.
/// </summary>
public sealed class TextEmbeddingTransformer : ITransformer
{
    private readonly EmbeddingColumnMapper _m;

    internal TextEmbeddingTransformer(ITextEncoder encoder, EmbeddingColumnMapper mapper)
    {
        Encoder = encoder;
        _m = mapper;
    }

    /// <summary>The encoder (not owned).</summary>
    public ITextEncoder Encoder { get; }

    /// <summary>True: usable in PredictionEngine (one row per encoder call).</summary>
    public bool IsRowToRowMapper => true;

    /// <inheritdoc/>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => _m.GetOutputSchema(inputSchema);

    /// <inheritdoc/>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new EmbeddingRowMapper(inputSchema, _m);

    /// <summary>Returns a lazy view with the embedding column(s) appended.</summary>
    public IDataView Transform(IDataView input) => new EmbeddingDataView(input, _m);

    /// <summary>Always throws: ML.NET model zips can only hold transformers that ML.NET itself can load.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public void Save(ModelSaveContext ctx) => throw new NotSupportedException(EmbeddingSaveMessage.Text("TextEmbeddingTransformer"));
}
