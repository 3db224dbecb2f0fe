using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;
using MLNet.Align.Encoders;
using MLNet.Align.Onnx;
using MLNet.Align.Projection;
using Onnx;

namespace MLNet.Align.ZeroShot;

/// <summary>
/// An <see cref="IMLNetImageEncoder"/> that can also emit the encoder's token features, so that a token-level image
/// projector (docs/method.md 3.3: mean of P_loc over patch tokens + P_cls of the pooled/CLS feature) runs inside an ML.NET zip.
/// </summary>
public interface IMLNetTokenImageEncoder : IMLNetImageEncoder
{
    /// <summary>Width d of one token (512 for ResNet-18's last feature map).</summary>
    int TokenDimension { get; }

    /// <summary>Layout of the token column: <see cref="ImageTokenLayout.Nchw"/> [d, H, W] (CNN feature map, flattened
    /// inside the projector graph) or <see cref="ImageTokenLayout.TokensByDim"/> [T, d] (patch tokens, CLS removed).</summary>
    ImageTokenLayout TokenLayout { get; }

    /// <summary>(H, W) of a feature map, or (T, 1) for a token sequence; H*W = number of tokens.</summary>
    (int Height, int Width) TokenGrid { get; }

    /// <summary>Stock estimators reading image paths and writing the pooled embedding (float [<see cref="IMLNetImageEncoder.Dimension"/>])
    /// into <paramref name="pooledColumnName"/> and the tokens (float [H*W*d] in <see cref="TokenLayout"/>) into
    /// <paramref name="tokensColumnName"/>, from ONE run of the encoder per image.</summary>
    IEstimator<ITransformer> CreateTokenEstimator(TransformsCatalog transforms, string pooledColumnName, string tokensColumnName,
        string imagePathColumnName, string? imageFolder);
}

/// <summary>
/// Any <see cref="OnnxImageEncoder"/> configuration (<see cref="OnnxImageEncoderOptions"/>: ViT sequences with a CLS
/// token, CNN feature maps, optional preprocessing ONNX) as stock ML.NET transforms, so it saves in a zip:
/// LoadImages -> ResizeImages(R, R; IsoCrop for <see cref="ImageResizeMode.ShortestSideCenterCrop"/>, Fill for
/// <see cref="ImageResizeMode.Squash"/>; R = ResizeSize or ImageSize) -> ExtractPixels (planar ARGB 0..255) -> pixel ONNX
/// (centre S x S crop when R > S, alpha onto white, channel order, (v * ValueScale - mean) / std) -> [preprocessing
/// ONNX] -> the encoder ONNX (batch fixed to 1, token output exposed) -> a small ONNX computing the pooled feature
/// (CLS | mean of patches | concat, registers dropped) and the patch tokens from the token output, when needed.
/// ML.NET's resize differs slightly from the SkiaSharp resize of <see cref="OnnxImageEncoder"/> (a few grey levels at
/// edges); identical pixels give identical features.
/// </summary>
public sealed class OnnxMLNetImageEncoder : IMLNetTokenImageEncoder
{
    private const string PixelsColumn = "mlnet_align_argb", ImageColumn = "mlnet_align_image", ModelInputColumn = "mlnet_align_pixels";
    private readonly OnnxImageEncoderOptions _o;
    private readonly byte[] _model;
    private readonly byte[]? _prep;
    private readonly string _inputName;
    private readonly string? _prepInput, _prepOutput;
    private readonly long[]? _tokenShape;

