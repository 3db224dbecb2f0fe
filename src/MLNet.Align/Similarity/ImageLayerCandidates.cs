using System.Security.Cryptography;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Onnx;

namespace MLNet.Align.Similarity;

/// <summary>One intermediate layer of an image model offered as a stage-1 candidate.</summary>
/// <param name="Name">Candidate name, e.g. "resnet18.layer3".</param>
/// <param name="ValueName">The ONNX value holding the layer's feature map [N, C, H, W].</param>
/// <param name="Channels">C: the width of the pooled embedding.</param>
public sealed record ImageLayer(string Name, string ValueName, int Channels);

/// <summary>
/// An image model whose intermediate layers are candidates: the graph is edited (<see cref="OnnxLayerTaps"/>) so one
/// run returns every layer's globally average-pooled feature map, [N, C_layer] per layer. Preprocessing is the base
/// encoder's. Thread-safe; holds an ONNX Runtime session: dispose it.
/// </summary>
public sealed class ImageLayerCandidates : IDisposable
{
    private const string TapOutput = "mlnet_align_layer_taps";
    private readonly OnnxImageEncoder _encoder;
    private readonly int[] _offsets;

    /// <summary>The last three stages of the packaged ResNet-18 (Microsoft.ML.DnnImageFeaturizer.ResNet18): the ReLU
    /// outputs ending residual stages 2, 3 and 4 (torchvision's layer2/3/4): 128 x 28 x 28, 256 x 14 x 14 and
    /// 512 x 7 x 7. The pooled layer4 equals the model's own pooled output.</summary>
    public static IReadOnlyList<ImageLayer> ResNet18Stages { get; } =
    [
        new("resnet18.layer2", "ReLU315_Output_0", 128),
        new("resnet18.layer3", "ReLU347_Output_0", 256),
        new("resnet18.layer4", PackagedEncoders.ResNet18TokenOutputName, 512),
    ];

    /// <summary>Taps <paramref name="layers"/> of the model described by <paramref name="baseOptions"/> (its pooled
    /// output is replaced by the taps).</summary>
    /// <param name="baseOptions">The image encoder's options (model, preprocessing, pixel settings); not mutated.</param>
    /// <param name="modelBytes">The ONNX model bytes (e.g. with a symbolic batch); null = read <c>baseOptions.ModelPath</c>.</param>
    /// <param name="layers">Layers to expose.</param>
    /// <exception cref="ArgumentException">A layer's value is not in the graph, or its channel count differs from the model's.</exception>
    public ImageLayerCandidates(OnnxImageEncoderOptions baseOptions, byte[]? modelBytes, IReadOnlyList<ImageLayer> layers)
    {
        ArgumentNullException.ThrowIfNull(baseOptions);
        ArgumentNullException.ThrowIfNull(layers);
        Layers = layers;
        var model = OnnxGraphEditor.Parse(modelBytes ?? OnnxImageEncoder.LoadBytes(baseOptions.ModelBytes, baseOptions.ModelPath, "image model"));
        OnnxLayerTaps.AddPooledConcatOutput(model, layers.Select(l => l.ValueName).ToArray(), TapOutput);
        var o = new OnnxImageEncoderOptions
        {
            Name = baseOptions.Name + "+layers", ModelBytes = OnnxGraphEditor.ToBytes(model), InputName = baseOptions.InputName,
            PooledOutputName = TapOutput, TokenOutputName = null, ImageSize = baseOptions.ImageSize, ResizeMode = baseOptions.ResizeMode,
            ValueScale = baseOptions.ValueScale, Mean = baseOptions.Mean, Std = baseOptions.Std, ChannelOrder = baseOptions.ChannelOrder,
            PreprocessingModelPath = baseOptions.PreprocessingModelPath, PreprocessingModelBytes = baseOptions.PreprocessingModelBytes,
            PreprocessingInputName = baseOptions.PreprocessingInputName, PreprocessingOutputName = baseOptions.PreprocessingOutputName,
            BatchSize = baseOptions.BatchSize, AllowGraphBatchEdit = baseOptions.AllowGraphBatchEdit, IntraOpThreads = baseOptions.IntraOpThreads,
        };
        _encoder = new OnnxImageEncoder(o);
        int total = layers.Sum(l => l.Channels);
        if (_encoder.Identity.Dimension != total)
        {
            _encoder.Dispose();
            throw new ArgumentException($"The tapped layers give {_encoder.Identity.Dimension} channels in all, the layer list declares {total} ({string.Join(", ", layers.Select(l => $"{l.Name}={l.Channels}"))}).", nameof(layers));
        }
        _offsets = new int[layers.Count];
        for (int i = 1; i < layers.Count; i++) _offsets[i] = _offsets[i - 1] + layers[i - 1].Channels;
        Identities = layers.Select(l => new EncoderIdentity(l.Name,
            Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{_encoder.Identity.Sha256}|layer={l.ValueName}|gap"))),
            l.Channels, null)).ToArray();
    }

