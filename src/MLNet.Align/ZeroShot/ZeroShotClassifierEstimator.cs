using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Align.Onnx;
using MLNet.Align.Projection;
using MLNet.Align.Prompts;

namespace MLNet.Align.ZeroShot;

/// <summary>
/// Zero-shot image classifier as an ML.NET estimator. <see cref="Fit"/> needs no training data (only the input
/// schema) and returns a <see cref="TransformerChain{ITransformer}"/> of STOCK ML.NET transformers, so
/// <c>mlContext.Model.Save</c> writes a self-contained zip that <c>mlContext.Model.Load</c> reads back in any app
/// referencing Microsoft.ML, .ImageAnalytics, .OnnxTransformer and ONNX Runtime (no MLNet.Align, no text encoder,
/// no tokenizer): image path -> image encoder (<see cref="IMLNetImageEncoder"/>, ResNet18 by default) ->
/// <c>image_embedding</c> -> image projector ONNX (<see cref="IOnnxExportableProjector.ExportImageProjectorOnnx"/>) ->
/// <c>image_aligned</c> [E] -> zero-shot head ONNX (<see cref="ZeroShotHead"/>) -> <c>Score</c> float [C] (class names
/// as slot names) and <c>PredictedClass</c> (class name; ML.NET exposes it as a text vector of length 1) -> stock
/// <c>MapValueToKey</c> -> <c>PredictedLabel</c>, key-typed with the class names as key values (a key vector of length
/// 1, ML.NET's ONNX outputs being vectors), so <c>mlContext.MulticlassClassification.Evaluate</c> works on the zip's
/// output and <c>MapKeyToValue</c> gives the names back.
/// </summary>
/// <remarks>
/// | Estimator characteristic | |
/// | -- | -- |
/// | Needs data to train? | No (class embeddings are precomputed by <see cref="ClassEmbeddingBuilder"/>) |
/// | Input column | string: image file path |
/// | Output columns | Score: known-size vector of Single [C]; PredictedLabel: vector of Key [1] (key values = class names); PredictedClass: vector of Text [1]; image_embedding, image_aligned |
/// | Extra NuGet | Microsoft.ML.ImageAnalytics, Microsoft.ML.OnnxTransformer, Microsoft.ML.OnnxRuntime |
/// The fitted chain holds ONNX Runtime sessions: dispose its transformers (cast to IDisposable) when done.
/// Token-level image projectors (<see cref="IAlignedProjector.UsesImageTokens"/>, docs/method.md 3.3) need an
/// <see cref="IMLNetTokenImageEncoder"/>: the encoder ONNX then also outputs its tokens (ResNet-18: the 7x7x512 last
/// feature map; ViT: the patch tokens) into <c>image_tokens</c>, in the layout the encoder reports, from the same run.
/// The projector and head run as ONE fused ONNX graph (<see cref="FusedOnnx"/>).
/// </remarks>
public sealed class ZeroShotClassifierEstimator : IEstimator<TransformerChain<ITransformer>>
{
    /// <summary>Options of the zero-shot classifier.</summary>
    public sealed class Options
    {
        /// <summary>Output column of the key-typed predicted label. Default "PredictedLabel".</summary>
        public string PredictedLabelColumnName { get; set; } = ZeroShotHeadNames.PredictedLabel;

        /// <summary>Output column of the predicted class name as text. Default "PredictedClass".</summary>
        public string PredictedClassColumnName { get; set; } = ZeroShotHeadNames.PredictedClass;

        /// <summary>Output column of the class probabilities [C]. Default "Score".</summary>
        public string ScoreColumnName { get; set; } = ZeroShotHeadNames.Score;

        /// <summary>Input column: image file path (string). Default "ImagePath".</summary>
        public string ImagePathColumnName { get; set; } = "ImagePath";

        /// <summary>Folder that relative image paths are resolved against (null: as given). Saved in the zip.</summary>
        public string? ImageFolder { get; set; }

