using Microsoft.ML;
using Microsoft.ML.Transforms.Image;
using MLNet.Align.Onnx;

namespace MLNet.Align.ZeroShot;

/// <summary>
/// An image encoder expressed only in stock ML.NET transforms (LoadImages, ResizeImages, ExtractPixels, ApplyOnnxModel,
/// CopyColumns), so that it saves into an ML.NET zip and reloads without MLNet.Align. This is the pluggable image part
/// of <see cref="ZeroShotClassifierEstimator"/>: any ONNX image encoder whose preprocessing is expressible in these
/// transforms or in a preprocessing ONNX fits.
/// </summary>
public interface IMLNetImageEncoder
{
    /// <summary>Short name ("resnet18").</summary>
    string Name { get; }

    /// <summary>Width of the pooled embedding it produces (512 for ResNet18).</summary>
    int Dimension { get; }

    /// <summary>Stock estimators reading image file paths from <paramref name="imagePathColumnName"/> (string,
    /// relative to <paramref name="imageFolder"/> when given) and writing <paramref name="outputColumnName"/>: float
    /// vector of <see cref="Dimension"/> values. Intermediate columns use the ONNX tensor names of the encoder.</summary>
    IEstimator<ITransformer> CreateEstimator(TransformsCatalog transforms, string outputColumnName, string imagePathColumnName, string? imageFolder);
}

/// <summary>
/// ResNet18 from Microsoft.ML.DnnImageFeaturizer.ResNet18 as stock ML.NET transforms:
/// LoadImages -> ResizeImages(224, 224) -> ExtractPixels (planar, 0..255) -> ApplyOnnxModel of one graph composed of
/// [alpha onto white, a tiny ONNX] -> ResNetPreprocess.onnx -> ResNet18.onnx (pooled [1,512,1,1]), its output named
/// as the output column (<see cref="FuseOnnxStages"/>; false: the three as separate ApplyOnnxModel stages joined by
/// CopyColumns). The ONNX bytes are embedded in the saved zip by OnnxTransformer.
/// </summary>
public sealed class ResNet18MLNetImageEncoder : IMLNetTokenImageEncoder
{
    /// <summary>ResNet18 tensor names (docs/toolchain.md "Models inside packages").</summary>
    public const string PreprocessInput = "OriginalInput", PreprocessOutput = "PreprocessedInput",
        ModelInput = "Input247", ModelOutput = "Pooling395_Output_0", ImageColumn = "mlnet_align_image", PixelsColumn = "mlnet_align_argb";

