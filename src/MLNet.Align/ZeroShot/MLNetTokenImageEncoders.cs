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
/// projector (PAPER.md 3.3: mean of P_loc over patch tokens + P_cls of the pooled/CLS feature) runs inside an ML.NET zip.
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
/// LoadImages -> ResizeImages(S, S; IsoCrop for <see cref="ImageResizeMode.ShortestSideCenterCrop"/>, Fill for
/// <see cref="ImageResizeMode.Squash"/>) -> ExtractPixels (planar ARGB 0..255) -> pixel ONNX (alpha onto white, channel
/// order, (v * ValueScale - mean) / std) -> [preprocessing ONNX] -> the encoder ONNX (batch fixed to 1, token output
/// exposed) -> for ViT sequences a small ONNX splitting CLS (pooled) from the patch tokens.
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
    private readonly long[] _pooledShape;
    private readonly long[]? _tokenShape;

    /// <summary>Reads the model(s), fixes the batch to 1, exposes the token output and measures the output shapes
    /// with one ONNX Runtime run on a blank image.</summary>
    /// <exception cref="ArgumentException">Inconsistent options or names missing from the model (listed).</exception>
    /// <exception cref="FileNotFoundException">A model file is missing.</exception>
    public OnnxMLNetImageEncoder(OnnxImageEncoderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _o = options;
        if (string.IsNullOrEmpty(options.PooledOutputName)) throw new ArgumentException("PooledOutputName is required.", nameof(options));
        if (options.Mean is not { Length: 3 } || options.Std is not { Length: 3 } || options.Std.Any(s => s == 0))
            throw new ArgumentException("Mean and Std need 3 values each, Std non-zero.", nameof(options));
        var model = OnnxGraphEditor.Parse(OnnxImageEncoder.LoadBytes(options.ModelBytes, options.ModelPath, "image model"));
        var inputs = OnnxGraphEditor.InputNames(model);
        _inputName = options.InputName ?? (inputs.Count == 1 ? inputs[0] : throw new ArgumentException($"The image model has {inputs.Count} inputs ({string.Join(", ", inputs)}); set InputName."));
        if (!inputs.Contains(_inputName)) throw new ArgumentException($"The image model has no input '{_inputName}'. Its inputs: {string.Join(", ", inputs)}.");
        if (options.TokenOutputName is string tok) OnnxGraphEditor.AddOutput(model, tok);
        if (!model.Graph.Output.Any(o => o.Name == options.PooledOutputName)) OnnxGraphEditor.AddOutput(model, options.PooledOutputName);
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
        var probe = MLNetOnnx.ProbeShapes(OnnxGraphEditor.ToBytes(model), _inputName, [1, 3, s, s],
            options.TokenOutputName is null ? [options.PooledOutputName] : [options.PooledOutputName, options.TokenOutputName]);
        _pooledShape = probe[0];
        foreach (var (name, shape) in new[] { (options.PooledOutputName, probe[0]) }.Concat(options.TokenOutputName is null ? [] : new[] { (options.TokenOutputName, probe[^1]) }))
            MLNetOnnx.FixShape(model.Graph.Output.First(o => o.Name == name), shape);
        _model = OnnxGraphEditor.ToBytes(model);

        bool vitPooled = options.TokenKind == ImageTokenKind.VitSequence && options.PooledOutputName == options.TokenOutputName;
        if (vitPooled)
        {
            if (_pooledShape.Length != 3) throw new ArgumentException($"Output '{options.PooledOutputName}' has shape [{string.Join(",", _pooledShape)}], expected a sequence [1, 1+T, D].");
            Dimension = (int)_pooledShape[2];
        }
        else Dimension = (int)(_pooledShape.Aggregate(1L, (a, b) => a * b));
        if (options.TokenOutputName is not null)
        {
            _tokenShape = probe[^1];
            if (options.TokenKind == ImageTokenKind.FeatureMap)
            {
                if (_tokenShape.Length != 4) throw new ArgumentException($"Token output '{options.TokenOutputName}' has shape [{string.Join(",", _tokenShape)}], expected a feature map [1, C, H, W].");
                TokenDimension = (int)_tokenShape[1];
                TokenGrid = ((int)_tokenShape[2], (int)_tokenShape[3]);
                TokenLayout = ImageTokenLayout.Nchw;
            }
            else
            {
                if (_tokenShape.Length != 3) throw new ArgumentException($"Token output '{options.TokenOutputName}' has shape [{string.Join(",", _tokenShape)}], expected a sequence [1, 1+T, D].");
                if (options.ClsTokenIndex < 0 || options.ClsTokenIndex >= _tokenShape[1]) throw new ArgumentException($"ClsTokenIndex {options.ClsTokenIndex} is outside the {_tokenShape[1]} tokens of '{options.TokenOutputName}'.");
                TokenDimension = (int)_tokenShape[2];
                TokenGrid = ((int)_tokenShape[1] - 1, 1);
                TokenLayout = ImageTokenLayout.TokensByDim;
            }
        }
    }

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
        int s = _o.ImageSize;
        string modelIn = _prep is null ? _inputName : _prepInput!;
        var chain = t.LoadImages(ImageColumn, folder, pathColumn)
            .Append(t.ResizeImages(ImageColumn, s, s, ImageColumn,
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
        var outputs = new List<string> { _o.PooledOutputName };
        if (tokensColumn is not null && _o.TokenOutputName != _o.PooledOutputName) outputs.Add(_o.TokenOutputName!);
        c = c.Append(t.ApplyOnnxModel(outputs.ToArray(), [_inputName], new MemoryStream(_model)));
        bool vit = _o.TokenKind == ImageTokenKind.VitSequence;
        bool vitPooled = vit && _o.PooledOutputName == _o.TokenOutputName;
        if (vitPooled || (vit && tokensColumn is not null))
        {
            var split = SplitOnnx(pooledColumn, vitPooled, tokensColumn);
            var outs = new List<string>();
            if (vitPooled) outs.Add(pooledColumn);
            if (tokensColumn is not null) outs.Add(tokensColumn);
            c = c.Append(t.ApplyOnnxModel(outs.ToArray(), [_o.TokenOutputName!], new MemoryStream(split)));
            if (!vitPooled) c = c.Append(t.CopyColumns(pooledColumn, _o.PooledOutputName));
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
        int s = _o.ImageSize;
        var g = new OnnxGraphBuilder("pixels");
        var x = g.Input(PixelsColumn, 1, 4, s, s);
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

    /// <summary>ViT sequence [1, L, D] -> pooled (CLS) [1, D] and patch tokens [1, L-1, D] (CLS removed, order kept).</summary>
    private byte[] SplitOnnx(string pooledColumn, bool withPooled, string? tokensColumn)
    {
        int len = (int)_tokenShape![1], d = (int)_tokenShape[2], cls = _o.ClsTokenIndex;
        var g = new OnnxGraphBuilder("vit_split");
        var seq = g.Input(_o.TokenOutputName!, 1, len, d);
        if (withPooled)
        {
            var pick = g.Node("Gather", [seq, g.ConstantInt64("cls_index", [cls], 1)], attributes: new Dictionary<string, object> { ["axis"] = 1L })[0];
            g.Node("Reshape", [pick, g.ConstantInt64("pooled_shape", [1, d], 2)], outputs: [pooledColumn]);
            g.Output(pooledColumn, 1, d);
        }
        if (tokensColumn is not null)
        {
            var keep = Enumerable.Range(0, len).Where(i => i != cls).Select(i => (long)i).ToArray();
            g.Node("Gather", [seq, g.ConstantInt64("patch_index", keep, keep.Length)], outputs: [tokensColumn], attributes: new Dictionary<string, object> { ["axis"] = 1L });
            g.Output(tokensColumn, 1, len - 1, d);
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