        /// <summary>The trained projector (its image side is exported to ONNX).</summary>
        public IOnnxExportableProjector Projector { get; set; } = null!;

        /// <summary>Class names and [C, E] class embeddings from <see cref="ClassEmbeddingBuilder"/>.</summary>
        public ClassEmbeddings Classes { get; set; } = null!;

        /// <summary>Image encoder as stock transforms; default <see cref="ResNet18MLNetImageEncoder"/> with the package's files.</summary>
        public IMLNetImageEncoder? ImageEncoder { get; set; }

        /// <summary>Softmax scale; null: the projector's <see cref="IAlignedProjector.LogitScale"/>.</summary>
        public float? LogitScale { get; set; }

        /// <summary>GPU device for the projector + head ONNX stage (ML.NET's ApplyOnnxModel <c>gpuDeviceId</c>); null =
        /// CPU. The encoder stages follow <c>MLContext.GpuDeviceId</c>. Not saved in the zip: a loading app sets
        /// <c>MLContext.GpuDeviceId</c> / <c>FallbackToCpu</c> itself (ML.NET never persists device settings).</summary>
        public int? GpuDeviceId { get; set; }

        /// <summary>When <see cref="GpuDeviceId"/> is set but CUDA cannot start: true runs on CPU after one stderr line,
        /// false (ML.NET's default) makes the constructor throw <see cref="InvalidOperationException"/>.</summary>
        public bool FallbackToCpu { get; set; }

        internal Options Clone() => (Options)MemberwiseClone();
    }

    /// <summary>Column holding the frozen encoder's pooled image embedding.</summary>
    public const string ImageEmbeddingColumnName = ProjectorOnnxNames.ImageEmbedding;

    /// <summary>Column holding the frozen encoder's image tokens (token-level projectors only): [d, H, W] for a CNN
    /// feature map, [T, d] for ViT patch tokens (see <see cref="IMLNetTokenImageEncoder.TokenLayout"/>).</summary>
    public const string ImageTokensColumnName = ProjectorOnnxNames.ImageTokens;

    /// <summary>Column holding the aligned, L2-normalised image embedding [E].</summary>
    public const string ImageAlignedColumnName = ProjectorOnnxNames.ImageAligned;

    private readonly Options _options;
    private readonly IEstimator<ITransformer> _chain;

    /// <summary>Creates the estimator on the caller's context and builds its ONNX graphs. Use
    /// <c>mlContext.Alignment.ZeroShotClassifier(...)</c>. The options are copied: later changes do not affect it.</summary>
    /// <exception cref="ArgumentException">Missing projector or classes; a token-level image projector with an encoder that cannot emit tokens or whose token width differs; class width
    /// differs from the projector's; image encoder width differs from what the projector graph expects; empty or
    /// duplicate class names; output column names that collide.</exception>
    internal ZeroShotClassifierEstimator(MLContext mlContext, Options options)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(options);
        options = options.Clone();
        _options = options;
        if (options.Projector == null) throw new ArgumentException("Options.Projector is required.", nameof(options));
        if (options.Classes == null) throw new ArgumentException("Options.Classes is required.", nameof(options));
        ClassList.Validate(options.Classes.ClassNames);
        if (options.Classes.Dimension != options.Projector.EmbeddingDimension)
            throw new ArgumentException($"Class embeddings have width {options.Classes.Dimension}, projector '{options.Projector.Name}' has {options.Projector.EmbeddingDimension}.");
        var names = new[] { options.ScoreColumnName, options.PredictedLabelColumnName, options.PredictedClassColumnName };
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            throw new ArgumentException($"Score, PredictedLabel and PredictedClass columns need distinct names; got '{string.Join("', '", names)}'.", nameof(options));
        float scale = options.LogitScale ?? options.Projector.LogitScale;
        var encoder = options.ImageEncoder ?? new ResNet18MLNetImageEncoder();