    /// <summary>Reads the model(s), fixes the batch to 1, exposes the token output and measures the output shapes
    /// with one ONNX Runtime run on a blank image.</summary>
    /// <exception cref="ArgumentException">Inconsistent options or names missing from the model (listed).</exception>
    /// <exception cref="FileNotFoundException">A model file is missing.</exception>
    public OnnxMLNetImageEncoder(OnnxImageEncoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _o = options;
        if (options.Mean is not { Length: 3 } || options.Std is not { Length: 3 } || options.Std.Any(s => s == 0))
            throw new ArgumentException("Mean and Std need 3 values each, Std non-zero.", nameof(options));
        _derived = string.IsNullOrEmpty(options.PooledOutputName) || options.PooledOutputName == options.TokenOutputName;
        if (_derived && string.IsNullOrEmpty(options.TokenOutputName))
            throw new ArgumentException("Give PooledOutputName or TokenOutputName (a ViT sequence or CNN feature map to pool).", nameof(options));
        if (_derived && options.TokenKind == ImageTokenKind.FeatureMap && options.Pooling != ImagePooling.MeanPatch)
            throw new ArgumentException($"Pooling {options.Pooling} needs a CLS token: a feature map pools only with MeanPatch.", nameof(options));
        if (options.ResizeSize is int rs && rs < options.ImageSize)
            throw new ArgumentException($"ResizeSize ({rs}) must be at least ImageSize ({options.ImageSize}).", nameof(options));
        var model = OnnxGraphEditor.Parse(OnnxImageEncoder.LoadBytes(options.ModelBytes, options.ModelPath, "image model"));
        var inputs = OnnxGraphEditor.InputNames(model);
        _inputName = options.InputName ?? (inputs.Count == 1 ? inputs[0] : throw new ArgumentException($"The image model has {inputs.Count} inputs ({string.Join(", ", inputs)}); set InputName."));
        if (!inputs.Contains(_inputName)) throw new ArgumentException($"The image model has no input '{_inputName}'. Its inputs: {string.Join(", ", inputs)}.");
        var wanted = new List<string>();
        if (!_derived) wanted.Add(options.PooledOutputName);
        if (options.TokenOutputName is string tok && (_derived || tok != options.PooledOutputName)) wanted.Add(tok);
        foreach (var name in wanted)
            if (!model.Graph.Output.Any(o => o.Name == name)) OnnxGraphEditor.AddOutput(model, name);
        int s = options.ImageSize;
        if (options.PreprocessingModelBytes is not null || options.PreprocessingModelPath is not null)
        {
            var prep = OnnxGraphEditor.Parse(OnnxImageEncoder.LoadBytes(options.PreprocessingModelBytes, options.PreprocessingModelPath, "preprocessing model"));
            _prepInput = options.PreprocessingInputName ?? OnnxGraphEditor.InputNames(prep).Single();
            _prepOutput = options.PreprocessingOutputName ?? prep.Graph.Output[0].Name;
            MLNetOnnx.FixShape(prep.Graph.Input.First(i => i.Name == _prepInput), 1, 3, s, s);
            MLNetOnnx.FixShape(prep.Graph.Output.First(i => i.Name == _prepOutput), 1, 3, s, s);
            _prep = OnnxGraphEditor.ToBytes(prep);
        }
        MLNetOnnx.FixShape(model.Graph.Input.First(i => i.Name == _inputName), 1, 3, s, s);
        var probe = MLNetOnnx.ProbeShapes(OnnxGraphEditor.ToBytes(model), _inputName, [1, 3, s, s], wanted);
        for (int i = 0; i < wanted.Count; i++) MLNetOnnx.FixShape(model.Graph.Output.First(o => o.Name == wanted[i]), probe[i]);
        _model = OnnxGraphEditor.ToBytes(model);
        _modelOutputs = wanted.ToArray();
        long[]? pooledShape = _derived ? null : probe[0];
        _tokenShape = options.TokenOutputName is null ? null : probe[^1];

        if (_tokenShape is not null)
        {
            if (options.TokenKind == ImageTokenKind.FeatureMap)
            {
                if (_tokenShape.Length != 4) throw new ArgumentException($"Token output '{options.TokenOutputName}' has shape [{string.Join(",", _tokenShape)}], expected a feature map [1, C, H, W].");
                TokenDimension = (int)_tokenShape[1];
                TokenGrid = ((int)_tokenShape[2], (int)_tokenShape[3]);
                TokenLayout = ImageTokenLayout.Nchw;
            }
            else
            {
                if (_tokenShape.Length != 3) throw new ArgumentException($"Token output '{options.TokenOutputName}' has shape [{string.Join(",", _tokenShape)}], expected a ViT sequence [1, 1+R+T, D].");
                int skip = 1 + options.RegisterTokens;
                if (options.ClsTokenIndex < 0 || options.RegisterTokens < 0 || options.ClsTokenIndex + skip >= _tokenShape[1])
                    throw new ArgumentException($"'{options.TokenOutputName}' has {_tokenShape[1]} tokens: too few for CLS at index {options.ClsTokenIndex} and {options.RegisterTokens} register tokens plus patches.");
                TokenDimension = (int)_tokenShape[2];
                TokenGrid = ((int)_tokenShape[1] - skip, 1);
                TokenLayout = ImageTokenLayout.TokensByDim;
            }
        }
        Dimension = _derived
            ? (options.Pooling == ImagePooling.ClsMeanPatch ? 2 * TokenDimension : TokenDimension)
            : (int)pooledShape!.Aggregate(1L, (x, y) => x * y);
    }

