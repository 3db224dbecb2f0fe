using System.ComponentModel;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Projection;

/// <summary>
/// ML.NET estimator that trains alignment projectors (<see cref="AlignmentTrainer"/>) on an <see cref="IDataView"/>
/// holding pooled image and text embeddings (float vectors, one pair per row) and returns an
/// <see cref="AlignmentTransformer"/> that adds the aligned, L2-normalised embeddings as new columns.
/// Only pooled-input architectures can be trained here (token features do not fit in a row); use
/// <see cref="AlignmentTrainer"/> with an <see cref="IAlignmentDataSource"/> for token-level projectors.
/// Created by <c>mlContext.Alignment.AlignEmbeddings(...)</c>; training lines go to that context's
/// <see cref="MLContext.Log"/>.
/// </summary>
/// <remarks>
/// | Estimator characteristics | |
/// | -- | -- |
/// | Does this estimator need to look at the data to train its parameters? | Yes: every row, held in memory as two [n, d] float matrices |
/// | Input column data type | Known-size vector of Single (pooled image embedding; pooled text embedding) |
/// | Output column data type | Known-size vector of Single [E], L2-normalised (aligned image; aligned text) |
/// | Exportable to ML.NET zip | Not itself (see <see cref="AlignmentTransformer"/>); its image projector is, through ONNX and the zero-shot chain |
/// | Method | Freeze-Align projectors, symmetric InfoNCE with a learnable temperature (docs/method.md 3.3-3.5) |
/// </remarks>
public sealed class AlignmentEstimator : IEstimator<AlignmentTransformer>
{
    /// <summary>Settings of <see cref="AlignmentEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>Output column of aligned image embeddings, float[E].</summary>
        public string ImageOutputColumnName { get; set; } = "ImageAligned";
        /// <summary>Output column of aligned text embeddings, float[E].</summary>
        public string TextOutputColumnName { get; set; } = "TextAligned";
        /// <summary>Input column of pooled image embeddings, float vector.</summary>
        public string ImageInputColumnName { get; set; } = "ImageEmbedding";
        /// <summary>Input column of pooled text embeddings, float vector.</summary>
        public string TextInputColumnName { get; set; } = "TextEmbedding";
        /// <summary>Architecture and training settings (default: pooled MLP heads).</summary>
        public AlignmentOptions Alignment { get; set; } = new();
        /// <summary>A recipe name of <c>RecipeCatalog</c> (<c>"auto"</c>: every candidate, the best kept on pairs held
        /// out as whole groups, as <c>mlnet-align train</c> does), fitted with <c>mlContext.Alignment.Train</c>'s code;
        /// null (the default) trains <see cref="Alignment"/> as given. With a recipe, <see cref="Alignment"/>'s seed is
        /// the selection's seed and its other settings are the recipe's.</summary>
        public string? Recipe { get; set; }
        /// <summary>Held-out row indices (in cursor order); null = a seeded split by ValidationFraction.</summary>
        public IReadOnlyList<long>? ValidationRows { get; set; }
        /// <summary>Per-step/epoch progress.</summary>
        public IProgress<TrainingProgress>? Progress { get; set; }
        /// <summary>Custom per-epoch selection value (see <see cref="AlignmentTrainer.SelectionCallback"/>).</summary>
        public Func<IAlignedProjector, double>? SelectionCallback { get; set; }
        /// <summary>Cancels training between steps.</summary>
        public CancellationToken CancellationToken { get; set; }