        var t = mlContext.Transforms;
        string[] projectorInputs;
        IEstimator<ITransformer> encoderChain;
        if (options.Projector.UsesImageTokens)
        {
            if (encoder is not IMLNetTokenImageEncoder tokenEncoder)
                throw new ArgumentException($"Projector '{options.Projector.Name}' uses image tokens, but image encoder '{encoder.Name}' ({encoder.GetType().Name}) cannot emit tokens; use an {nameof(IMLNetTokenImageEncoder)} such as {nameof(ResNet18MLNetImageEncoder)} or {nameof(OnnxMLNetImageEncoder)} with a token output.");
            var model = global::Onnx.ModelProto.Parser.ParseFrom(options.Projector.ExportImageProjectorOnnx(tokenEncoder.TokenLayout));
            var tokensInput = model.Graph.Input.FirstOrDefault(i => i.Name == ProjectorOnnxNames.ImageTokens)
                ?? throw new ArgumentException($"Projector '{options.Projector.Name}' uses image tokens but its image graph has no input '{ProjectorOnnxNames.ImageTokens}'.");
            CheckTokenInput(tokensInput, tokenEncoder, options.Projector.Name);
            var (h, w) = tokenEncoder.TokenGrid;
            // ML.NET's OnnxTransformer needs every non-batch dimension known: fix the token grid recorded by the encoder.
            if (tokenEncoder.TokenLayout == ImageTokenLayout.Nchw) MLNetOnnx.FixShape(tokensInput, 1, tokenEncoder.TokenDimension, h, w);
            else MLNetOnnx.FixShape(tokensInput, 1, (long)h * w, tokenEncoder.TokenDimension);
            ProjectorOnnx = Google.Protobuf.MessageExtensions.ToByteArray(model);
            projectorInputs = [ImageEmbeddingColumnName, ImageTokensColumnName];
            encoderChain = tokenEncoder.CreateTokenEstimator(t, ImageEmbeddingColumnName, ImageTokensColumnName, options.ImagePathColumnName, options.ImageFolder);
        }
        else
        {
            ProjectorOnnx = options.Projector.ExportImageProjectorOnnx();
            projectorInputs = [ImageEmbeddingColumnName];
            encoderChain = encoder.CreateEstimator(t, ImageEmbeddingColumnName, options.ImagePathColumnName, options.ImageFolder);
        }
        HeadOnnx = ZeroShotHead.ExportOnnx(options.Classes, scale, options.ScoreColumnName, options.PredictedClassColumnName);
        CheckProjectorInput(ProjectorOnnx, encoder.Dimension, options.Projector.Name);
        // One ONNX stage for projector + head: image_aligned stays an output (a column of the chain).
        FusedOnnx = OnnxGraphComposer.Chain(ProjectorOnnx, HeadOnnx, "head/");