    private readonly bool _derived;
    private readonly string[] _modelOutputs;

    /// <inheritdoc/>
    public string Name => _o.Name;
    /// <inheritdoc/>
    public int Dimension { get; }
    /// <inheritdoc/>
    public int TokenDimension { get; }
    /// <inheritdoc/>
    public ImageTokenLayout TokenLayout { get; } = ImageTokenLayout.TokensByDim;
    /// <inheritdoc/>
    public (int Height, int Width) TokenGrid { get; }

    /// <inheritdoc/>
    public IEstimator<ITransformer> CreateEstimator(TransformsCatalog transforms, string outputColumnName, string imagePathColumnName, string? imageFolder)
        => Build(transforms, outputColumnName, null, imagePathColumnName, imageFolder);

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">The options have no token output.</exception>
    public IEstimator<ITransformer> CreateTokenEstimator(TransformsCatalog transforms, string pooledColumnName, string tokensColumnName, string imagePathColumnName, string? imageFolder)
    {
        if (_tokenShape is null) throw new InvalidOperationException($"Image encoder '{Name}' has no token output (set TokenOutputName).");
        return Build(transforms, pooledColumnName, tokensColumnName, imagePathColumnName, imageFolder);
    }

    private IEstimator<ITransformer> Build(TransformsCatalog t, string pooledColumn, string? tokensColumn, string pathColumn, string? folder)
    {
        ArgumentNullException.ThrowIfNull(t);
        int s = _o.ImageSize, r = _o.ResizeMode == ImageResizeMode.Squash ? s : _o.ResizeSize ?? s;
        string modelIn = _prep is null ? _inputName : _prepInput!;
        var chain = t.LoadImages(ImageColumn, folder, pathColumn)
            .Append(t.ResizeImages(ImageColumn, r, r, ImageColumn,
                _o.ResizeMode == ImageResizeMode.Squash ? ImageResizingEstimator.ResizingKind.Fill : ImageResizingEstimator.ResizingKind.IsoCrop))
            .Append(t.ExtractPixels(PixelsColumn, ImageColumn, ImagePixelExtractingEstimator.ColorBits.All,
                ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, outputAsFloatArray: true))
            .Append(t.ApplyOnnxModel([modelIn], [PixelsColumn], new MemoryStream(PixelOnnx(modelIn))));
        IEstimator<ITransformer> c = chain;
        if (_prep is not null)
        {
            c = c.Append(t.ApplyOnnxModel([_prepOutput!], [_prepInput!], new MemoryStream(_prep)));
            if (_prepOutput != _inputName) c = c.Append(t.CopyColumns(_inputName, _prepOutput!));
        }
        c = c.Append(t.ApplyOnnxModel(_modelOutputs, [_inputName], new MemoryStream(_model)));
        bool vit = _o.TokenKind == ImageTokenKind.VitSequence;
        if (_derived || (vit && tokensColumn is not null))
        {
            // One small graph turns the raw token output into the pooled feature (when derived) and the patch tokens.
            var outs = new List<string>();
            if (_derived) outs.Add(pooledColumn);
            if (tokensColumn is not null) outs.Add(tokensColumn);
            c = c.Append(t.ApplyOnnxModel(outs.ToArray(), [_o.TokenOutputName!], new MemoryStream(FeatureOnnx(pooledColumn, _derived, tokensColumn))));
            if (!_derived) c = c.Append(t.CopyColumns(pooledColumn, _o.PooledOutputName));
        }
        else
        {
            c = c.Append(t.CopyColumns(pooledColumn, _o.PooledOutputName));
            if (tokensColumn is not null) c = c.Append(t.CopyColumns(tokensColumn, _o.TokenOutputName!));
        }
        return c;
    }

