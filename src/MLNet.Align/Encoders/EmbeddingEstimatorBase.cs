using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.Encoders;

/// <summary>
/// What <see cref="ImageEmbeddingEstimator"/> and <see cref="TextEmbeddingEstimator"/> share: a trivial estimator (its
/// <see cref="Fit"/> learns nothing) that checks the input column and wraps a frozen encoder in a lazy column mapper.
/// The subclasses only say which encoder they take and how it fills the column.
/// </summary>
/// <typeparam name="TTransformer">The transformer <see cref="Fit"/> returns.</typeparam>
public abstract class EmbeddingEstimatorBase<TTransformer> : IEstimator<TTransformer> where TTransformer : EmbeddingTransformerBase
{
    private protected EmbeddingEstimatorBase(MLContext mlContext, int batchSize, Func<EmbeddingColumnMapper> mapper)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        if (batchSize <= 0) throw new ArgumentException($"Options.BatchSize must be positive, got {batchSize}.", "options");
        Mapper = mapper();
    }

    internal EmbeddingColumnMapper Mapper { get; }

    private protected abstract TTransformer CreateTransformer();

    /// <summary>Checks the input column and returns the transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or not Text.</exception>
    public TTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Mapper.CheckInput(input.Schema);
        return CreateTransformer();
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => Mapper.GetOutputSchema(inputSchema);
}

/// <summary>
/// What <see cref="ImageEmbeddingTransformer"/> and <see cref="TextEmbeddingTransformer"/> share: embeddings added to a
/// data view lazily, a batch of rows at a time as a cursor advances (memory: one batch of embeddings per open cursor,
/// never the whole column; each new cursor encodes again, so cache with <c>mlContext.Data.Cache</c> or the embedding
/// store when a view is read several times). Row-to-row (PredictionEngine) use encodes each row alone.
/// </summary>
public abstract class EmbeddingTransformerBase : ITransformer
{
    private readonly EmbeddingColumnMapper _m;

    private protected EmbeddingTransformerBase(EmbeddingColumnMapper mapper) => _m = mapper;

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
    public void Save(ModelSaveContext ctx) => throw new NotSupportedException(
        $"{GetType().Name} runs an ONNX encoder in-process and cannot be saved in an ML.NET model zip: ML.NET's save/load API is " +
        "internal, so a zip can only hold transformers ML.NET itself knows how to load. To ship a model, save the " +
        "ONNX-based zero-shot pipeline (stock ApplyOnnxModel steps over the encoder and the exported projector, which " +
        "mlContext.Model.Save handles) or the aligned-model bundle, and rebuild this transformer from the encoder at load time.");
}