        // Decide the provider here: ML.NET 5.0.1's own fallback catches only OnnxRuntimeException, while a CPU-only ONNX
        // Runtime throws EntryPointNotFoundException for the CUDA provider, so FallbackToCpu alone would crash there.
        int? gpu = options.GpuDeviceId is null || Encoders.OnnxExecution.Resolve("zero-shot projector + head", options.GpuDeviceId, options.FallbackToCpu) == Encoders.OnnxExecution.Cpu
            ? null : options.GpuDeviceId;
        // Key values in class order (MapValueToKey keeps the order of first occurrence in keyData).
        var keyData = mlContext.Data.LoadFromEnumerable(options.Classes.ClassNames.Select(n => new ClassKey { Name = n }));
        _chain = encoderChain.Append(t.ApplyOnnxModel(
            new[] { ImageAlignedColumnName, options.ScoreColumnName, options.PredictedClassColumnName }, projectorInputs,
            new MemoryStream(FusedOnnx), gpu, options.FallbackToCpu))
            .Append(t.Conversion.MapValueToKey(options.PredictedLabelColumnName, options.PredictedClassColumnName, keyData: keyData));
    }

    /// <summary>The exported image projector graph (image_embedding -> image_aligned).</summary>
    public byte[] ProjectorOnnx { get; }

    /// <summary>The exported head graph (image_aligned -> Score, PredictedLabel).</summary>
    public byte[] HeadOnnx { get; }

    /// <summary>Projector and head fused into the one graph the chain runs (<see cref="OnnxGraphComposer.Chain(byte[], byte[], string, bool)"/>):
    /// image_embedding [+ image_tokens] -> image_aligned, Score, PredictedLabel.</summary>
    public byte[] FusedOnnx { get; }

    /// <summary>Builds the transformer chain. <paramref name="input"/> only supplies the schema (it may be empty)
    /// and must have the image path column as text.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image path column is missing or not text.</exception>
    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckInput(input.Schema.GetColumnOrNull(_options.ImagePathColumnName)?.Type is Microsoft.ML.Data.TextDataViewType, input.Schema.GetColumnOrNull(_options.ImagePathColumnName)?.Type.ToString());
        var fitted = _chain.Fit(input);
        return fitted as TransformerChain<ITransformer> ?? new TransformerChain<ITransformer>(((IEnumerable<ITransformer>)fitted).ToArray());
    }

    /// <inheritdoc/>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var found = inputSchema.Where(c => c.Name == _options.ImagePathColumnName).ToList();
        bool ok = found.Count > 0;
        CheckInput(ok && found[^1].ItemType is TextDataViewType && found[^1].Kind == SchemaShape.Column.VectorKind.Scalar, ok ? $"{found[^1].Kind} of {found[^1].ItemType}" : null);
        return _chain.GetOutputSchema(inputSchema);
    }

    private void CheckInput(bool ok, string? actual)
    {
        if (!ok)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Zero-shot classifier input column '{_options.ImagePathColumnName}' must be a text column of image paths; found {actual ?? "no such column"}.");
    }

    private static void CheckTokenInput(global::Onnx.ValueInfoProto tokensInput, IMLNetTokenImageEncoder encoder, string projectorName)
    {
        var dims = tokensInput.Type.TensorType.Shape.Dim;
        int channelAxis = encoder.TokenLayout == ImageTokenLayout.Nchw ? 1 : 2;
        long d = dims.Count > channelAxis ? dims[channelAxis].DimValue : 0;
        if (dims.Count != channelAxis + (encoder.TokenLayout == ImageTokenLayout.Nchw ? 3 : 1))
            throw new ArgumentException($"Projector '{projectorName}' image_tokens input has rank {dims.Count}, the {encoder.TokenLayout} layout of encoder '{encoder.Name}' needs {(encoder.TokenLayout == ImageTokenLayout.Nchw ? 4 : 3)}.");
        if (d > 0 && d != encoder.TokenDimension)
            throw new ArgumentException($"Projector '{projectorName}' expects image tokens of width {d}, image encoder '{encoder.Name}' produces {encoder.TokenDimension}.");
    }

    private sealed class ClassKey
    {
        public string Name { get; set; } = "";
    }

    private static void CheckProjectorInput(byte[] projectorOnnx, int encoderDim, string projectorName)
    {
        var model = global::Onnx.ModelProto.Parser.ParseFrom(projectorOnnx);
        var input = model.Graph.Input.FirstOrDefault(i => i.Name == ProjectorOnnxNames.ImageEmbedding)
            ?? throw new ArgumentException($"Projector '{projectorName}' image graph has no input '{ProjectorOnnxNames.ImageEmbedding}'.");
        if (!model.Graph.Output.Any(o => o.Name == ProjectorOnnxNames.ImageAligned))
            throw new ArgumentException($"Projector '{projectorName}' image graph has no output '{ProjectorOnnxNames.ImageAligned}'.");
        var dims = input.Type.TensorType.Shape.Dim;
        var last = dims.Count > 0 ? dims[dims.Count - 1] : null;
        if (last != null && last.DimValue > 0 && last.DimValue != encoderDim)
            throw new ArgumentException($"Projector '{projectorName}' expects image embeddings of width {last.DimValue}, the image encoder produces {encoderDim}.");
    }
}