    /// <summary>Planar ARGB [1, 4, S, S] 0..255 (premultiplied, as ML.NET decodes) -> model input [1, 3, S, S]:
    /// composited onto white (rgb + 255 - a), planes in <see cref="OnnxImageEncoderOptions.ChannelOrder"/>, then
    /// (v * ValueScale - mean[c]) / std[c] — the arithmetic of <see cref="OnnxImageEncoder.PreparePixels"/>.</summary>
    private byte[] PixelOnnx(string outputName)
    {
        int s = _o.ImageSize, r = _o.ResizeMode == ImageResizeMode.Squash ? s : _o.ResizeSize ?? s;
        var g = new OnnxGraphBuilder("pixels");
        var x = g.Input(PixelsColumn, 1, 4, r, r);
        if (r != s)
        {
            // ResizeSize: shortest side to r (IsoCrop to r x r), then the centre s x s (torchvision Resize + CenterCrop).
            long off = (r - s) / 2;
            x = g.Op("Slice", x, g.ConstantInt64("crop_start", [off, off], 2), g.ConstantInt64("crop_end", [off + s, off + s], 2), g.ConstantInt64("crop_axes", [2, 3], 2));
        }
        var parts = g.Node("Split", [x, g.ConstantInt64("split_sizes", [1, 1, 1, 1], 4)], outputCount: 4,
            attributes: new Dictionary<string, object> { ["axis"] = 1L });
        var missing = g.Op("Sub", g.Constant("white", [255f], 1), parts[0]);
        string[] rgb = [g.Op("Add", parts[1], missing), g.Op("Add", parts[2], missing), g.Op("Add", parts[3], missing)];
        if (_o.ChannelOrder == ChannelOrder.Bgr) rgb = [rgb[2], rgb[1], rgb[0]];
        var planes = g.Op("Concat", rgb, new Dictionary<string, object> { ["axis"] = 1L });
        // (v * k - m) / sd computed as (v * k - m) * (1 / sd) in OnnxImageEncoder: keep the same order of operations.
        var k = g.Constant("value_scale", [_o.ValueScale], 1);
        var mean = g.Constant("mean", _o.Mean, 1, 3, 1, 1);
        var inv = g.Constant("inv_std", _o.Std.Select(v => 1f / v).ToArray(), 1, 3, 1, 1);
        var y = g.Op("Mul", g.Op("Sub", g.Op("Mul", planes, k), mean), inv);
        g.Node("Identity", [y], outputs: [outputName]);
        g.Output(outputName, 1, 3, s, s);
        return g.ToBytes();
    }