        internal Options Clone() => (Options)MemberwiseClone();
    }

    private readonly MLContext _context;
    private readonly Options _options;

    private readonly Func<IAlignmentDataSource, Options, (AlignedModel Model, TrainingHistory? History)>? _fitRecipe;

    internal AlignmentEstimator(MLContext context, Options options,
        Func<IAlignmentDataSource, Options, (AlignedModel Model, TrainingHistory? History)>? fitRecipe = null)
    {
        _fitRecipe = fitRecipe;
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        options = options.Clone(); // later changes to the caller's object do not reach a created estimator
        if (options.Alignment.Projector.UsesImageTokens || options.Alignment.Projector.UsesTextTokens)
            throw new ArgumentException("AlignEmbeddings trains on pooled embedding columns only; token-level projectors (ImageLocal/TextLocal not None) need AlignmentTrainer with an IAlignmentDataSource holding tokens.");
        _context = context; _options = options;
    }

    /// <summary>History of the last <see cref="Fit"/>.</summary>
    public TrainingHistory? LastHistory { get; private set; }

    /// <summary>Reads both embedding columns into memory and trains the projectors.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An input column is missing or not a float vector (named).</exception>
    /// <exception cref="InvalidDataException">A row's vector width differs from the first row's (row and column named).</exception>
    public AlignmentTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var image = ReadColumn(input, _options.ImageInputColumnName);
        var text = ReadColumn(input, _options.TextInputColumnName);
        var data = new InMemoryAlignmentData(image, text);
        if (_options.Recipe is not null && _fitRecipe is not null)
        {
            var (model, history) = _fitRecipe(data, _options);
            LastHistory = history;
            return new AlignmentTransformer(_context, model, _options.ImageOutputColumnName, _options.TextOutputColumnName,
                _options.ImageInputColumnName, _options.TextInputColumnName);
        }
        var channel = ((IChannelProvider)_context).Start(nameof(AlignmentEstimator));
        try
        {
            var trainer = new AlignmentTrainer(_options.Alignment)
            {
                Progress = _options.Progress,
                SelectionCallback = _options.SelectionCallback,
                Log = message => channel.Info(MessageSensitivity.None, message),
            };
            var result = trainer.Fit(data, _options.ValidationRows, _options.CancellationToken);
            LastHistory = result.History;
            return new AlignmentTransformer(_context, result.Model, _options.ImageOutputColumnName, _options.TextOutputColumnName,
                _options.ImageInputColumnName, _options.TextInputColumnName);
        }
        finally { channel.Dispose(); }
    }

    /// <summary>Adds the output columns (float vectors) for each side whose input column exists.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var ic = inputSchema.FirstOrDefault(c => c.Name == _options.ImageInputColumnName);
        var tc = inputSchema.FirstOrDefault(c => c.Name == _options.TextInputColumnName);
        bool hasImage = ic.Name != null, hasText = tc.Name != null;
        if (!hasImage || !hasText)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Training needs both embedding columns: '{_options.ImageInputColumnName}' {(hasImage ? "found" : "missing")}, '{_options.TextInputColumnName}' {(hasText ? "found" : "missing")}.");
        int e = _options.Alignment.Projector.EmbeddingDimension;
        var shape = inputSchema;
        shape = AlignmentTransformer.MappingEstimator(_context, ic, _options.ImageInputColumnName, _options.ImageOutputColumnName, e, null).GetOutputSchema(shape);
        shape = AlignmentTransformer.MappingEstimator(_context, tc, _options.TextInputColumnName, _options.TextOutputColumnName, e, null).GetOutputSchema(shape);
        return shape;
    }

    private static EmbeddingMatrix ReadColumn(IDataView data, string name)
    {
        var column = data.Schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(data), $"Input column '{name}' not found; columns: {string.Join(", ", data.Schema.Select(c => c.Name))}.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType nt } || nt.RawType != typeof(float))
            throw new ArgumentOutOfRangeException(nameof(data), $"Column '{name}' must be a vector of Single, but is {column.Type}.");
        var values = new List<float>();
        int width = -1, rows = 0;
        using var cursor = data.GetRowCursor(new[] { column });
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var buffer = default(VBuffer<float>);
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            if (width < 0) width = buffer.Length;
            else if (buffer.Length != width)
                throw new InvalidDataException($"Row {rows} of column '{name}' has {buffer.Length} values; earlier rows have {width}.");
            foreach (var v in buffer.DenseValues()) values.Add(v);
            rows++;
        }
        if (rows == 0) throw new InvalidDataException($"Column '{name}' has no rows to train on.");
        return new EmbeddingMatrix(values.ToArray(), rows, width);
    }
}

/// <summary>
/// Applies a trained <see cref="AlignedModel"/> row by row: adds the aligned image embedding (when the image input
/// column exists) and the aligned text embedding (when the text input column exists), each float[E], L2-normalised.
/// Cannot be saved into an ML.NET model zip: persist <see cref="Model"/> with <see cref="AlignedModel.Save"/> (bundle
/// directory), or put its ONNX export (<see cref="AlignedModel.ExportImageProjectorOnnx"/>) into a pipeline with
/// ApplyOnnxModel, which ML.NET can save.
/// </summary>
public sealed class AlignmentTransformer : ITransformer, IDisposable
{
    private readonly MLContext _context;

    internal AlignmentTransformer(MLContext context, AlignedModel model, string imageOutput, string textOutput, string imageInput, string textInput)
    {
        _context = context; Model = model;
        ImageOutputColumnName = imageOutput; TextOutputColumnName = textOutput;
        ImageInputColumnName = imageInput; TextInputColumnName = textInput;
    }

    /// <summary>The trained projectors (ProjectImages/ProjectTexts, ONNX export, bundle Save).</summary>
    public AlignedModel Model { get; }
    /// <summary>Column added with the aligned image embedding, float[E], L2-normalised.</summary>
    public string ImageOutputColumnName { get; }
    /// <summary>Column added with the aligned text embedding, float[E], L2-normalised.</summary>
    public string TextOutputColumnName { get; }
    /// <summary>Column read for the pooled image embedding (float vector of the image encoder's width).</summary>
    public string ImageInputColumnName { get; }
    /// <summary>Column read for the pooled text embedding (float vector of the text encoder's width).</summary>
    public string TextInputColumnName { get; }

    /// <summary>True: the mapping works row by row (PredictionEngine).</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema plus an output column for each side whose input column is present.</summary>
    /// <param name="inputSchema">Schema to extend.</param>
    /// <exception cref="ArgumentOutOfRangeException">An input column is present but not a float vector of the
    /// projector's input width.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Chain(inputSchema).GetOutputSchema(inputSchema);