    /// <summary>Uses the ONNX files the DnnImageFeaturizer.ResNet18 package copies to the app's output folder
    /// (<c>DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx</c>, <c>DnnImageModels/ResNet18Onnx/ResNet18.onnx</c>).</summary>
    /// <param name="modelsDirectory">Folder holding <c>ResNetPrepOnnx/</c> and <c>ResNet18Onnx/</c>; default
    /// <c>AppContext.BaseDirectory/DnnImageModels</c>.</param>
    /// <exception cref="FileNotFoundException">A model file is missing (the message names it).</exception>
    public ResNet18MLNetImageEncoder(string? modelsDirectory = null)
    {
        var dir = modelsDirectory ?? Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
        PreprocessModelPath = Path.Combine(dir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        ModelPath = Path.Combine(dir, "ResNet18Onnx", "ResNet18.onnx");
        foreach (var p in new[] { PreprocessModelPath, ModelPath })
            if (!File.Exists(p)) throw new FileNotFoundException($"ResNet18 model file '{p}' is missing; reference Microsoft.ML.DnnImageFeaturizer.ResNet18 (it copies DnnImageModels/ to the output folder) or pass modelsDirectory.", p);
    }

    /// <inheritdoc/>
    public string Name => "resnet18";

    /// <inheritdoc/>
    public int Dimension => 512;

    /// <summary>Path of ResNetPreprocess.onnx.</summary>
    public string PreprocessModelPath { get; }

    /// <summary>Path of ResNet18.onnx.</summary>
    public string ModelPath { get; }

    /// <summary>How images are brought to 224x224. Default <see cref="ImageResizingEstimator.ResizingKind.IsoCrop"/>
    /// (ML.NET's default, what DnnImageFeaturizer samples use). Must match the image encoder used for training
    /// features, or the projector sees shifted inputs.</summary>
    public ImageResizingEstimator.ResizingKind Resizing { get; init; } = ImageResizingEstimator.ResizingKind.IsoCrop;

    /// <summary>Composite transparent pixels onto white (the <see cref="Encoders.IImageEncoder"/> contract) with a
    /// small ONNX graph over the ARGB pixels. Default true. When false, ML.NET's decoded colours are used as they
    /// are (transparent areas come out as the premultiplied colour, i.e. black).</summary>
    public bool CompositeOntoWhite { get; init; } = true;

    /// <summary>Run the alpha composite, the preprocessing graph and ResNet-18 as ONE ONNX graph
    /// (<see cref="FusedModelBytes"/>) whose outputs carry the output column names: the chain then holds one
    /// ApplyOnnxModel and no CopyColumns after ExtractPixels, instead of three ApplyOnnxModel (each a per-row tensor
    /// copy in and out) and two CopyColumns of [3, 224, 224] and [512]. Default true; the outputs equal the separate
    /// stages' (same operators and weights; test <c>FusedEncoderStageEqualsSeparateStages</c>). false: the separate
    /// stages, whose intermediate columns (<see cref="PreprocessInput"/>, <see cref="PreprocessOutput"/>,
    /// <see cref="ModelInput"/>, <see cref="ModelOutput"/>) then also appear in the output schema.</summary>
    public bool FuseOnnxStages { get; init; } = true;

    /// <summary>ResNet-18's last feature map (<see cref="Encoders.PackagedEncoders.ResNet18TokenOutputName"/>): 512 channels.</summary>
    public int TokenDimension => 512;

    /// <summary>Feature map [512, 7, 7], flattened to 49 tokens inside the projector graph.</summary>
    public Projection.ImageTokenLayout TokenLayout => Projection.ImageTokenLayout.Nchw;

    /// <summary>7 x 7 = 49 tokens.</summary>
    public (int Height, int Width) TokenGrid => (7, 7);

    /// <inheritdoc/>
    public IEstimator<ITransformer> CreateEstimator(TransformsCatalog transforms, string outputColumnName, string imagePathColumnName, string? imageFolder)
        => Build(transforms, outputColumnName, null, imagePathColumnName, imageFolder);

    /// <summary>As <see cref="CreateEstimator"/>, with ResNet18.onnx edited to also output
    /// <see cref="Encoders.PackagedEncoders.ResNet18TokenOutputName"/> [1, 512, 7, 7] (weights unchanged, batch kept at 1),
    /// copied into <paramref name="tokensColumnName"/> (25,088 floats, channel-major).</summary>
    public IEstimator<ITransformer> CreateTokenEstimator(TransformsCatalog transforms, string pooledColumnName, string tokensColumnName, string imagePathColumnName, string? imageFolder)
        => Build(transforms, pooledColumnName, tokensColumnName, imagePathColumnName, imageFolder);

    private IEstimator<ITransformer> Build(TransformsCatalog transforms, string outputColumnName, string? tokensColumnName, string imagePathColumnName, string? imageFolder)
    {
        ArgumentNullException.ThrowIfNull(transforms);
        var t = transforms;
        IEstimator<ITransformer> chain = t.LoadImages(ImageColumn, imageFolder, imagePathColumnName)
            .Append(t.ResizeImages(ImageColumn, 224, 224, ImageColumn, Resizing));
        // ARGB for the composite, otherwise ML.NET's default planar RGB straight into the preprocessing graph.
        string pixels = CompositeOntoWhite ? PixelsColumn : PreprocessInput;
        chain = CompositeOntoWhite
            ? chain.Append(t.ExtractPixels(PixelsColumn, ImageColumn, ImagePixelExtractingEstimator.ColorBits.All,
                ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, outputAsFloatArray: true))
            : chain.Append(t.ExtractPixels(PreprocessInput, ImageColumn, outputAsFloatArray: true));
        if (FuseOnnxStages)
        {
            string[] outputs = tokensColumnName is null ? [outputColumnName] : [outputColumnName, tokensColumnName];
            return chain.Append(t.ApplyOnnxModel(outputs, [pixels], new MemoryStream(FusedModelBytes(outputColumnName, tokensColumnName))));
        }
        if (CompositeOntoWhite)
            chain = chain.Append(t.ApplyOnnxModel(new[] { PreprocessInput }, new[] { PixelsColumn }, new MemoryStream(AlphaCompositeOnnx(224, 224, PixelsColumn, PreprocessInput))));
        chain = chain
            .Append(t.ApplyOnnxModel(new[] { PreprocessOutput }, new[] { PreprocessInput }, PreprocessModelPath))
            .Append(t.CopyColumns(ModelInput, PreprocessOutput));
        if (tokensColumnName is null)
            return chain
                .Append(t.ApplyOnnxModel(new[] { ModelOutput }, new[] { ModelInput }, ModelPath))
                .Append(t.CopyColumns(outputColumnName, ModelOutput));
        return chain
            .Append(t.ApplyOnnxModel(new[] { ModelOutput, Encoders.PackagedEncoders.ResNet18TokenOutputName }, new[] { ModelInput },
                new MemoryStream(OnnxGraphEditor.ToBytes(TokenModel()))))
            .Append(t.CopyColumns(outputColumnName, ModelOutput))
            .Append(t.CopyColumns(tokensColumnName, Encoders.PackagedEncoders.ResNet18TokenOutputName));
    }

    /// <summary>ResNet18.onnx with the token output added, batch fixed at 1 (ML.NET needs every dimension known).</summary>
    private global::Onnx.ModelProto TokenModel()
    {
        var model = OnnxGraphEditor.Parse(Encoders.PackagedEncoders.ResNet18ModelBytes(addTokenOutput: true, symbolicBatch: false, modelPath: ModelPath));
        MLNetOnnx.FixShape(model.Graph.Output.First(o => o.Name == Encoders.PackagedEncoders.ResNet18TokenOutputName), 1, 512, 7, 7);
        return model;
    }

    /// <summary>
    /// The graph of the fused stage (<see cref="FuseOnnxStages"/>): [alpha composite ->] ResNetPreprocess ->
    /// ResNet18, joined with <see cref="OnnxGraphComposer.Chain(global::Onnx.ModelProto, global::Onnx.ModelProto, string, bool)"/>
    /// (all three at the package's opset 8, so no operator changes meaning), intermediate values not exposed, the
    /// pooled output [1, 512, 1, 1] renamed to <paramref name="outputColumnName"/> and the token output [1, 512, 7, 7]
    /// (when <paramref name="tokensColumnName"/> is given) to that name. Input: <see cref="PixelsColumn"/> (ARGB
    /// [1, 4, 224, 224]) with <see cref="CompositeOntoWhite"/>, else <see cref="PreprocessInput"/> (RGB [1, 3, 224, 224]),
    /// values 0..255. Same weights and operators as the separate stages.
    /// </summary>
    /// <exception cref="ArgumentException">An output column name equals a value name inside the graphs.</exception>
    public byte[] FusedModelBytes(string outputColumnName, string? tokensColumnName = null)
    {
        var prep = OnnxGraphEditor.Parse(File.ReadAllBytes(PreprocessModelPath));
        var net = tokensColumnName is null ? OnnxGraphEditor.Parse(File.ReadAllBytes(ModelPath)) : TokenModel();
        // The preprocessing output feeds ResNet18's input: give both the same name so the composer wires them.
        OnnxGraphEditor.RenameValue(net, ModelInput, PreprocessOutput);
        var model = OnnxGraphComposer.Chain(prep, net, "resnet18/", keepFirstOutputs: false);
        if (CompositeOntoWhite)
            model = OnnxGraphComposer.Chain(OnnxGraphEditor.Parse(AlphaCompositeOnnx(224, 224, PixelsColumn, PreprocessInput)), model, "prep/", keepFirstOutputs: false);
        OnnxGraphEditor.RenameValue(model, ModelOutput, outputColumnName);
        if (tokensColumnName is not null) OnnxGraphEditor.RenameValue(model, Encoders.PackagedEncoders.ResNet18TokenOutputName, tokensColumnName);
        // The package graphs are IR 3 (initializers listed as inputs); the composed graph lists only the first graph's
        // that way, which IR 4+ allows.
        if (model.IrVersion < 4) model.IrVersion = 4;
        return OnnxGraphEditor.ToBytes(model);
    }

    /// <summary>
    /// ONNX graph: input planar ARGB float [1, 4, h, w] in 0..255 as ML.NET extracts it from a decoded image
    /// (SkiaSharp decodes with premultiplied alpha), output RGB [1, 3, h, w] composited onto white:
    /// rgb + (255 - a). For opaque pixels (a = 255) this is the identity.
    /// </summary>
    public static byte[] AlphaCompositeOnnx(int height, int width, string inputName, string outputName)
    {
        // Opset 8, the opset of the package's two graphs, so that the three compose into one (FusedModelBytes): Split
        // then takes its sizes as an attribute.
        var g = new OnnxGraphBuilder("alpha_onto_white", opset: 8);
        var x = g.Input(inputName, 1, 4, height, width);
        var parts = g.Node("Split", new[] { x }, outputCount: 2,
            attributes: new Dictionary<string, object> { ["axis"] = 1L, ["split"] = new long[] { 1, 3 } });
        var white = g.Constant("white", new[] { 255f }, 1);
        var missing = g.Op("Sub", white, parts[0]);
        g.Node("Add", new[] { parts[1], missing }, outputs: new[] { outputName });
        g.Output(outputName, 1, 3, height, width);
        return g.ToBytes();
    }
}