    /// <summary>The raw token output -> pooled feature (when <paramref name="withPooled"/>) and tokens, as
    /// <see cref="OnnxImageEncoder"/> computes them: ViT [1, L, D]: CLS = token ClsTokenIndex, the RegisterTokens after
    /// it dropped, patch tokens [1, T, D] in order; pooled = CLS | mean of patches | concat[CLS, mean]. Feature map
    /// [1, C, H, W]: pooled = mean over H*W, tokens = the map itself (flattened in the projector graph).</summary>
    private byte[] FeatureOnnx(string pooledColumn, bool withPooled, string? tokensColumn)
    {
        var g = new OnnxGraphBuilder("image_features");
        var attrs = (long axis) => new Dictionary<string, object> { ["axis"] = axis };
        if (_o.TokenKind == ImageTokenKind.FeatureMap)
        {
            var map = g.Input(_o.TokenOutputName!, _tokenShape!.Select(x => (object)x).ToArray());
            var mean = g.Op("ReduceMean", [map, g.ConstantInt64("hw_axes", [2, 3], 2)], new Dictionary<string, object> { ["keepdims"] = 0L });
            g.Node("Identity", [mean], outputs: [pooledColumn]);
            g.Output(pooledColumn, 1, (int)_tokenShape![1]);
            if (tokensColumn is not null)
            {
                g.Node("Identity", [map], outputs: [tokensColumn]);
                g.Output(tokensColumn, _tokenShape.Select(x => (object)x).ToArray());
            }
            return g.ToBytes();
        }
        int len = (int)_tokenShape![1], d = (int)_tokenShape[2], cls = _o.ClsTokenIndex, skip = 1 + _o.RegisterTokens;
        var seq = g.Input(_o.TokenOutputName!, 1, len, d);
        var keep = Enumerable.Range(0, len).Where(i => i < cls || i >= cls + skip).Select(i => (long)i).ToArray();
        var patches = g.Node("Gather", [seq, g.ConstantInt64("patch_index", keep, keep.Length)], outputs: [tokensColumn ?? "patch_tokens"], attributes: attrs(1))[0];
        if (tokensColumn is not null) g.Output(tokensColumn, 1, keep.Length, d);
        if (withPooled)
        {
            var clsVec = g.Op("Reshape", g.Node("Gather", [seq, g.ConstantInt64("cls_index", [cls], 1)], attributes: attrs(1))[0], g.ConstantInt64("pooled_shape", [1, d], 2));
            string Mean() => g.Op("ReduceMean", [patches, g.ConstantInt64("token_axis", [1], 1)], new Dictionary<string, object> { ["keepdims"] = 0L });
            var pooled = _o.Pooling switch
            {
                ImagePooling.Cls => clsVec,
                ImagePooling.MeanPatch => Mean(),
                _ => g.Op("Concat", [clsVec, Mean()], attrs(1)),
            };
            g.Node("Identity", [pooled], outputs: [pooledColumn]);
            g.Output(pooledColumn, 1, _o.Pooling == ImagePooling.ClsMeanPatch ? 2 * d : d);
        }
        return g.ToBytes();
    }
}

/// <summary>Small ONNX helpers for graphs that ML.NET's OnnxTransformer runs (it needs every dimension known).</summary>
internal static class MLNetOnnx
{
    public static void FixShape(ValueInfoProto value, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        value.Type ??= new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } };
        value.Type.TensorType.Shape = shape;
    }

    /// <summary>Runs the model once on zeros and returns the shapes of <paramref name="outputs"/>.</summary>
    public static long[][] ProbeShapes(byte[] model, string input, long[] inputShape, IReadOnlyList<string> outputs)
    {
        using var options = new SessionOptions();
        using var session = new InferenceSession(model, options);
        var data = new float[inputShape.Aggregate(1L, (a, b) => a * b)];
        using var value = OrtValue.CreateTensorValueFromMemory(data, inputShape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [input], [value], outputs.ToArray());
        return results.Select(r => r.GetTensorTypeAndShape().Shape).ToArray();
    }
}