    /// <summary>Adds the aligned columns lazily (projected as the cursor reads rows).</summary>
    /// <param name="input">Data with one or both embedding columns.</param>
    public IDataView Transform(IDataView input) => Chain(input.Schema).Transform(input);

    /// <summary>Row-to-row mapper over <paramref name="inputSchema"/>, as <see cref="Transform"/> does.</summary>
    /// <param name="inputSchema">Schema of the rows to map.</param>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => ((ITransformer)Chain(inputSchema)).GetRowToRowMapper(inputSchema);

    /// <summary>Always throws: see the class remarks.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "AlignmentTransformer cannot be saved into an ML.NET model zip (ML.NET's persistence API is internal). Save the projectors with " +
        "AlignmentTransformer.Model.Save(directory) (the AlignedModel bundle format; reload with AlignedModel.Load), or apply the exported " +
        "ONNX graph (Model.ExportImageProjectorOnnx()) with ApplyOnnxModel, which ML.NET can save.");

    private TransformerChain<ITransformer> Chain(DataViewSchema schema)
    {
        var parts = new List<ITransformer>();
        var image = schema.GetColumnOrNull(ImageInputColumnName);
        var text = schema.GetColumnOrNull(TextInputColumnName);
        if (image is null && text is null)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Neither input column '{ImageInputColumnName}' nor '{TextInputColumnName}' exists; columns: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (image is DataViewSchema.Column ic) parts.Add(Mapper(ic, ImageInputColumnName, ImageOutputColumnName, Model.ImageDimension, isImage: true));
        if (text is DataViewSchema.Column tc) parts.Add(Mapper(tc, TextInputColumnName, TextOutputColumnName, Model.TextDimension, isImage: false));
        return new TransformerChain<ITransformer>(parts.ToArray());
    }

    private ITransformer Mapper(DataViewSchema.Column column, string input, string output, int expected, bool isImage)
    {
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType nt } vt || nt.RawType != typeof(float))
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{input}' must be a vector of Single, but is {column.Type}.");
        if (vt.Size != 0 && vt.Size != expected)
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{input}' holds {vt.Size}-d vectors; the {(isImage ? "image" : "text")} projector expects {expected}-d.");
        var model = Model;
        Action<MappingRow, MappingResult> map = isImage
            ? (src, dst) => dst.Output = model.ProjectImages(new EmbeddingMatrix(Dense(src.Input, expected, input), 1, expected)).Data
            : (src, dst) => dst.Output = model.ProjectTexts(new EmbeddingMatrix(Dense(src.Input, expected, input), 1, expected)).Data;
        var estimator = MappingEstimator(_context, null, input, output, Model.EmbeddingDimension, vt, map);
        var empty = _context.Data.LoadFromEnumerable(Array.Empty<MappingRow>(), InputDefinition(input, vt));
        return estimator.Fit(empty);
    }

    private static float[] Dense(float[]? values, int expected, string column)
    {
        if (values is null || values.Length != expected)
            throw new InvalidDataException($"A row of column '{column}' has {values?.Length ?? 0} values; the projector expects {expected}.");
        return values;
    }

    internal static IEstimator<ITransformer> MappingEstimator(MLContext context, SchemaShape.Column? shapeColumn, string input, string output, int embeddingDimension,
        VectorDataViewType? inputType, Action<MappingRow, MappingResult>? map = null)
    {
        // For schema propagation only the kind matters; a fixed size of 1 stands in when only a SchemaShape is known.
        inputType ??= shapeColumn is { Kind: SchemaShape.Column.VectorKind.VariableVector }
            ? new VectorDataViewType(NumberDataViewType.Single)
            : new VectorDataViewType(NumberDataViewType.Single, 1);
        var outDef = SchemaDefinition.Create(typeof(MappingResult));
        outDef[0].ColumnName = output;
        outDef[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, embeddingDimension);
        return context.Transforms.CustomMapping(map ?? ((_, _) => throw new InvalidOperationException("schema-only mapping")),
            contractName: null, InputDefinition(input, inputType), outDef);
    }

    private static SchemaDefinition InputDefinition(string input, VectorDataViewType type)
    {
        var def = SchemaDefinition.Create(typeof(MappingRow));
        def[0].ColumnName = input;
        def[0].ColumnType = type;
        return def;
    }

    /// <summary>Disposes the trained model (its TorchSharp modules hold native memory).</summary>
    public void Dispose() => Model.Dispose();

    /// <summary>Row type of the internal mapping (public only because ML.NET's row mapping needs it).</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class MappingRow
    {
        /// <summary>The pooled embedding of one row.</summary>
        public float[]? Input { get; set; }
    }

    /// <summary>Row type of the internal mapping (public only because ML.NET's row mapping needs it).</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class MappingResult
    {
        /// <summary>The aligned embedding of one row, float[E].</summary>
        public float[]? Output { get; set; }
    }
}