    /// <summary>The packaged ResNet-18's <see cref="ResNet18Stages"/>.</summary>
    /// <exception cref="FileNotFoundException">The ResNet-18 files are not beside the application.</exception>
    public static ImageLayerCandidates ResNet18(int batchSize = 32, IReadOnlyList<ImageLayer>? layers = null)
        => new(PackagedEncoders.ResNet18Options(batchSize), PackagedEncoders.ResNet18ModelBytes(addTokenOutput: false), layers ?? ResNet18Stages);

    /// <summary>The tapped model as an image encoder: its pooled output is every layer's pooled features side by side,
    /// [N, sum of C_layer] in <see cref="Layers"/> order (so a feature cache can store all layers in one pass; slice
    /// columns per layer). Owned by this object: do not dispose it.</summary>
    public IImageEncoder Encoder => _encoder;

    /// <summary>Column offset of each layer in <see cref="Encoder"/>'s output, in <see cref="Layers"/> order.</summary>
    public IReadOnlyList<int> Offsets => _offsets;

    /// <summary>The tapped layers, in output order.</summary>
    public IReadOnlyList<ImageLayer> Layers { get; }

    /// <summary>An identity per layer (name, SHA-256 over the edited model + the tapped value, width C).</summary>
    public IReadOnlyList<EncoderIdentity> Identities { get; }

    /// <summary>Encodes images (one session run per batch) and splits the result per layer.</summary>
    /// <returns>Layer name -> pooled features [images, C_layer], rows in input order.</returns>
    /// <exception cref="FileNotFoundException">An image is missing.</exception>
    /// <exception cref="InvalidDataException">An image cannot be decoded.</exception>
    public IReadOnlyDictionary<string, EmbeddingMatrix> Encode(IReadOnlyList<string> imagePaths, CancellationToken cancellationToken = default)
        => Split(_encoder.EncodeBatch(imagePaths, false, cancellationToken).Pooled);

    /// <summary>Encodes decoded bitmaps; see <see cref="Encode"/>.</summary>
    public IReadOnlyDictionary<string, EmbeddingMatrix> EncodeBitmaps(IReadOnlyList<SkiaSharp.SKBitmap> images, CancellationToken cancellationToken = default)
        => Split(_encoder.EncodeBitmaps(images, false, cancellationToken).Pooled);

    private Dictionary<string, EmbeddingMatrix> Split(EmbeddingMatrix all)
    {
        var result = new Dictionary<string, EmbeddingMatrix>(StringComparer.Ordinal);
        for (int l = 0; l < Layers.Count; l++)
            result[Layers[l].Name] = all.SelectColumns(_offsets[l], Layers[l].Channels);
        return result;
    }

    /// <summary>Disposes the session.</summary>
    public void Dispose() => _encoder.Dispose();
}
